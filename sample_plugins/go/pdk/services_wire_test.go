package pdk

import (
	"math"
	"reflect"
	"testing"
)

// Hand-computed encodings of the host-service messages (http, websocket,
// scheduler, cache). Each case encodes to exactly want, and want decodes
// back to an equal message.
func TestServiceMessages(t *testing.T) {
	cases := []struct {
		msg  Message
		want string
	}{
		// ------------------------------------------------------------ http
		// url "https://a.b/x" (13 bytes), headers {Accept: application/json}
		// (entry 2+6+2+16 = 26 bytes), timeout_ms 5000 = 88 27, body "n=1".
		{&HttpRequest{
			Url:       "https://a.b/x",
			Headers:   map[string]string{"Accept": "application/json"},
			TimeoutMs: 5000,
			Body:      []byte("n=1"),
		}, "0a 0d 68 74 74 70 73 3a 2f 2f 61 2e 62 2f 78" +
			" 12 1a 0a 06 41 63 63 65 70 74 12 10 61 70 70 6c 69 63 61 74 69 6f 6e 2f 6a 73 6f 6e" +
			" 18 88 27 22 03 6e 3d 31"},
		// Two headers: entries in key order.
		{&HttpRequest{Headers: map[string]string{"b": "2", "a": "1"}},
			"12 06 0a 01 61 12 01 31 12 06 0a 01 62 12 01 32"},
		// status 200 = c8 01, body "ok", headers {A: b}, error "e".
		{&HttpResponse{Status: 200, Body: []byte("ok"), Headers: map[string]string{"A": "b"}, Error: "e"},
			"08 c8 01 12 02 6f 6b 1a 06 0a 01 41 12 01 62 22 01 65"},
		{&HttpResponse{Error: "Request blocked"},
			"22 0f 52 65 71 75 65 73 74 20 62 6c 6f 63 6b 65 64"},

		// ------------------------------------------------------- websocket
		{&ConnectRequest{Url: "ws://h", Headers: map[string]string{"K": "v"}, ConnectionId: "t"},
			"0a 06 77 73 3a 2f 2f 68 12 06 0a 01 4b 12 01 76 1a 01 74"},
		{&ConnectResponse{ConnectionId: "t", Error: "x"}, "0a 01 74 12 01 78"},
		{&SendTextRequest{ConnectionId: "t", Message: "hi"}, "0a 01 74 12 02 68 69"},
		{&SendTextResponse{Error: "no"}, "0a 02 6e 6f"},
		{&SendBinaryRequest{ConnectionId: "t", Data: []byte{0x00, 0x01, 0xff}}, "0a 01 74 12 03 00 01 ff"},
		{&SendBinaryResponse{Error: "no"}, "0a 02 6e 6f"},
		// code 1000 = e8 07.
		{&CloseRequest{ConnectionId: "t", Code: 1000, Reason: "bye"}, "0a 01 74 10 e8 07 1a 03 62 79 65"},
		{&CloseResponse{Error: "no"}, "0a 02 6e 6f"},

		// ------------------------------------------------------- scheduler
		{&ScheduleOneTimeRequest{DelaySeconds: 5, Payload: []byte("p"), ScheduleId: "reconnect"},
			"08 05 12 01 70 1a 09 72 65 63 6f 6e 6e 65 63 74"},
		{&ScheduleRecurringRequest{CronExpression: "* * * * *", ScheduleId: "r"},
			"0a 09 2a 20 2a 20 2a 20 2a 20 2a 1a 01 72"},
		{&ScheduleResponse{ScheduleId: "r"}, "0a 01 72"},
		{&CancelRequest{ScheduleId: "r"}, "0a 01 72"},
		{&CancelResponse{Success: true, Error: "x"}, "08 01 12 01 78"},
		// unix_milli 1700000000123 = fb d0 95 ff bc 31.
		{&TimeNowResponse{Rfc3339Nano: "T", UnixMilli: 1700000000123, LocalTimeZone: "UTC"},
			"0a 01 54 10 fb d0 95 ff bc 31 1a 03 55 54 43"},

		// ----------------------------------------------------------- cache
		// ttl 3600 = 90 1c.
		{&SetStringRequest{Key: "k", Value: "v", TtlSeconds: 3600}, "0a 01 6b 12 01 76 18 90 1c"},
		// int64 -1: ten bytes.
		{&SetIntRequest{Key: "k", Value: -1}, "0a 01 6b 10 ff ff ff ff ff ff ff ff ff 01"},
		// double 1.5 = 0x3ff8000000000000, fixed64 little-endian.
		{&SetFloatRequest{Key: "k", Value: 1.5, TtlSeconds: 1}, "0a 01 6b 11 00 00 00 00 00 00 f8 3f 18 01"},
		{&SetBytesRequest{Key: "k", Value: []byte{1, 2}, TtlSeconds: 7}, "0a 01 6b 12 02 01 02 18 07"},
		{&SetResponse{Success: true}, "08 01"},
		{&GetRequest{Key: "k"}, "0a 01 6b"},
		{&GetStringResponse{Exists: true, Value: "v"}, "08 01 12 01 76"},
		{&GetIntResponse{Exists: true, Value: 42}, "08 01 10 2a"},
		{&GetFloatResponse{Exists: true, Value: -2}, "08 01 11 00 00 00 00 00 00 00 c0"},
		{&GetBytesResponse{Exists: true, Value: []byte{9}}, "08 01 12 01 09"},
		{&RemoveRequest{Key: "k"}, "0a 01 6b"},
		{&RemoveResponse{Success: true}, "08 01"},
		{&HasRequest{Key: "k"}, "0a 01 6b"},
		{&HasResponse{Exists: true}, "08 01"},
	}
	for _, c := range cases {
		want := h(t, c.want)
		expectBytes(t, typeName(c.msg), mustMarshal(t, c.msg), want)
		back := newLike(c.msg)
		if err := back.Unmarshal(want); err != nil {
			t.Errorf("%s: decode: %v", typeName(c.msg), err)
			continue
		}
		if !reflect.DeepEqual(back, c.msg) {
			t.Errorf("%s: round trip\n got  %+v\n want %+v", typeName(c.msg), back, c.msg)
		}
	}
}

