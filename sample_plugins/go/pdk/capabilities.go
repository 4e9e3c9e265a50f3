package pdk

import "context"

// Capability interfaces of the legacy "api" package. A plugin implements one
// or more of them and registers the implementation from an init function.
// Each method returns either a response (nil means an all-defaults response)
// or an error, whose Error() text is sent to the host as the error string.

// MetadataAgent is the "MetadataAgent" capability.
type MetadataAgent interface {
	GetArtistMBID(context.Context, *ArtistMBIDRequest) (*ArtistMBIDResponse, error)
	GetArtistURL(context.Context, *ArtistURLRequest) (*ArtistURLResponse, error)
	GetArtistBiography(context.Context, *ArtistBiographyRequest) (*ArtistBiographyResponse, error)
	GetSimilarArtists(context.Context, *ArtistSimilarRequest) (*ArtistSimilarResponse, error)
	GetArtistImages(context.Context, *ArtistImageRequest) (*ArtistImageResponse, error)
	GetArtistTopSongs(context.Context, *ArtistTopSongsRequest) (*ArtistTopSongsResponse, error)
	GetAlbumInfo(context.Context, *AlbumInfoRequest) (*AlbumInfoResponse, error)
	GetAlbumImages(context.Context, *AlbumImagesRequest) (*AlbumImagesResponse, error)
}

// Scrobbler is the "Scrobbler" capability.
type Scrobbler interface {
	IsAuthorized(context.Context, *ScrobblerIsAuthorizedRequest) (*ScrobblerIsAuthorizedResponse, error)
	NowPlaying(context.Context, *ScrobblerNowPlayingRequest) (*ScrobblerNowPlayingResponse, error)
	Scrobble(context.Context, *ScrobblerScrobbleRequest) (*ScrobblerScrobbleResponse, error)
}

// SchedulerCallback is the "SchedulerCallback" capability.
type SchedulerCallback interface {
	OnSchedulerCallback(context.Context, *SchedulerCallbackRequest) (*SchedulerCallbackResponse, error)
}

// LifecycleManagement is the "LifecycleManagement" capability.
type LifecycleManagement interface {
	OnInit(context.Context, *InitRequest) (*InitResponse, error)
}

// WebSocketCallback is the "WebSocketCallback" capability.
type WebSocketCallback interface {
	OnTextMessage(context.Context, *OnTextMessageRequest) (*OnTextMessageResponse, error)
	OnBinaryMessage(context.Context, *OnBinaryMessageRequest) (*OnBinaryMessageResponse, error)
	OnError(context.Context, *OnErrorRequest) (*OnErrorResponse, error)
	OnClose(context.Context, *OnCloseRequest) (*OnCloseResponse, error)
}

// Registered implementations. A method export of a capability that was never
// registered calls through the nil interface and panics (a trap), as in the
// original glue.
var (
	metadataAgent       MetadataAgent
	scrobbler           Scrobbler
	schedulerCallback   SchedulerCallback
	lifecycleManagement LifecycleManagement
	webSocketCallback   WebSocketCallback
)

// RegisterMetadataAgent installs the MetadataAgent implementation.
func RegisterMetadataAgent(p MetadataAgent) { metadataAgent = p }

// RegisterScrobbler installs the Scrobbler implementation.
func RegisterScrobbler(p Scrobbler) { scrobbler = p }

// RegisterSchedulerCallback installs the SchedulerCallback implementation.
func RegisterSchedulerCallback(p SchedulerCallback) { schedulerCallback = p }

// RegisterLifecycleManagement installs the LifecycleManagement implementation.
func RegisterLifecycleManagement(p LifecycleManagement) { lifecycleManagement = p }

// RegisterWebSocketCallback installs the WebSocketCallback implementation.
func RegisterWebSocketCallback(p WebSocketCallback) { webSocketCallback = p }

// apiVersion is what every <capability>_api_version export returns.
const apiVersion = 1

