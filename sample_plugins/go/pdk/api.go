package pdk

// Messages of the legacy protobuf package "api" (api/api.proto): the
// requests and responses of the capability services a plugin implements.
// Field names follow protoc-gen-go's naming of the .proto fields so code
// written against the original glue reads the same. The comment on each
// field is its field number.

// ---------------------------------------------------------- MetadataAgent

// ArtistMBIDRequest is api.ArtistMBIDRequest.
type ArtistMBIDRequest struct {
	Id   string // 1
	Name string // 2
}

func (m *ArtistMBIDRequest) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *ArtistMBIDRequest) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.Id)
	e.string(2, m.Name)
	return e.buf
}

func (m *ArtistMBIDRequest) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		switch num {
		case 1:
			return d.readString(num, wt, &m.Id)
		case 2:
			return d.readString(num, wt, &m.Name)
		}
		return d.skip(num, wt)
	})
}

// ArtistMBIDResponse is api.ArtistMBIDResponse.
type ArtistMBIDResponse struct {
	Mbid string // 1
}

func (m *ArtistMBIDResponse) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *ArtistMBIDResponse) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.Mbid)
	return e.buf
}

func (m *ArtistMBIDResponse) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		if num == 1 {
			return d.readString(num, wt, &m.Mbid)
		}
		return d.skip(num, wt)
	})
}

// ArtistURLRequest is api.ArtistURLRequest.
type ArtistURLRequest struct {
	Id   string // 1
	Name string // 2
	Mbid string // 3
}

func (m *ArtistURLRequest) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *ArtistURLRequest) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.Id)
	e.string(2, m.Name)
	e.string(3, m.Mbid)
	return e.buf
}

func (m *ArtistURLRequest) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		switch num {
		case 1:
			return d.readString(num, wt, &m.Id)
		case 2:
			return d.readString(num, wt, &m.Name)
		case 3:
			return d.readString(num, wt, &m.Mbid)
		}
		return d.skip(num, wt)
	})
}

// ArtistURLResponse is api.ArtistURLResponse.
type ArtistURLResponse struct {
	Url string // 1
}

func (m *ArtistURLResponse) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *ArtistURLResponse) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.Url)
	return e.buf
}

func (m *ArtistURLResponse) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		if num == 1 {
			return d.readString(num, wt, &m.Url)
		}
		return d.skip(num, wt)
	})
}

// ArtistBiographyRequest is api.ArtistBiographyRequest.
type ArtistBiographyRequest struct {
	Id   string // 1
	Name string // 2
	Mbid string // 3
}

func (m *ArtistBiographyRequest) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *ArtistBiographyRequest) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.Id)
	e.string(2, m.Name)
	e.string(3, m.Mbid)
	return e.buf
}

func (m *ArtistBiographyRequest) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		switch num {
		case 1:
			return d.readString(num, wt, &m.Id)
		case 2:
			return d.readString(num, wt, &m.Name)
		case 3:
			return d.readString(num, wt, &m.Mbid)
		}
		return d.skip(num, wt)
	})
}

// ArtistBiographyResponse is api.ArtistBiographyResponse.
type ArtistBiographyResponse struct {
	Biography string // 1
}

func (m *ArtistBiographyResponse) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *ArtistBiographyResponse) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.Biography)
	return e.buf
}

func (m *ArtistBiographyResponse) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		if num == 1 {
			return d.readString(num, wt, &m.Biography)
		}
		return d.skip(num, wt)
	})
}

// ArtistSimilarRequest is api.ArtistSimilarRequest.
type ArtistSimilarRequest struct {
	Id    string // 1
	Name  string // 2
	Mbid  string // 3
	Limit int32  // 4
}

func (m *ArtistSimilarRequest) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *ArtistSimilarRequest) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.Id)
	e.string(2, m.Name)
	e.string(3, m.Mbid)
	e.int32(4, m.Limit)
	return e.buf
}

