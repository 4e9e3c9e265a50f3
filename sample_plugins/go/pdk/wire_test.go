package pdk

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

// h parses space-separated hex ("0a 03 66 6f 6f") into bytes.
func h(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func mustMarshal(t *testing.T, m Message) []byte {
	t.Helper()
	b, err := m.Marshal()
	if err != nil {
		t.Fatalf("marshal %T: %v", m, err)
	}
	return b
}

func expectBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\n got  % x\n want % x", what, got, want)
	}
}

func TestVarint(t *testing.T) {
	cases := []struct {
		v    uint64
		want string
	}{
		{0, "00"},
		{1, "01"},
		{127, "7f"},
		{128, "80 01"},
		{300, "ac 02"},
		{1700000000, "80 e2 cf aa 06"},
		{1<<64 - 1, "ff ff ff ff ff ff ff ff ff 01"},
	}
	for _, c := range cases {
		want := h(t, c.want)
		expectBytes(t, "appendVarint", appendVarint(nil, c.v), want)
		d := decoder{buf: want}
		got, err := d.varint()
		if err != nil || got != c.v || !d.done() {
			t.Errorf("varint(% x) = %d, %v (done=%v), want %d", want, got, err, d.done(), c.v)
		}
	}
}

func TestVarintErrors(t *testing.T) {
	for _, s := range []string{
		"",                                 // empty
		"80",                               // truncated
		"ff ff ff ff ff ff ff ff ff 02",    // > 64 bits
		"ff ff ff ff ff ff ff ff ff ff 01", // 11 bytes
	} {
		d := decoder{buf: h(t, s)}
		if _, err := d.varint(); err == nil {
			t.Errorf("varint(%q): expected an error", s)
		}
	}
}

func TestStringFields(t *testing.T) {
	// name = 2 -> tag (2<<3)|2 = 0x12, length 11, "Test Artist".
	req := &ArtistMBIDRequest{Name: "Test Artist"}
	want := h(t, "12 0b 54 65 73 74 20 41 72 74 69 73 74")
	expectBytes(t, "ArtistMBIDRequest", mustMarshal(t, req), want)

	var back ArtistMBIDRequest
	if err := back.Unmarshal(want); err != nil || back != *req {
		t.Errorf("decode: %+v, %v", back, err)
	}

	resp := &ArtistMBIDResponse{Mbid: "1234567890"}
	expectBytes(t, "ArtistMBIDResponse", mustMarshal(t, resp),
		h(t, "0a 0a 31 32 33 34 35 36 37 38 39 30"))

	// Field order follows field numbers, whatever the struct order.
	url := &ArtistURLRequest{Id: "i", Name: "n", Mbid: "m"}
	expectBytes(t, "ArtistURLRequest", mustMarshal(t, url), h(t, "0a 01 69 12 01 6e 1a 01 6d"))
}

func TestDefaultsOmitted(t *testing.T) {
	msgs := []Message{
		&ArtistMBIDRequest{},
		&ArtistSimilarRequest{},
		&ScrobblerIsAuthorizedResponse{},
		&ScrobblerNowPlayingRequest{},
		&SchedulerCallbackRequest{Payload: []byte{}},
		&InitRequest{Config: map[string]string{}},
		&AlbumInfoResponse{},
		&OnCloseResponse{},
		&GetPluginConfigRequest{},
		&GetPluginConfigResponse{},
	}
	for _, m := range msgs {
		if b := mustMarshal(t, m); len(b) != 0 {
			t.Errorf("%T with defaults encodes to % x, want nothing", m, b)
		}
	}
	// A nil message encodes to zero bytes too.
	var nilResp *ArtistMBIDResponse
	if b := mustMarshal(t, nilResp); len(b) != 0 {
		t.Errorf("nil message encodes to % x", b)
	}
	// Zero bytes decode to an all-defaults message.
	var r ArtistSimilarRequest
	if err := r.Unmarshal(nil); err != nil || r != (ArtistSimilarRequest{}) {
		t.Errorf("empty decode: %+v, %v", r, err)
	}
}

func TestInt32(t *testing.T) {
	cases := []struct {
		limit int32
		want  string
	}{
		{1, "20 01"},
		{200, "20 c8 01"},
		// Negative int32 values are sign-extended: 10 bytes (no zigzag).
		{-1, "20 ff ff ff ff ff ff ff ff ff 01"},
		{-2147483648, "20 80 80 80 80 f8 ff ff ff ff 01"},
	}
	for _, c := range cases {
		want := h(t, c.want)
		expectBytes(t, "ArtistSimilarRequest.limit", mustMarshal(t, &ArtistSimilarRequest{Limit: c.limit}), want)
		var back ArtistSimilarRequest
		if err := back.Unmarshal(want); err != nil || back.Limit != c.limit {
			t.Errorf("decode limit % x: %d, %v", want, back.Limit, err)
		}
	}
	// A 5-byte (non sign-extended) encoding of -1 from a sloppy encoder
	// still decodes to -1: int32 is the truncated 64-bit value.
	var r OnCloseRequest
	if err := r.Unmarshal(h(t, "10 ff ff ff ff 0f")); err != nil || r.Code != -1 {
		t.Errorf("truncated int32: %d, %v", r.Code, err)
	}
}

