package pdk

import (
	"errors"
	"slices"
	"strconv"
)

// Protobuf wire types.
const (
	wireVarint     = 0
	wireFixed64    = 1
	wireBytes      = 2
	wireStartGroup = 3
	wireEndGroup   = 4
	wireFixed32    = 5
)

const maxFieldNumber = 1<<29 - 1

var (
	errTruncated     = errors.New("proto: unexpected end of data")
	errVarintOverrun = errors.New("proto: varint overflows 64 bits")
	errBadFieldNum   = errors.New("proto: invalid field number")
	errBadLength     = errors.New("proto: negative or oversized length")
	errBadEndGroup   = errors.New("proto: unmatched end group")
)

func wireTypeError(num, wt int) error {
	return errors.New("proto: wrong wire type " + strconv.Itoa(wt) + " for field " + strconv.Itoa(num))
}

// Message is implemented by every protobuf message of this package.
type Message interface {
	// Marshal returns the proto3 binary encoding of the message. A nil
	// message and an all-defaults message both encode to zero bytes.
	Marshal() ([]byte, error)
	// Unmarshal merges the encoded message b into the receiver, following
	// the protobuf rules (last scalar wins, repeated fields append, singular
	// sub-messages merge; unknown fields are skipped).
	Unmarshal(b []byte) error

	appendTo(b []byte) []byte
}

// ---------------------------------------------------------------- encoding

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendTag(b []byte, num, wt int) []byte {
	return appendVarint(b, uint64(num)<<3|uint64(wt))
}

func appendLengthDelimited(b []byte, num int, v []byte) []byte {
	b = appendTag(b, num, wireBytes)
	b = appendVarint(b, uint64(len(v)))
	return append(b, v...)
}

// encoder appends proto3 fields, omitting default values (implicit presence).
type encoder struct{ buf []byte }

func (e *encoder) string(num int, v string) {
	if v != "" {
		e.buf = appendTag(e.buf, num, wireBytes)
		e.buf = appendVarint(e.buf, uint64(len(v)))
		e.buf = append(e.buf, v...)
	}
}

func (e *encoder) bytes(num int, v []byte) {
	if len(v) > 0 {
		e.buf = appendLengthDelimited(e.buf, num, v)
	}
}

// int32 values are sign-extended to 64 bits: a negative value takes 10 bytes.
func (e *encoder) int32(num int, v int32) {
	if v != 0 {
		e.buf = appendTag(e.buf, num, wireVarint)
		e.buf = appendVarint(e.buf, uint64(int64(v)))
	}
}

func (e *encoder) int64(num int, v int64) {
	if v != 0 {
		e.buf = appendTag(e.buf, num, wireVarint)
		e.buf = appendVarint(e.buf, uint64(v))
	}
}

func (e *encoder) bool(num int, v bool) {
	if v {
		e.buf = appendTag(e.buf, num, wireVarint)
		e.buf = append(e.buf, 1)
	}
}

// message encodes a sub-message field. It always writes the field: an empty
// element of a repeated field, or a present-but-empty singular field, is
// encoded as tag + zero length. Callers skip nil singular fields themselves.
func (e *encoder) message(num int, m Message) {
	e.buf = appendLengthDelimited(e.buf, num, m.appendTo(nil))
}

// stringMap encodes a map<string,string> as repeated entry messages with
// key = 1 and value = 2. Like the original encoder, both key and value are
// always written inside an entry. Keys are emitted in sorted order so the
// output is deterministic (any order is valid on the wire).
func (e *encoder) stringMap(num int, m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := m[k]
		var entry []byte
		entry = appendTag(entry, 1, wireBytes)
		entry = appendVarint(entry, uint64(len(k)))
		entry = append(entry, k...)
		entry = appendTag(entry, 2, wireBytes)
		entry = appendVarint(entry, uint64(len(v)))
		entry = append(entry, v...)
		e.buf = appendLengthDelimited(e.buf, num, entry)
	}
}

// packedInt32s encodes a repeated int32 field in packed form (the proto3
// default for repeated scalars). No message of the legacy schema has one yet.
func (e *encoder) packedInt32s(num int, v []int32) {
	if len(v) == 0 {
		return
	}
	var payload []byte
	for _, x := range v {
		payload = appendVarint(payload, uint64(int64(x)))
	}
	e.buf = appendLengthDelimited(e.buf, num, payload)
}

// packedInt64s encodes a repeated int64 field in packed form.
func (e *encoder) packedInt64s(num int, v []int64) {
	if len(v) == 0 {
		return
	}
	var payload []byte
	for _, x := range v {
		payload = appendVarint(payload, uint64(x))
	}
	e.buf = appendLengthDelimited(e.buf, num, payload)
}

// ---------------------------------------------------------------- decoding

type decoder struct {
	buf []byte
	pos int
}

func (d *decoder) done() bool { return d.pos >= len(d.buf) }

func (d *decoder) varint() (uint64, error) {
	var v uint64
	for shift := uint(0); ; shift += 7 {
		if shift >= 70 {
			return 0, errVarintOverrun
		}
		if d.pos >= len(d.buf) {
			return 0, errTruncated
		}
		c := d.buf[d.pos]
		d.pos++
		if shift == 63 && c > 1 {
			return 0, errVarintOverrun
		}
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, nil
		}
	}
}

func (d *decoder) tag() (num, wt int, err error) {
	v, err := d.varint()
	if err != nil {
		return 0, 0, err
	}
	if v>>3 == 0 || v>>3 > maxFieldNumber {
		return 0, 0, errBadFieldNum
	}
	return int(v >> 3), int(v & 7), nil
}