func (m *ArtistSimilarRequest) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		switch num {
		case 1:
			return d.readString(num, wt, &m.Id)
		case 2:
			return d.readString(num, wt, &m.Name)
		case 3:
			return d.readString(num, wt, &m.Mbid)
		case 4:
			return d.readInt32(num, wt, &m.Limit)
		}
		return d.skip(num, wt)
	})
}

// Artist is api.Artist.
type Artist struct {
	Name string // 1
	Mbid string // 2
}

func (m *Artist) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *Artist) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.Name)
	e.string(2, m.Mbid)
	return e.buf
}

func (m *Artist) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		switch num {
		case 1:
			return d.readString(num, wt, &m.Name)
		case 2:
			return d.readString(num, wt, &m.Mbid)
		}
		return d.skip(num, wt)
	})
}

// ArtistSimilarResponse is api.ArtistSimilarResponse.
type ArtistSimilarResponse struct {
	Artists []*Artist // 1
}

func (m *ArtistSimilarResponse) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *ArtistSimilarResponse) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	for _, a := range m.Artists {
		e.message(1, a)
	}
	return e.buf
}

func (m *ArtistSimilarResponse) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		if num == 1 {
			a := &Artist{}
			m.Artists = append(m.Artists, a)
			return d.readMessage(num, wt, a)
		}
		return d.skip(num, wt)
	})
}

// ArtistImageRequest is api.ArtistImageRequest.
type ArtistImageRequest struct {
	Id   string // 1
	Name string // 2
	Mbid string // 3
}

func (m *ArtistImageRequest) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *ArtistImageRequest) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.Id)
	e.string(2, m.Name)
	e.string(3, m.Mbid)
	return e.buf
}

func (m *ArtistImageRequest) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		switch num {
		case 1:
			return d.readString(num, wt, &m.Id)
		case 2:
			return d.readString(num, wt, &m.Name)
		case 3:
			return d.readString(num, wt, &m.Mbid)
		}
		return d.skip(num, wt)
	})
}

// ExternalImage is api.ExternalImage.
type ExternalImage struct {
	Url  string // 1
	Size int32  // 2
}

func (m *ExternalImage) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *ExternalImage) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.Url)
	e.int32(2, m.Size)
	return e.buf
}

func (m *ExternalImage) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		switch num {
		case 1:
			return d.readString(num, wt, &m.Url)
		case 2:
			return d.readInt32(num, wt, &m.Size)
		}
		return d.skip(num, wt)
	})
}

// ArtistImageResponse is api.ArtistImageResponse.
type ArtistImageResponse struct {
	Images []*ExternalImage // 1
}

func (m *ArtistImageResponse) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *ArtistImageResponse) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	for _, img := range m.Images {
		e.message(1, img)
	}
	return e.buf
}

func (m *ArtistImageResponse) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		if num == 1 {
			img := &ExternalImage{}
			m.Images = append(m.Images, img)
			return d.readMessage(num, wt, img)
		}
		return d.skip(num, wt)
	})
}

// ArtistTopSongsRequest is api.ArtistTopSongsRequest.
type ArtistTopSongsRequest struct {
	Id         string // 1
	ArtistName string // 2 (artistName in the .proto)
	Mbid       string // 3
	Count      int32  // 4
}

func (m *ArtistTopSongsRequest) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *ArtistTopSongsRequest) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.Id)
	e.string(2, m.ArtistName)
	e.string(3, m.Mbid)
	e.int32(4, m.Count)
	return e.buf
}

func (m *ArtistTopSongsRequest) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		switch num {
		case 1:
			return d.readString(num, wt, &m.Id)
		case 2:
			return d.readString(num, wt, &m.ArtistName)
		case 3:
			return d.readString(num, wt, &m.Mbid)
		case 4:
			return d.readInt32(num, wt, &m.Count)
		}
		return d.skip(num, wt)
	})
}

// Song is api.Song.
type Song struct {
	Name string // 1
	Mbid string // 2
}

func (m *Song) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *Song) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.Name)
	e.string(2, m.Mbid)
	return e.buf
}

