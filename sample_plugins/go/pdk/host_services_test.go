//go:build !wasip1

package pdk

import (
	"bytes"
	"testing"
)

// fakeImport installs a native stand-in for env.<name> that records the
// request and answers with reply (hex); it returns the recorded request.
func fakeImport(t *testing.T, name, reply string) *[]byte {
	t.Helper()
	var got []byte
	called := false
	out := h(t, reply)
	nativeHost[name] = func(req []byte) []byte {
		if called {
			t.Errorf("env.%s called twice", name)
		}
		called = true
		got = append([]byte{}, req...)
		return out
	}
	t.Cleanup(func() { delete(nativeHost, name) })
	return &got
}

func TestHttpWrappers(t *testing.T) {
	calls := []struct {
		name string
		fn   func(*HttpRequest) (*HttpResponse, error)
	}{
		{"get", HttpGet}, {"post", HttpPost}, {"put", HttpPut}, {"delete", HttpDelete},
		{"patch", HttpPatch}, {"head", HttpHead}, {"options", HttpOptions},
	}
	for _, c := range calls {
		// status 200, body "ok", headers {A: b}
		got := fakeImport(t, c.name, "08 c8 01 12 02 6f 6b 1a 06 0a 01 41 12 01 62")
		resp, err := c.fn(&HttpRequest{Url: "u", TimeoutMs: 1})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		expectBytes(t, c.name+" request", *got, h(t, "0a 01 75 18 01"))
		if resp.Status != 200 || string(resp.Body) != "ok" || resp.Headers["A"] != "b" || resp.Error != "" {
			t.Errorf("%s: response %+v", c.name, resp)
		}
	}
	// A soft error; an empty answer is an all-defaults response.
	fakeImport(t, "get", "22 01 78")
	if resp, err := HttpGet(&HttpRequest{}); err != nil || resp.Error != "x" || resp.Status != 0 {
		t.Errorf("soft error: %+v, %v", resp, err)
	}
	fakeImport(t, "post", "")
	if resp, err := HttpPost(nil); err != nil || resp == nil || resp.Status != 0 {
		t.Errorf("empty answer: %+v, %v", resp, err)
	}
	// An undecodable answer is the only returned error.
	fakeImport(t, "head", "0a")
	if resp, err := HttpHead(&HttpRequest{}); err == nil || resp != nil {
		t.Errorf("bad answer: %+v, %v", resp, err)
	}
}

func TestWebSocketWrappers(t *testing.T) {
	got := fakeImport(t, "connect", "0a 01 74")
	resp, err := WebSocketConnect(&ConnectRequest{Url: "ws://h", ConnectionId: "t"})
	if err != nil || resp.ConnectionId != "t" || resp.Error != "" {
		t.Errorf("connect: %+v, %v", resp, err)
	}
	expectBytes(t, "connect request", *got, h(t, "0a 06 77 73 3a 2f 2f 68 1a 01 74"))

	got = fakeImport(t, "send_text", "")
	if resp, err := WebSocketSendText(&SendTextRequest{ConnectionId: "t", Message: "hi"}); err != nil || resp.Error != "" {
		t.Errorf("send_text: %+v, %v", resp, err)
	}
	expectBytes(t, "send_text request", *got, h(t, "0a 01 74 12 02 68 69"))

	got = fakeImport(t, "send_binary", "0a 02 6e 6f")
	if resp, err := WebSocketSendBinary(&SendBinaryRequest{ConnectionId: "t", Data: []byte{1}}); err != nil || resp.Error != "no" {
		t.Errorf("send_binary: %+v, %v", resp, err)
	}
	expectBytes(t, "send_binary request", *got, h(t, "0a 01 74 12 01 01"))

	got = fakeImport(t, "close", "")
	if resp, err := WebSocketClose(&CloseRequest{ConnectionId: "t", Code: 1000}); err != nil || resp.Error != "" {
		t.Errorf("close: %+v, %v", resp, err)
	}
	expectBytes(t, "close request", *got, h(t, "0a 01 74 10 e8 07"))
}