func TestServiceMessageDefaults(t *testing.T) {
	msgs := []Message{
		&HttpRequest{Headers: map[string]string{}, Body: []byte{}}, &HttpResponse{},
		&ConnectRequest{}, &ConnectResponse{}, &SendTextRequest{}, &SendTextResponse{},
		&SendBinaryRequest{Data: []byte{}}, &SendBinaryResponse{}, &CloseRequest{}, &CloseResponse{},
		&ScheduleOneTimeRequest{}, &ScheduleRecurringRequest{}, &ScheduleResponse{}, &CancelRequest{},
		&CancelResponse{}, &TimeNowRequest{}, &TimeNowResponse{},
		&SetStringRequest{}, &SetIntRequest{}, &SetFloatRequest{}, &SetBytesRequest{}, &SetResponse{},
		&GetRequest{}, &GetStringResponse{}, &GetIntResponse{}, &GetFloatResponse{}, &GetBytesResponse{},
		&RemoveRequest{}, &RemoveResponse{}, &HasRequest{}, &HasResponse{},
	}
	for _, m := range msgs {
		if b := mustMarshal(t, m); len(b) != 0 {
			t.Errorf("%T with defaults encodes to % x, want nothing", m, b)
		}
	}
	// -0.0 is not the default and is written (as protobuf-go does).
	expectBytes(t, "SetFloatRequest{-0}", mustMarshal(t, &SetFloatRequest{Value: math.Copysign(0, -1)}),
		h(t, "11 00 00 00 00 00 00 00 80"))
}

func TestServiceDecodeEdgeCases(t *testing.T) {
	// A present empty body decodes to a non-nil empty slice; a later scalar
	// wins; unknown fields are skipped.
	var r HttpResponse
	if err := r.Unmarshal(h(t, "08 01 12 00 08 02 78 05")); err != nil {
		t.Fatal(err)
	}
	if r.Status != 2 || r.Body == nil || len(r.Body) != 0 {
		t.Errorf("got %+v", r)
	}
	// Wrong wire type for the double value.
	var f GetFloatResponse
	if err := f.Unmarshal(h(t, "10 01")); err == nil {
		t.Error("varint for a double field: expected an error")
	}
	// Truncated fixed64.
	if err := f.Unmarshal(h(t, "11 00 00 00")); err == nil {
		t.Error("truncated double: expected an error")
	}
	// TimeNowRequest has no fields but skips unknown ones.
	if err := (&TimeNowRequest{}).Unmarshal(h(t, "0a 01 78")); err != nil {
		t.Errorf("TimeNowRequest with an unknown field: %v", err)
	}
}