func (m *Song) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		switch num {
		case 1:
			return d.readString(num, wt, &m.Name)
		case 2:
			return d.readString(num, wt, &m.Mbid)
		}
		return d.skip(num, wt)
	})
}

// ArtistTopSongsResponse is api.ArtistTopSongsResponse.
type ArtistTopSongsResponse struct {
	Songs []*Song // 1
}

func (m *ArtistTopSongsResponse) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *ArtistTopSongsResponse) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	for _, s := range m.Songs {
		e.message(1, s)
	}
	return e.buf
}

func (m *ArtistTopSongsResponse) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		if num == 1 {
			s := &Song{}
			m.Songs = append(m.Songs, s)
			return d.readMessage(num, wt, s)
		}
		return d.skip(num, wt)
	})
}

// AlbumInfoRequest is api.AlbumInfoRequest.
type AlbumInfoRequest struct {
	Name   string // 1
	Artist string // 2
	Mbid   string // 3
}

func (m *AlbumInfoRequest) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *AlbumInfoRequest) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.Name)
	e.string(2, m.Artist)
	e.string(3, m.Mbid)
	return e.buf
}

func (m *AlbumInfoRequest) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		switch num {
		case 1:
			return d.readString(num, wt, &m.Name)
		case 2:
			return d.readString(num, wt, &m.Artist)
		case 3:
			return d.readString(num, wt, &m.Mbid)
		}
		return d.skip(num, wt)
	})
}

// AlbumInfo is api.AlbumInfo.
type AlbumInfo struct {
	Name        string // 1
	Mbid        string // 2
	Description string // 3
	Url         string // 4
}

func (m *AlbumInfo) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *AlbumInfo) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.Name)
	e.string(2, m.Mbid)
	e.string(3, m.Description)
	e.string(4, m.Url)
	return e.buf
}

func (m *AlbumInfo) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		switch num {
		case 1:
			return d.readString(num, wt, &m.Name)
		case 2:
			return d.readString(num, wt, &m.Mbid)
		case 3:
			return d.readString(num, wt, &m.Description)
		case 4:
			return d.readString(num, wt, &m.Url)
		}
		return d.skip(num, wt)
	})
}

// AlbumInfoResponse is api.AlbumInfoResponse. A nil Info means "no info";
// a non-nil empty Info is encoded (as an empty sub-message).
type AlbumInfoResponse struct {
	Info *AlbumInfo // 1
}

func (m *AlbumInfoResponse) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *AlbumInfoResponse) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	if m.Info != nil {
		e.message(1, m.Info)
	}
	return e.buf
}

func (m *AlbumInfoResponse) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		if num == 1 {
			if m.Info == nil {
				m.Info = &AlbumInfo{}
			}
			return d.readMessage(num, wt, m.Info)
		}
		return d.skip(num, wt)
	})
}

// AlbumImagesRequest is api.AlbumImagesRequest.
type AlbumImagesRequest struct {
	Name   string // 1
	Artist string // 2
	Mbid   string // 3
}

func (m *AlbumImagesRequest) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *AlbumImagesRequest) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.Name)
	e.string(2, m.Artist)
	e.string(3, m.Mbid)
	return e.buf
}

func (m *AlbumImagesRequest) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		switch num {
		case 1:
			return d.readString(num, wt, &m.Name)
		case 2:
			return d.readString(num, wt, &m.Artist)
		case 3:
			return d.readString(num, wt, &m.Mbid)
		}
		return d.skip(num, wt)
	})
}

// AlbumImagesResponse is api.AlbumImagesResponse.
type AlbumImagesResponse struct {
	Images []*ExternalImage // 1
}

func (m *AlbumImagesResponse) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *AlbumImagesResponse) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	for _, img := range m.Images {
		e.message(1, img)
	}
	return e.buf
}

func (m *AlbumImagesResponse) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		if num == 1 {
			img := &ExternalImage{}
			m.Images = append(m.Images, img)
			return d.readMessage(num, wt, img)
		}
		return d.skip(num, wt)
	})
}

