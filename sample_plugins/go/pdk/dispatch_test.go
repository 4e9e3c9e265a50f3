package pdk

import (
	"context"
	"errors"
	"testing"
)

type testAgent struct{ MetadataAgent } // unimplemented methods panic

func (testAgent) GetArtistMBID(_ context.Context, r *ArtistMBIDRequest) (*ArtistMBIDResponse, error) {
	switch r.Name {
	case "":
		return nil, ErrNotFound
	case "nil":
		return nil, nil
	case "empty":
		return &ArtistMBIDResponse{}, nil
	}
	return &ArtistMBIDResponse{Mbid: "1234567890"}, nil
}

func (testAgent) GetArtistURL(context.Context, *ArtistURLRequest) (*ArtistURLResponse, error) {
	return nil, errors.New("boom")
}

func TestSentinelText(t *testing.T) {
	if ErrNotImplemented.Error() != "plugin:not_implemented" || ErrNotFound.Error() != "plugin:not_found" {
		t.Fatalf("sentinels: %q %q", ErrNotImplemented, ErrNotFound)
	}
}

func TestDispatch(t *testing.T) {
	RegisterMetadataAgent(testAgent{})
	defer RegisterMetadataAgent(nil)

	out, isErr := callMetadataAgentGetArtistMBID(h(t, "12 0b 54 65 73 74 20 41 72 74 69 73 74"))
	expectBytes(t, "mbid", out, h(t, "0a 0a 31 32 33 34 35 36 37 38 39 30"))
	if isErr {
		t.Error("unexpected error flag")
	}

	out, isErr = callMetadataAgentGetArtistMBID(nil)
	if string(out) != "plugin:not_found" || !isErr {
		t.Errorf("not found: %q %v", out, isErr)
	}
	out, isErr = callMetadataAgentGetArtistURL(nil)
	if string(out) != "boom" || !isErr {
		t.Errorf("plain error: %q %v", out, isErr)
	}
	// (nil, nil) and all-defaults responses are empty, successful results.
	for _, name := range []string{"nil", "empty"} {
		req, _ := (&ArtistMBIDRequest{Name: name}).Marshal()
		if out, isErr := callMetadataAgentGetArtistMBID(req); len(out) != 0 || isErr {
			t.Errorf("%s response: % x %v", name, out, isErr)
		}
	}
	// A request that fails to decode gives an empty, successful result.
	if out, isErr := callMetadataAgentGetArtistMBID(h(t, "12 05")); len(out) != 0 || isErr {
		t.Errorf("bad request: % x %v", out, isErr)
	}
}

func TestUnregisteredCapabilityPanics(t *testing.T) {
	calls := map[string]func([]byte) ([]byte, bool){
		"metadata_agent_get_album_images":          callMetadataAgentGetAlbumImages,
		"scrobbler_scrobble":                       callScrobblerScrobble,
		"scheduler_callback_on_scheduler_callback": callSchedulerCallbackOnSchedulerCallback,
		"lifecycle_management_on_init":             callLifecycleManagementOnInit,
		"web_socket_callback_on_close":             callWebSocketCallbackOnClose,
	}
	for name, call := range calls {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: expected a nil-interface panic", name)
				}
			}()
			call(nil)
		}()
	}
}

func TestPackResult(t *testing.T) {
	cases := []struct {
		ptr   uint32
		size  int
		isErr bool
		want  uint64
	}{
		{0x10000, 12, false, 0x0001_0000_0000_000c},
		{0x10000, 16, true, 0x0001_0000_8000_0010},
		{0xfffffff0, 0x7fffffff, false, 0xffff_fff0_7fff_ffff},
		{0x1234, 0, false, 0},                    // empty -> pointer 0
		{0x1234, 0, true, 0x0000_0000_8000_0000}, // empty error string
	}
	for _, c := range cases {
		if got := packResult(c.ptr, c.size, c.isErr); got != c.want {
			t.Errorf("packResult(%#x, %d, %v) = %#x, want %#x", c.ptr, c.size, c.isErr, got, c.want)
		}
	}
	if p, s := unpackResult(0x0001_0000_0000_000c); p != 0x10000 || s != 12 {
		t.Errorf("unpackResult: %#x %d", p, s)
	}
}