func TestInt64AndBool(t *testing.T) {
	req := &ScrobblerScrobbleRequest{Timestamp: 1700000000}
	want := h(t, "20 80 e2 cf aa 06")
	expectBytes(t, "timestamp", mustMarshal(t, req), want)
	var back ScrobblerScrobbleRequest
	if err := back.Unmarshal(want); err != nil || back.Timestamp != 1700000000 {
		t.Errorf("timestamp decode: %d, %v", back.Timestamp, err)
	}
	neg := &ScrobblerNowPlayingRequest{Timestamp: -1}
	expectBytes(t, "negative int64", mustMarshal(t, neg), h(t, "20 ff ff ff ff ff ff ff ff ff 01"))

	auth := &ScrobblerIsAuthorizedResponse{Authorized: true, Error: "x"}
	expectBytes(t, "bool", mustMarshal(t, auth), h(t, "08 01 12 01 78"))
	var a ScrobblerIsAuthorizedResponse
	// Any non-zero varint is true.
	if err := a.Unmarshal(h(t, "08 02")); err != nil || !a.Authorized {
		t.Errorf("bool decode: %+v, %v", a, err)
	}
}

func TestRepeatedMessages(t *testing.T) {
	resp := &ArtistSimilarResponse{Artists: []*Artist{
		{Name: "Similar Artist 1", Mbid: "mbid1"},
		{Name: "Similar Artist 2", Mbid: "mbid2"},
	}}
	// Each element: 0a 19 | 0a 10 "Similar Artist N" | 12 05 "mbidN"
	// (2+16 + 2+5 = 25 = 0x19 bytes).
	el := func(n string) string {
		return "0a 19 0a 10 53 69 6d 69 6c 61 72 20 41 72 74 69 73 74 20 " + n + " 12 05 6d 62 69 64 " + n
	}
	want := h(t, el("31")+" "+el("32"))
	expectBytes(t, "ArtistSimilarResponse", mustMarshal(t, resp), want)

	var back ArtistSimilarResponse
	if err := back.Unmarshal(want); err != nil || len(back.Artists) != 2 ||
		*back.Artists[0] != *resp.Artists[0] || *back.Artists[1] != *resp.Artists[1] {
		t.Errorf("decode: %+v, %v", back.Artists, err)
	}

	images := &ArtistImageResponse{Images: []*ExternalImage{{Url: "u", Size: 200}, {}}}
	// {u, 200}: 0a 01 75 10 c8 01 (6 bytes); an empty element is still sent.
	expectBytes(t, "ArtistImageResponse", mustMarshal(t, images), h(t, "0a 06 0a 01 75 10 c8 01 0a 00"))
}

func TestSingularMessage(t *testing.T) {
	expectBytes(t, "empty info present", mustMarshal(t, &AlbumInfoResponse{Info: &AlbumInfo{}}), h(t, "0a 00"))

	info := &AlbumInfoResponse{Info: &AlbumInfo{Name: "A", Url: "u"}}
	want := h(t, "0a 06 0a 01 41 22 01 75")
	expectBytes(t, "AlbumInfoResponse", mustMarshal(t, info), want)

	var back AlbumInfoResponse
	if err := back.Unmarshal(want); err != nil || back.Info == nil || *back.Info != *info.Info {
		t.Errorf("decode: %+v, %v", back.Info, err)
	}
	var none AlbumInfoResponse
	if err := none.Unmarshal(nil); err != nil || none.Info != nil {
		t.Errorf("absent info must stay nil: %+v, %v", none.Info, err)
	}

	// Two occurrences of a singular message field merge.
	var np ScrobblerNowPlayingRequest
	if err := np.Unmarshal(h(t, "1a 03 1a 01 54 1a 02 40 07")); err != nil {
		t.Fatal(err)
	}
	if np.Track == nil || np.Track.Name != "T" || np.Track.Length != 7 {
		t.Errorf("merge: %+v", np.Track)
	}
}

