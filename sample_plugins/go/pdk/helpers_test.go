package pdk

import "reflect"

// newLike returns a new zero message of the same type as m.
func newLike(m Message) Message {
	return reflect.New(reflect.TypeOf(m).Elem()).Interface().(Message)
}

func typeName(m Message) string { return reflect.TypeOf(m).Elem().Name() }
