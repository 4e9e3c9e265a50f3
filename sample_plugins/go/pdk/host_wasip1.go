//go:build wasip1

package pdk

import (
	"runtime"
	"unsafe"
)

// hostImport is the shape of every host service function: module "env",
// (i32 offset, i32 size) -> i64 packed ptr<<32|len (no error bit).
type hostImport func(ptr, size uint32) uint64

// hostCall sends an encoded request to a host function and returns the
// encoded response. The request is passed by address (not malloc'ed; a
// zero-length request is (0, 0)). The host writes a non-empty response into
// a buffer it obtains from the guest's malloc; like the original glue, that
// buffer is never freed.
func hostCall(fn hostImport, req []byte) []byte {
	var ptr uint32
	if len(req) > 0 {
		ptr = uint32(uintptr(unsafe.Pointer(unsafe.SliceData(req))))
	}
	packed := fn(ptr, uint32(len(req)))
	runtime.KeepAlive(req)
	// The original glue frees its own request pointer: a no-op, it was
	// never malloc'ed.
	wasmFree(ptr)
	return guestBytes(unpackResult(packed))
}

// Host service imports. Add further services here, one declaration each,
// and wrap them like GetPluginConfig.

//go:wasmimport env get_plugin_config
func importGetPluginConfig(ptr, size uint32) uint64

//go:wasmimport env get
func importHttpGet(ptr, size uint32) uint64

//go:wasmimport env post
func importHttpPost(ptr, size uint32) uint64

//go:wasmimport env put
func importHttpPut(ptr, size uint32) uint64

//go:wasmimport env delete
func importHttpDelete(ptr, size uint32) uint64

//go:wasmimport env patch
func importHttpPatch(ptr, size uint32) uint64

//go:wasmimport env head
func importHttpHead(ptr, size uint32) uint64

//go:wasmimport env options
func importHttpOptions(ptr, size uint32) uint64

//go:wasmimport env connect
func importWebSocketConnect(ptr, size uint32) uint64

//go:wasmimport env send_text
func importWebSocketSendText(ptr, size uint32) uint64

//go:wasmimport env send_binary
func importWebSocketSendBinary(ptr, size uint32) uint64

//go:wasmimport env close
func importWebSocketClose(ptr, size uint32) uint64

//go:wasmimport env schedule_one_time
func importScheduleOneTime(ptr, size uint32) uint64

//go:wasmimport env schedule_recurring
func importScheduleRecurring(ptr, size uint32) uint64

//go:wasmimport env cancel_schedule
func importCancelSchedule(ptr, size uint32) uint64

//go:wasmimport env time_now
func importTimeNow(ptr, size uint32) uint64

//go:wasmimport env set_string
func importCacheSetString(ptr, size uint32) uint64

//go:wasmimport env get_string
func importCacheGetString(ptr, size uint32) uint64

//go:wasmimport env set_int
func importCacheSetInt(ptr, size uint32) uint64

//go:wasmimport env get_int
func importCacheGetInt(ptr, size uint32) uint64

//go:wasmimport env set_float
func importCacheSetFloat(ptr, size uint32) uint64

//go:wasmimport env get_float
func importCacheGetFloat(ptr, size uint32) uint64

//go:wasmimport env set_bytes
func importCacheSetBytes(ptr, size uint32) uint64

//go:wasmimport env get_bytes
func importCacheGetBytes(ptr, size uint32) uint64

//go:wasmimport env remove
func importCacheRemove(ptr, size uint32) uint64

//go:wasmimport env has
func importCacheHas(ptr, size uint32) uint64

//go:wasmimport env get_artist_url
func importArtworkGetArtistUrl(ptr, size uint32) uint64

//go:wasmimport env get_album_url
func importArtworkGetAlbumUrl(ptr, size uint32) uint64

//go:wasmimport env get_track_url
func importArtworkGetTrackUrl(ptr, size uint32) uint64

//go:wasmimport env call
func importSubsonicAPICall(ptr, size uint32) uint64