// -------------------------------------------------------------- Scrobbler

// ScrobblerIsAuthorizedRequest is api.ScrobblerIsAuthorizedRequest.
type ScrobblerIsAuthorizedRequest struct {
	UserId   string // 1
	Username string // 2
}

func (m *ScrobblerIsAuthorizedRequest) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *ScrobblerIsAuthorizedRequest) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.UserId)
	e.string(2, m.Username)
	return e.buf
}

func (m *ScrobblerIsAuthorizedRequest) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		switch num {
		case 1:
			return d.readString(num, wt, &m.UserId)
		case 2:
			return d.readString(num, wt, &m.Username)
		}
		return d.skip(num, wt)
	})
}

// ScrobblerIsAuthorizedResponse is api.ScrobblerIsAuthorizedResponse.
type ScrobblerIsAuthorizedResponse struct {
	Authorized bool   // 1
	Error      string // 2
}

func (m *ScrobblerIsAuthorizedResponse) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *ScrobblerIsAuthorizedResponse) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.bool(1, m.Authorized)
	e.string(2, m.Error)
	return e.buf
}

func (m *ScrobblerIsAuthorizedResponse) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		switch num {
		case 1:
			return d.readBool(num, wt, &m.Authorized)
		case 2:
			return d.readString(num, wt, &m.Error)
		}
		return d.skip(num, wt)
	})
}

// TrackInfo is api.TrackInfo.
type TrackInfo struct {
	Id           string    // 1
	Mbid         string    // 2
	Name         string    // 3
	Album        string    // 4
	AlbumMbid    string    // 5
	Artists      []*Artist // 6
	AlbumArtists []*Artist // 7
	Length       int32     // 8, seconds
	Position     int32     // 9, seconds
}

func (m *TrackInfo) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *TrackInfo) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.Id)
	e.string(2, m.Mbid)
	e.string(3, m.Name)
	e.string(4, m.Album)
	e.string(5, m.AlbumMbid)
	for _, a := range m.Artists {
		e.message(6, a)
	}
	for _, a := range m.AlbumArtists {
		e.message(7, a)
	}
	e.int32(8, m.Length)
	e.int32(9, m.Position)
	return e.buf
}

func (m *TrackInfo) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		switch num {
		case 1:
			return d.readString(num, wt, &m.Id)
		case 2:
			return d.readString(num, wt, &m.Mbid)
		case 3:
			return d.readString(num, wt, &m.Name)
		case 4:
			return d.readString(num, wt, &m.Album)
		case 5:
			return d.readString(num, wt, &m.AlbumMbid)
		case 6:
			a := &Artist{}
			m.Artists = append(m.Artists, a)
			return d.readMessage(num, wt, a)
		case 7:
			a := &Artist{}
			m.AlbumArtists = append(m.AlbumArtists, a)
			return d.readMessage(num, wt, a)
		case 8:
			return d.readInt32(num, wt, &m.Length)
		case 9:
			return d.readInt32(num, wt, &m.Position)
		}
		return d.skip(num, wt)
	})
}

// ScrobblerNowPlayingRequest is api.ScrobblerNowPlayingRequest.
type ScrobblerNowPlayingRequest struct {
	UserId    string     // 1
	Username  string     // 2
	Track     *TrackInfo // 3
	Timestamp int64      // 4, Unix seconds
}

func (m *ScrobblerNowPlayingRequest) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *ScrobblerNowPlayingRequest) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.UserId)
	e.string(2, m.Username)
	if m.Track != nil {
		e.message(3, m.Track)
	}
	e.int64(4, m.Timestamp)
	return e.buf
}

func (m *ScrobblerNowPlayingRequest) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		switch num {
		case 1:
			return d.readString(num, wt, &m.UserId)
		case 2:
			return d.readString(num, wt, &m.Username)
		case 3:
			if m.Track == nil {
				m.Track = &TrackInfo{}
			}
			return d.readMessage(num, wt, m.Track)
		case 4:
			return d.readInt64(num, wt, &m.Timestamp)
		}
		return d.skip(num, wt)
	})
}

