//go:build !wasip1

package pdk

import (
	"reflect"
	"testing"
)

// Hand-computed encodings of the artwork and subsonicapi messages.
func TestArtworkAndSubsonicMessages(t *testing.T) {
	cases := []struct {
		msg  Message
		want string
	}{
		// size 300 = ac 02.
		{&GetArtworkUrlRequest{Id: "123", Size: 300}, "0a 03 31 32 33 10 ac 02"},
		// A negative int32 is sign-extended to ten bytes.
		{&GetArtworkUrlRequest{Size: -1}, "10 ff ff ff ff ff ff ff ff ff 01"},
		{&GetArtworkUrlResponse{Url: "http://h/x"}, "0a 0a 68 74 74 70 3a 2f 2f 68 2f 78"},
		{&CallRequest{Url: "/rest/ping?u=a"}, "0a 0e 2f 72 65 73 74 2f 70 69 6e 67 3f 75 3d 61"},
		{&CallResponse{Json: "{}", Error: "no"}, "0a 02 7b 7d 12 02 6e 6f"},
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
	for _, m := range []Message{&GetArtworkUrlRequest{}, &GetArtworkUrlResponse{}, &CallRequest{}, &CallResponse{}} {
		if b := mustMarshal(t, m); len(b) != 0 {
			t.Errorf("%T with defaults encodes to % x, want nothing", m, b)
		}
	}
}

func TestArtworkWrappers(t *testing.T) {
	calls := []struct {
		name string
		fn   func(*GetArtworkUrlRequest) (*GetArtworkUrlResponse, error)
	}{
		{"get_artist_url", ArtworkGetArtistUrl},
		{"get_album_url", ArtworkGetAlbumUrl},
		{"get_track_url", ArtworkGetTrackUrl},
	}
	for _, c := range calls {
		got := fakeImport(t, c.name, "0a 03 75 72 6c")
		resp, err := c.fn(&GetArtworkUrlRequest{Id: "1", Size: 5})
		if err != nil || resp.Url != "url" {
			t.Errorf("%s: %+v, %v", c.name, resp, err)
		}
		expectBytes(t, c.name+" request", *got, h(t, "0a 01 31 10 05"))
	}
	fakeImport(t, "get_album_url", "0a")
	if resp, err := ArtworkGetAlbumUrl(&GetArtworkUrlRequest{}); err == nil || resp != nil {
		t.Errorf("bad answer: %+v, %v", resp, err)
	}
}

func TestSubsonicAPIWrapper(t *testing.T) {
	got := fakeImport(t, "call", "0a 02 7b 7d")
	resp, err := SubsonicAPICall(&CallRequest{Url: "/rest/ping?u=a"})
	if err != nil || resp.Json != "{}" || resp.Error != "" {
		t.Errorf("call: %+v, %v", resp, err)
	}
	expectBytes(t, "call request", *got, h(t, "0a 0e 2f 72 65 73 74 2f 70 69 6e 67 3f 75 3d 61"))

	fakeImport(t, "call", "12 01 78")
	if resp, err := SubsonicAPICall(&CallRequest{}); err != nil || resp.Error != "x" || resp.Json != "" {
		t.Errorf("soft error: %+v, %v", resp, err)
	}
	fakeImport(t, "call", "12")
	if resp, err := SubsonicAPICall(&CallRequest{}); err == nil || resp != nil {
		t.Errorf("bad answer: %+v, %v", resp, err)
	}
}
