package pdk

// Messages of the legacy protobuf package "artwork"
// (host/artwork/artwork.proto) and the wrappers of its host functions
// (env.get_artist_url, env.get_album_url, env.get_track_url). The manifest
// must grant the "artwork" permission. The service never fails: an unknown
// id still gives a URL, and without a configured ShareURL the URL starts
// with http://localhost (not publicly reachable).

// GetArtworkUrlRequest is artwork.GetArtworkUrlRequest.
type GetArtworkUrlRequest struct {
	Id   string // 1
	Size int32  // 2 (0 or negative = original size, no ?size=)
}

func (m *GetArtworkUrlRequest) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *GetArtworkUrlRequest) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.Id)
	e.int32(2, m.Size)
	return e.buf
}

func (m *GetArtworkUrlRequest) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		switch num {
		case 1:
			return d.readString(num, wt, &m.Id)
		case 2:
			return d.readInt32(num, wt, &m.Size)
		}
		return d.skip(num, wt)
	})
}

// GetArtworkUrlResponse is artwork.GetArtworkUrlResponse.
type GetArtworkUrlResponse struct {
	Url string // 1
}

func (m *GetArtworkUrlResponse) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *GetArtworkUrlResponse) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.Url)
	return e.buf
}

func (m *GetArtworkUrlResponse) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		if num == 1 {
			return d.readString(num, wt, &m.Url)
		}
		return d.skip(num, wt)
	})
}

func artworkURL(fn hostImport, req *GetArtworkUrlRequest) (*GetArtworkUrlResponse, error) {
	resp := &GetArtworkUrlResponse{}
	if err := callService(fn, req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// ArtworkGetArtistUrl returns the public image URL of an artist
// (env.get_artist_url).
func ArtworkGetArtistUrl(req *GetArtworkUrlRequest) (*GetArtworkUrlResponse, error) {
	return artworkURL(importArtworkGetArtistUrl, req)
}

// ArtworkGetAlbumUrl returns the public image URL of an album
// (env.get_album_url).
func ArtworkGetAlbumUrl(req *GetArtworkUrlRequest) (*GetArtworkUrlResponse, error) {
	return artworkURL(importArtworkGetAlbumUrl, req)
}

// ArtworkGetTrackUrl returns the public image URL of a track
// (env.get_track_url).
func ArtworkGetTrackUrl(req *GetArtworkUrlRequest) (*GetArtworkUrlResponse, error) {
	return artworkURL(importArtworkGetTrackUrl, req)
}