// ScrobblerNowPlayingResponse is api.ScrobblerNowPlayingResponse.
type ScrobblerNowPlayingResponse struct {
	Error string // 1
}

func (m *ScrobblerNowPlayingResponse) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *ScrobblerNowPlayingResponse) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.Error)
	return e.buf
}

func (m *ScrobblerNowPlayingResponse) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		if num == 1 {
			return d.readString(num, wt, &m.Error)
		}
		return d.skip(num, wt)
	})
}

// ScrobblerScrobbleRequest is api.ScrobblerScrobbleRequest.
type ScrobblerScrobbleRequest struct {
	UserId    string     // 1
	Username  string     // 2
	Track     *TrackInfo // 3
	Timestamp int64      // 4, Unix seconds
}

func (m *ScrobblerScrobbleRequest) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *ScrobblerScrobbleRequest) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.UserId)
	e.string(2, m.Username)
	if m.Track != nil {
		e.message(3, m.Track)
	}
	e.int64(4, m.Timestamp)
	return e.buf
}

func (m *ScrobblerScrobbleRequest) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		switch num {
		case 1:
			return d.readString(num, wt, &m.UserId)
		case 2:
			return d.readString(num, wt, &m.Username)
		case 3:
			if m.Track == nil {
				m.Track = &TrackInfo{}
			}
			return d.readMessage(num, wt, m.Track)
		case 4:
			return d.readInt64(num, wt, &m.Timestamp)
		}
		return d.skip(num, wt)
	})
}

// ScrobblerScrobbleResponse is api.ScrobblerScrobbleResponse.
type ScrobblerScrobbleResponse struct {
	Error string // 1
}

func (m *ScrobblerScrobbleResponse) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *ScrobblerScrobbleResponse) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.Error)
	return e.buf
}

func (m *ScrobblerScrobbleResponse) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		if num == 1 {
			return d.readString(num, wt, &m.Error)
		}
		return d.skip(num, wt)
	})
}

// ------------------------------------------------------ SchedulerCallback

// SchedulerCallbackRequest is api.SchedulerCallbackRequest.
type SchedulerCallbackRequest struct {
	ScheduleId  string // 1, the plugin-visible id
	Payload     []byte // 2
	IsRecurring bool   // 3
}

func (m *SchedulerCallbackRequest) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *SchedulerCallbackRequest) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.ScheduleId)
	e.bytes(2, m.Payload)
	e.bool(3, m.IsRecurring)
	return e.buf
}

func (m *SchedulerCallbackRequest) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		switch num {
		case 1:
			return d.readString(num, wt, &m.ScheduleId)
		case 2:
			return d.readBytes(num, wt, &m.Payload)
		case 3:
			return d.readBool(num, wt, &m.IsRecurring)
		}
		return d.skip(num, wt)
	})
}

// SchedulerCallbackResponse is api.SchedulerCallbackResponse.
type SchedulerCallbackResponse struct {
	Error string // 1
}

func (m *SchedulerCallbackResponse) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *SchedulerCallbackResponse) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.Error)
	return e.buf
}

func (m *SchedulerCallbackResponse) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		if num == 1 {
			return d.readString(num, wt, &m.Error)
		}
		return d.skip(num, wt)
	})
}

// ---------------------------------------------------- LifecycleManagement

// InitRequest is api.InitRequest.
type InitRequest struct {
	Config map[string]string // 1
}

func (m *InitRequest) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *InitRequest) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.stringMap(1, m.Config)
	return e.buf
}

func (m *InitRequest) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		if num == 1 {
			return d.readStringMapEntry(num, wt, &m.Config)
		}
		return d.skip(num, wt)
	})
}

// InitResponse is api.InitResponse.
type InitResponse struct {
	Error string // 1
}

func (m *InitResponse) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *InitResponse) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.Error)
	return e.buf
}