func TestTrackInfoRoundTrip(t *testing.T) {
	req := &ScrobblerNowPlayingRequest{
		UserId:   "u1",
		Username: "bob",
		Track: &TrackInfo{
			Id: "t", Mbid: "m", Name: "Song", Album: "Al", AlbumMbid: "am",
			Artists:      []*Artist{{Name: "A1"}, {Name: "A2", Mbid: "x"}},
			AlbumArtists: []*Artist{{Name: "AA"}},
			Length:       180, Position: -5,
		},
		Timestamp: 42,
	}
	b := mustMarshal(t, req)
	var back ScrobblerNowPlayingRequest
	if err := back.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mustMarshal(t, &back), b) || back.Track.Position != -5 ||
		len(back.Track.Artists) != 2 || back.Track.Artists[1].Mbid != "x" || back.Track.AlbumArtists[0].Name != "AA" {
		t.Errorf("round trip mismatch: %+v", back.Track)
	}
}

func TestBytesField(t *testing.T) {
	req := &SchedulerCallbackRequest{ScheduleId: "s", Payload: []byte{0, 0xff}, IsRecurring: true}
	want := h(t, "0a 01 73 12 02 00 ff 18 01")
	expectBytes(t, "SchedulerCallbackRequest", mustMarshal(t, req), want)

	var back SchedulerCallbackRequest
	if err := back.Unmarshal(want); err != nil || !bytes.Equal(back.Payload, req.Payload) || !back.IsRecurring {
		t.Errorf("decode: %+v, %v", back, err)
	}
	// The decoded value must not alias the input buffer.
	want[5] = 1
	if back.Payload[0] != 0 {
		t.Error("bytes field aliases the input buffer")
	}
	// A present empty value decodes to a non-nil empty slice.
	var empty OnBinaryMessageRequest
	if err := empty.Unmarshal(h(t, "12 00")); err != nil || empty.Data == nil || len(empty.Data) != 0 {
		t.Errorf("empty bytes: %#v, %v", empty.Data, err)
	}
}

func TestStringMap(t *testing.T) {
	req := &InitRequest{Config: map[string]string{"b": "", "a": "1"}}
	// Entries sorted by key; key and value are always written inside an entry.
	want := h(t, "0a 06 0a 01 61 12 01 31 0a 05 0a 01 62 12 00")
	expectBytes(t, "InitRequest", mustMarshal(t, req), want)

	var back InitRequest
	if err := back.Unmarshal(want); err != nil || len(back.Config) != 2 || back.Config["a"] != "1" {
		t.Errorf("decode: %v, %v", back.Config, err)
	}
	if v, ok := back.Config["b"]; !ok || v != "" {
		t.Errorf("empty value lost: %q %v", v, ok)
	}

	// Missing value, missing key, an unknown field inside an entry, and a
	// repeated key (last wins).
	var r GetPluginConfigResponse
	err := r.Unmarshal(h(t, "0a 03 0a 01 6b"+ // {k: ""}
		" 0a 03 12 01 76"+ // {"": v}
		" 0a 08 18 05 0a 01 78 12 01 31"+ // {x: 1} with field 3 = 5
		" 0a 06 0a 01 78 12 01 32")) // {x: 2}
	if err != nil {
		t.Fatal(err)
	}
	wantMap := map[string]string{"k": "", "": "v", "x": "2"}
	if len(r.Config) != len(wantMap) {
		t.Errorf("map = %v, want %v", r.Config, wantMap)
	}
	for k, v := range wantMap {
		if got, ok := r.Config[k]; !ok || got != v {
			t.Errorf("map[%q] = %q (%v), want %q", k, got, ok, v)
		}
	}
}

