//go:build !wasip1

package pdk

// Native (non-wasm) stand-ins so the package builds and its codec can be
// tested with a plain "go test". Host functions only exist inside a wasip1
// module; here they are served by nativeHost, which tests may fill in.

// hostImport is the native shape of a host function: request bytes in,
// response bytes out.
type hostImport func(req []byte) []byte

// nativeHost maps env import names to fake implementations.
var nativeHost = map[string]func([]byte) []byte{}

func nativeImport(name string) hostImport {
	return func(req []byte) []byte {
		fn := nativeHost[name]
		if fn == nil {
			panic("pdk: host function env." + name + " is only available in a wasip1 build")
		}
		return fn(req)
	}
}

func hostCall(fn hostImport, req []byte) []byte { return fn(req) }

var importGetPluginConfig = nativeImport("get_plugin_config")

var (
	importHttpGet             = nativeImport("get")
	importHttpPost            = nativeImport("post")
	importHttpPut             = nativeImport("put")
	importHttpDelete          = nativeImport("delete")
	importHttpPatch           = nativeImport("patch")
	importHttpHead            = nativeImport("head")
	importHttpOptions         = nativeImport("options")
	importWebSocketConnect    = nativeImport("connect")
	importWebSocketSendText   = nativeImport("send_text")
	importWebSocketSendBinary = nativeImport("send_binary")
	importWebSocketClose      = nativeImport("close")
	importScheduleOneTime     = nativeImport("schedule_one_time")
	importScheduleRecurring   = nativeImport("schedule_recurring")
	importCancelSchedule      = nativeImport("cancel_schedule")
	importTimeNow             = nativeImport("time_now")
	importCacheSetString      = nativeImport("set_string")
	importCacheGetString      = nativeImport("get_string")
	importCacheSetInt         = nativeImport("set_int")
	importCacheGetInt         = nativeImport("get_int")
	importCacheSetFloat       = nativeImport("set_float")
	importCacheGetFloat       = nativeImport("get_float")
	importCacheSetBytes       = nativeImport("set_bytes")
	importCacheGetBytes       = nativeImport("get_bytes")
	importCacheRemove         = nativeImport("remove")
	importCacheHas            = nativeImport("has")
)

var (
	importArtworkGetArtistUrl = nativeImport("get_artist_url")
	importArtworkGetAlbumUrl  = nativeImport("get_album_url")
	importArtworkGetTrackUrl  = nativeImport("get_track_url")
	importSubsonicAPICall     = nativeImport("call")
)