func (d *decoder) lengthDelimited() ([]byte, error) {
	n, err := d.varint()
	if err != nil {
		return nil, err
	}
	if n > uint64(len(d.buf)-d.pos) {
		if n > 1<<31 {
			return nil, errBadLength
		}
		return nil, errTruncated
	}
	v := d.buf[d.pos : d.pos+int(n)]
	d.pos += int(n)
	return v, nil
}

func (d *decoder) fixed(n int) error {
	if len(d.buf)-d.pos < n {
		return errTruncated
	}
	d.pos += n
	return nil
}

// skip discards the value of an unknown field (groups are skipped whole).
func (d *decoder) skip(num, wt int) error {
	switch wt {
	case wireVarint:
		_, err := d.varint()
		return err
	case wireFixed64:
		return d.fixed(8)
	case wireBytes:
		_, err := d.lengthDelimited()
		return err
	case wireFixed32:
		return d.fixed(4)
	case wireStartGroup:
		for {
			n, t, err := d.tag()
			if err != nil {
				return err
			}
			if t == wireEndGroup {
				if n != num {
					return errBadEndGroup
				}
				return nil
			}
			if err := d.skip(n, t); err != nil {
				return err
			}
		}
	case wireEndGroup:
		return errBadEndGroup
	default:
		return wireTypeError(num, wt)
	}
}

func (d *decoder) readString(num, wt int, dst *string) error {
	if wt != wireBytes {
		return wireTypeError(num, wt)
	}
	v, err := d.lengthDelimited()
	if err != nil {
		return err
	}
	*dst = string(v)
	return nil
}

// readBytes copies the field value (the input buffer belongs to the host
// and is released after the call). A present empty value gives []byte{}.
func (d *decoder) readBytes(num, wt int, dst *[]byte) error {
	if wt != wireBytes {
		return wireTypeError(num, wt)
	}
	v, err := d.lengthDelimited()
	if err != nil {
		return err
	}
	*dst = append([]byte{}, v...)
	return nil
}

func (d *decoder) readVarint(num, wt int) (uint64, error) {
	if wt != wireVarint {
		return 0, wireTypeError(num, wt)
	}
	return d.varint()
}

func (d *decoder) readInt32(num, wt int, dst *int32) error {
	v, err := d.readVarint(num, wt)
	if err == nil {
		*dst = int32(v) // truncation, as protobuf does
	}
	return err
}

func (d *decoder) readInt64(num, wt int, dst *int64) error {
	v, err := d.readVarint(num, wt)
	if err == nil {
		*dst = int64(v)
	}
	return err
}

func (d *decoder) readBool(num, wt int, dst *bool) error {
	v, err := d.readVarint(num, wt)
	if err == nil {
		*dst = v != 0
	}
	return err
}

func (d *decoder) readMessage(num, wt int, m Message) error {
	if wt != wireBytes {
		return wireTypeError(num, wt)
	}
	v, err := d.lengthDelimited()
	if err != nil {
		return err
	}
	return m.Unmarshal(v)
}

// readStringMapEntry decodes one map<string,string> entry and stores it
// (a missing key or value means ""; a repeated key overwrites).
func (d *decoder) readStringMapEntry(num, wt int, dst *map[string]string) error {
	if wt != wireBytes {
		return wireTypeError(num, wt)
	}
	v, err := d.lengthDelimited()
	if err != nil {
		return err
	}
	var key, value string
	err = unmarshalFields(v, func(d *decoder, num, wt int) error {
		switch num {
		case 1:
			return d.readString(num, wt, &key)
		case 2:
			return d.readString(num, wt, &value)
		}
		return d.skip(num, wt)
	})
	if err != nil {
		return err
	}
	if *dst == nil {
		*dst = map[string]string{}
	}
	(*dst)[key] = value
	return nil
}

// readInt32s accepts a repeated int32 field in packed or unpacked form.
func (d *decoder) readInt32s(num, wt int, dst *[]int32) error {
	return d.readRepeatedVarints(num, wt, func(v uint64) { *dst = append(*dst, int32(v)) })
}

// readInt64s accepts a repeated int64 field in packed or unpacked form.
func (d *decoder) readInt64s(num, wt int, dst *[]int64) error {
	return d.readRepeatedVarints(num, wt, func(v uint64) { *dst = append(*dst, int64(v)) })
}

func (d *decoder) readRepeatedVarints(num, wt int, add func(uint64)) error {
	switch wt {
	case wireVarint:
		v, err := d.varint()
		if err == nil {
			add(v)
		}
		return err
	case wireBytes:
		payload, err := d.lengthDelimited()
		if err != nil {
			return err
		}
		p := decoder{buf: payload}
		for !p.done() {
			v, err := p.varint()
			if err != nil {
				return err
			}
			add(v)
		}
		return nil
	default:
		return wireTypeError(num, wt)
	}
}

// unmarshalFields walks the fields of an encoded message, calling field for
// each one; field must consume the value (or call d.skip).
func unmarshalFields(b []byte, field func(d *decoder, num, wt int) error) error {
	d := decoder{buf: b}
	for !d.done() {
		num, wt, err := d.tag()
		if err != nil {
			return err
		}
		if wt == wireEndGroup {
			return errBadEndGroup
		}
		if err := field(&d, num, wt); err != nil {
			return err
		}
	}
	return nil
}