func TestUnknownFieldsSkipped(t *testing.T) {
	in := h(t, "28 96 01"+ // field 5 varint 150
		" 31 01 02 03 04 05 06 07 08"+ // field 6 fixed64
		" 3d 01 02 03 04"+ // field 7 fixed32
		" 42 02 ab cd"+ // field 8 bytes
		" 4b 08 01 53 54 4c"+ // field 9 group {field 1 varint, field 10 group {}}
		" 12 01 6e"+ // name = "n"
		" f8 ff ff ff 0f 00") // field 2^29-1 varint
	var r ArtistMBIDRequest
	if err := r.Unmarshal(in); err != nil || r.Name != "n" {
		t.Errorf("decode with unknown fields: %+v, %v", r, err)
	}
	var empty OnTextMessageResponse
	if err := empty.Unmarshal(h(t, "08 01")); err != nil {
		t.Errorf("empty message with unknown field: %v", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, s := range []string{
		"0a",                // missing length
		"12 05 61",          // length past the end
		"10 01",             // name (string) sent as varint: wrong wire type
		"00 01",             // field number 0
		"4b 08 01",          // unterminated group
		"4b 54",             // group closed with the wrong number
		"4c",                // stray end group
		"0f",                // wire type 7
		"31 01 02 03",       // truncated fixed64
		"12 ff ff ff ff 0f", // huge length
	} {
		var r ArtistMBIDRequest
		if err := r.Unmarshal(h(t, s)); err == nil {
			t.Errorf("Unmarshal(%s): expected an error, got %+v", s, r)
		}
	}
	var s ArtistSimilarRequest
	if err := s.Unmarshal(h(t, "22 01 01")); err == nil { // int32 sent length-delimited
		t.Error("int32 with wire type 2 must fail")
	}
}

func TestPackedScalars(t *testing.T) {
	var e encoder
	e.packedInt32s(1, []int32{1, -1, 300})
	e.packedInt32s(2, nil)
	e.packedInt64s(3, []int64{2})
	// 1 (1 byte) + -1 (10 bytes) + 300 (2 bytes) = 13 = 0x0d.
	want := h(t, "0a 0d 01 ff ff ff ff ff ff ff ff ff 01 ac 02 1a 01 02")
	expectBytes(t, "packed", e.buf, want)

	var got32 []int32
	var got64 []int64
	err := unmarshalFields(append(want, h(t, "08 05 18 07")...), func(d *decoder, num, wt int) error {
		switch num {
		case 1:
			return d.readInt32s(num, wt, &got32)
		case 3:
			return d.readInt64s(num, wt, &got64)
		}
		return d.skip(num, wt)
	})
	// Packed and unpacked forms may be mixed on the wire.
	if err != nil || len(got32) != 4 || got32[0] != 1 || got32[1] != -1 || got32[2] != 300 || got32[3] != 5 ||
		len(got64) != 2 || got64[0] != 2 || got64[1] != 7 {
		t.Errorf("packed decode: %v %v %v", got32, got64, err)
	}
}

func TestAllMessagesRoundTrip(t *testing.T) {
	msgs := []Message{
		&ArtistMBIDRequest{Id: "1", Name: "n"},
		&ArtistMBIDResponse{Mbid: "m"},
		&ArtistURLRequest{Id: "1", Name: "n", Mbid: "m"},
		&ArtistURLResponse{Url: "u"},
		&ArtistBiographyRequest{Id: "1", Name: "n", Mbid: "m"},
		&ArtistBiographyResponse{Biography: "b"},
		&ArtistSimilarRequest{Id: "1", Name: "n", Mbid: "m", Limit: 3},
		&ArtistSimilarResponse{Artists: []*Artist{{Name: "a", Mbid: "b"}}},
		&ArtistImageRequest{Id: "1", Name: "n", Mbid: "m"},
		&ArtistImageResponse{Images: []*ExternalImage{{Url: "u", Size: 1}}},
		&ArtistTopSongsRequest{Id: "1", ArtistName: "n", Mbid: "m", Count: 2},
		&ArtistTopSongsResponse{Songs: []*Song{{Name: "s", Mbid: "m"}}},
		&AlbumInfoRequest{Name: "n", Artist: "a", Mbid: "m"},
		&AlbumInfoResponse{Info: &AlbumInfo{Name: "n", Mbid: "m", Description: "d", Url: "u"}},
		&AlbumImagesRequest{Name: "n", Artist: "a", Mbid: "m"},
		&AlbumImagesResponse{Images: []*ExternalImage{{Url: "u", Size: -1}}},
		&ScrobblerIsAuthorizedRequest{UserId: "u", Username: "n"},
		&ScrobblerIsAuthorizedResponse{Authorized: true, Error: "e"},
		&ScrobblerNowPlayingRequest{UserId: "u", Username: "n", Track: &TrackInfo{Name: "t"}, Timestamp: 1},
		&ScrobblerNowPlayingResponse{Error: "e"},
		&ScrobblerScrobbleRequest{UserId: "u", Username: "n", Track: &TrackInfo{Name: "t"}, Timestamp: 1},
		&ScrobblerScrobbleResponse{Error: "e"},
		&SchedulerCallbackRequest{ScheduleId: "s", Payload: []byte("p"), IsRecurring: true},
		&SchedulerCallbackResponse{Error: "e"},
		&InitRequest{Config: map[string]string{"k": "v"}},
		&InitResponse{Error: "e"},
		&OnTextMessageRequest{ConnectionId: "c", Message: "m"},
		&OnTextMessageResponse{},
		&OnBinaryMessageRequest{ConnectionId: "c", Data: []byte{1}},
		&OnBinaryMessageResponse{},
		&OnErrorRequest{ConnectionId: "c", Error: "e"},
		&OnErrorResponse{},
		&OnCloseRequest{ConnectionId: "c", Code: 1000, Reason: "r"},
		&OnCloseResponse{},
		&GetPluginConfigRequest{},
		&GetPluginConfigResponse{Config: map[string]string{"k": "v"}},
	}
	for _, m := range msgs {
		b := mustMarshal(t, m)
		fresh := newLike(m)
		if err := fresh.Unmarshal(b); err != nil {
			t.Errorf("%T: %v", m, err)
			continue
		}
		expectBytes(t, "re-encoded "+typeName(m), mustMarshal(t, fresh), b)
	}
}