// invoke runs one capability method the way the original glue does:
//   - request bytes that fail to decode -> empty successful result;
//   - implementation error e            -> e.Error() bytes, isErr = true;
//   - otherwise                         -> the encoded response (a nil or
//     all-defaults response encodes to zero bytes).
func invoke[Req any, PReq interface {
	*Req
	Message
}, Resp Message](in []byte, method func(context.Context, PReq) (Resp, error)) (out []byte, isErr bool) {
	req := PReq(new(Req))
	if err := req.Unmarshal(in); err != nil {
		return nil, false
	}
	resp, err := method(context.Background(), req)
	if err != nil {
		return []byte(err.Error()), true
	}
	b, err := resp.Marshal()
	if err != nil {
		return nil, false
	}
	return b, false
}

// packResult builds the i64 a method export returns: ptr<<32 | len, with
// bit 31 set when the bytes are an error string. Zero-length data is
// reported as pointer 0.
func packResult(ptr uint32, size int, isErr bool) uint64 {
	if size == 0 {
		ptr = 0
	}
	r := uint64(ptr)<<32 | uint64(uint32(size))
	if isErr {
		r |= 1 << 31
	}
	return r
}

// unpackResult splits a packed i64 (as returned by host imports).
func unpackResult(r uint64) (ptr, size uint32) {
	return uint32(r >> 32), uint32(r)
}

// Method dispatchers, one per capability method export. Evaluating the
// method value on an unregistered (nil) capability panics.

func callMetadataAgentGetArtistMBID(in []byte) ([]byte, bool) {
	return invoke(in, metadataAgent.GetArtistMBID)
}

func callMetadataAgentGetArtistURL(in []byte) ([]byte, bool) {
	return invoke(in, metadataAgent.GetArtistURL)
}

func callMetadataAgentGetArtistBiography(in []byte) ([]byte, bool) {
	return invoke(in, metadataAgent.GetArtistBiography)
}

func callMetadataAgentGetSimilarArtists(in []byte) ([]byte, bool) {
	return invoke(in, metadataAgent.GetSimilarArtists)
}

func callMetadataAgentGetArtistImages(in []byte) ([]byte, bool) {
	return invoke(in, metadataAgent.GetArtistImages)
}

func callMetadataAgentGetArtistTopSongs(in []byte) ([]byte, bool) {
	return invoke(in, metadataAgent.GetArtistTopSongs)
}

func callMetadataAgentGetAlbumInfo(in []byte) ([]byte, bool) {
	return invoke(in, metadataAgent.GetAlbumInfo)
}

func callMetadataAgentGetAlbumImages(in []byte) ([]byte, bool) {
	return invoke(in, metadataAgent.GetAlbumImages)
}

func callScrobblerIsAuthorized(in []byte) ([]byte, bool) {
	return invoke(in, scrobbler.IsAuthorized)
}

func callScrobblerNowPlaying(in []byte) ([]byte, bool) {
	return invoke(in, scrobbler.NowPlaying)
}

func callScrobblerScrobble(in []byte) ([]byte, bool) {
	return invoke(in, scrobbler.Scrobble)
}

func callSchedulerCallbackOnSchedulerCallback(in []byte) ([]byte, bool) {
	return invoke(in, schedulerCallback.OnSchedulerCallback)
}

func callLifecycleManagementOnInit(in []byte) ([]byte, bool) {
	return invoke(in, lifecycleManagement.OnInit)
}

func callWebSocketCallbackOnTextMessage(in []byte) ([]byte, bool) {
	return invoke(in, webSocketCallback.OnTextMessage)
}

func callWebSocketCallbackOnBinaryMessage(in []byte) ([]byte, bool) {
	return invoke(in, webSocketCallback.OnBinaryMessage)
}

func callWebSocketCallbackOnError(in []byte) ([]byte, bool) {
	return invoke(in, webSocketCallback.OnError)
}

func callWebSocketCallbackOnClose(in []byte) ([]byte, bool) {
	return invoke(in, webSocketCallback.OnClose)
}