func (m *InitResponse) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		if num == 1 {
			return d.readString(num, wt, &m.Error)
		}
		return d.skip(num, wt)
	})
}

// ------------------------------------------------------ WebSocketCallback

// OnTextMessageRequest is api.OnTextMessageRequest.
type OnTextMessageRequest struct {
	ConnectionId string // 1
	Message      string // 2
}

func (m *OnTextMessageRequest) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *OnTextMessageRequest) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.ConnectionId)
	e.string(2, m.Message)
	return e.buf
}

func (m *OnTextMessageRequest) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		switch num {
		case 1:
			return d.readString(num, wt, &m.ConnectionId)
		case 2:
			return d.readString(num, wt, &m.Message)
		}
		return d.skip(num, wt)
	})
}

// OnTextMessageResponse is api.OnTextMessageResponse (no fields).
type OnTextMessageResponse struct{}

func (m *OnTextMessageResponse) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *OnTextMessageResponse) appendTo(b []byte) []byte { return b }

func (m *OnTextMessageResponse) Unmarshal(b []byte) error { return unmarshalEmpty(b) }

// OnBinaryMessageRequest is api.OnBinaryMessageRequest.
type OnBinaryMessageRequest struct {
	ConnectionId string // 1
	Data         []byte // 2
}

func (m *OnBinaryMessageRequest) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *OnBinaryMessageRequest) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.ConnectionId)
	e.bytes(2, m.Data)
	return e.buf
}

func (m *OnBinaryMessageRequest) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		switch num {
		case 1:
			return d.readString(num, wt, &m.ConnectionId)
		case 2:
			return d.readBytes(num, wt, &m.Data)
		}
		return d.skip(num, wt)
	})
}

// OnBinaryMessageResponse is api.OnBinaryMessageResponse (no fields).
type OnBinaryMessageResponse struct{}

func (m *OnBinaryMessageResponse) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *OnBinaryMessageResponse) appendTo(b []byte) []byte { return b }

func (m *OnBinaryMessageResponse) Unmarshal(b []byte) error { return unmarshalEmpty(b) }

// OnErrorRequest is api.OnErrorRequest.
type OnErrorRequest struct {
	ConnectionId string // 1
	Error        string // 2
}

func (m *OnErrorRequest) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *OnErrorRequest) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.ConnectionId)
	e.string(2, m.Error)
	return e.buf
}

func (m *OnErrorRequest) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		switch num {
		case 1:
			return d.readString(num, wt, &m.ConnectionId)
		case 2:
			return d.readString(num, wt, &m.Error)
		}
		return d.skip(num, wt)
	})
}

// OnErrorResponse is api.OnErrorResponse (no fields).
type OnErrorResponse struct{}

func (m *OnErrorResponse) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *OnErrorResponse) appendTo(b []byte) []byte { return b }

func (m *OnErrorResponse) Unmarshal(b []byte) error { return unmarshalEmpty(b) }

// OnCloseRequest is api.OnCloseRequest.
type OnCloseRequest struct {
	ConnectionId string // 1
	Code         int32  // 2
	Reason       string // 3
}

func (m *OnCloseRequest) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *OnCloseRequest) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.ConnectionId)
	e.int32(2, m.Code)
	e.string(3, m.Reason)
	return e.buf
}

func (m *OnCloseRequest) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		switch num {
		case 1:
			return d.readString(num, wt, &m.ConnectionId)
		case 2:
			return d.readInt32(num, wt, &m.Code)
		case 3:
			return d.readString(num, wt, &m.Reason)
		}
		return d.skip(num, wt)
	})
}

// OnCloseResponse is api.OnCloseResponse (no fields).
type OnCloseResponse struct{}

func (m *OnCloseResponse) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *OnCloseResponse) appendTo(b []byte) []byte { return b }

func (m *OnCloseResponse) Unmarshal(b []byte) error { return unmarshalEmpty(b) }

// unmarshalEmpty validates and skips the (unknown) fields of a message
// that declares none.
func unmarshalEmpty(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error { return d.skip(num, wt) })
}