func TestSchedulerWrappers(t *testing.T) {
	got := fakeImport(t, "schedule_one_time", "0a 01 72")
	if resp, err := ScheduleOneTime(&ScheduleOneTimeRequest{DelaySeconds: 5, ScheduleId: "r"}); err != nil || resp.ScheduleId != "r" {
		t.Errorf("schedule_one_time: %+v, %v", resp, err)
	}
	expectBytes(t, "schedule_one_time request", *got, h(t, "08 05 1a 01 72"))

	got = fakeImport(t, "schedule_recurring", "0a 01 72")
	if resp, err := ScheduleRecurring(&ScheduleRecurringRequest{CronExpression: "@daily"}); err != nil || resp.ScheduleId != "r" {
		t.Errorf("schedule_recurring: %+v, %v", resp, err)
	}
	expectBytes(t, "schedule_recurring request", *got, h(t, "0a 06 40 64 61 69 6c 79"))

	got = fakeImport(t, "cancel_schedule", "08 01")
	if resp, err := CancelSchedule(&CancelRequest{ScheduleId: "r"}); err != nil || !resp.Success {
		t.Errorf("cancel_schedule: %+v, %v", resp, err)
	}
	expectBytes(t, "cancel_schedule request", *got, h(t, "0a 01 72"))

	got = fakeImport(t, "time_now", "10 2a")
	if resp, err := TimeNow(); err != nil || resp.UnixMilli != 42 {
		t.Errorf("time_now: %+v, %v", resp, err)
	}
	if len(*got) != 0 {
		t.Errorf("time_now request must be empty, got % x", *got)
	}
}

func TestCacheWrappers(t *testing.T) {
	got := fakeImport(t, "set_string", "08 01")
	if resp, err := CacheSetString(&SetStringRequest{Key: "k", Value: "v", TtlSeconds: 3600}); err != nil || !resp.Success {
		t.Errorf("set_string: %+v, %v", resp, err)
	}
	expectBytes(t, "set_string request", *got, h(t, "0a 01 6b 12 01 76 18 90 1c"))

	got = fakeImport(t, "get_string", "08 01 12 01 76")
	if resp, err := CacheGetString(&GetRequest{Key: "k"}); err != nil || !resp.Exists || resp.Value != "v" {
		t.Errorf("get_string: %+v, %v", resp, err)
	}
	expectBytes(t, "get_string request", *got, h(t, "0a 01 6b"))

	fakeImport(t, "get_string", "") // a miss
	if resp, err := CacheGetString(&GetRequest{Key: "k"}); err != nil || resp.Exists || resp.Value != "" {
		t.Errorf("get_string miss: %+v, %v", resp, err)
	}

	got = fakeImport(t, "set_int", "08 01")
	if resp, err := CacheSetInt(&SetIntRequest{Key: "k", Value: 42}); err != nil || !resp.Success {
		t.Errorf("set_int: %+v, %v", resp, err)
	}
	expectBytes(t, "set_int request", *got, h(t, "0a 01 6b 10 2a"))

	fakeImport(t, "get_int", "08 01 10 ff ff ff ff ff ff ff ff ff 01")
	if resp, err := CacheGetInt(&GetRequest{Key: "k"}); err != nil || !resp.Exists || resp.Value != -1 {
		t.Errorf("get_int: %+v, %v", resp, err)
	}

	fakeImport(t, "set_float", "08 01")
	if resp, err := CacheSetFloat(&SetFloatRequest{Key: "k", Value: 1.5}); err != nil || !resp.Success {
		t.Errorf("set_float: %+v, %v", resp, err)
	}
	fakeImport(t, "get_float", "08 01 11 00 00 00 00 00 00 f8 3f")
	if resp, err := CacheGetFloat(&GetRequest{Key: "k"}); err != nil || resp.Value != 1.5 {
		t.Errorf("get_float: %+v, %v", resp, err)
	}
	fakeImport(t, "set_bytes", "08 01")
	if resp, err := CacheSetBytes(&SetBytesRequest{Key: "k", Value: []byte{1}}); err != nil || !resp.Success {
		t.Errorf("set_bytes: %+v, %v", resp, err)
	}
	fakeImport(t, "get_bytes", "08 01 12 01 09")
	if resp, err := CacheGetBytes(&GetRequest{Key: "k"}); err != nil || !bytes.Equal(resp.Value, []byte{9}) {
		t.Errorf("get_bytes: %+v, %v", resp, err)
	}
	fakeImport(t, "remove", "08 01")
	if resp, err := CacheRemove(&RemoveRequest{Key: "k"}); err != nil || !resp.Success {
		t.Errorf("remove: %+v, %v", resp, err)
	}
	fakeImport(t, "has", "")
	if resp, err := CacheHas(&HasRequest{Key: "k"}); err != nil || resp.Exists {
		t.Errorf("has: %+v, %v", resp, err)
	}
}
