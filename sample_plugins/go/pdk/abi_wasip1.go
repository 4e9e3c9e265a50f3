//go:build wasip1

package pdk

import (
	"runtime"
	"unsafe"
)

// Guest memory management, as in the original glue: every malloc'ed block
// is a Go byte slice pinned in this map until free is called with its
// address. Buffers the host writes responses into are never freed by the
// guest (they stay pinned for the life of the instance, like the original).
var allocations = map[uintptr][]byte{}

// result keeps the last method result alive until the next export call:
// the host reads it after the export returns. It is not a malloc'ed block,
// so the host's free on it is a no-op.
var result []byte

//go:wasmexport malloc
func wasmMalloc(size uint32) uint32 {
	if size == 0 {
		return 0
	}
	buf := make([]byte, size)
	ptr := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	allocations[ptr] = buf
	return uint32(ptr)
}

//go:wasmexport free
func wasmFree(ptr uint32) {
	delete(allocations, uintptr(ptr))
	runtime.Gosched()
}

// guestBytes views size bytes of linear memory at address ptr (an address
// handed over by the host: a malloc'ed block or a host-written buffer).
func guestBytes(ptr, size uint32) []byte {
	if size == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(nil), uintptr(ptr))), size)
}

// export adapts a dispatcher to the (ptr, size) -> packed i64 ABI.
func export(ptr, size uint32, call func([]byte) ([]byte, bool)) uint64 {
	out, isErr := call(guestBytes(ptr, size))
	result = out
	var outPtr uint32
	if len(out) > 0 {
		outPtr = uint32(uintptr(unsafe.Pointer(unsafe.SliceData(out))))
	}
	return packResult(outPtr, len(out), isErr)
}

// ------------------------------------------------ <capability>_api_version

//go:wasmexport metadata_agent_api_version
func metadataAgentAPIVersion() uint64 { return apiVersion }

//go:wasmexport scrobbler_api_version
func scrobblerAPIVersion() uint64 { return apiVersion }

//go:wasmexport scheduler_callback_api_version
func schedulerCallbackAPIVersion() uint64 { return apiVersion }

//go:wasmexport lifecycle_management_api_version
func lifecycleManagementAPIVersion() uint64 { return apiVersion }

//go:wasmexport web_socket_callback_api_version
func webSocketCallbackAPIVersion() uint64 { return apiVersion }

// ------------------------------------------------------- method exports

//go:wasmexport metadata_agent_get_artist_mbid
func exportMetadataAgentGetArtistMBID(ptr, size uint32) uint64 {
	return export(ptr, size, callMetadataAgentGetArtistMBID)
}

//go:wasmexport metadata_agent_get_artist_url
func exportMetadataAgentGetArtistURL(ptr, size uint32) uint64 {
	return export(ptr, size, callMetadataAgentGetArtistURL)
}

//go:wasmexport metadata_agent_get_artist_biography
func exportMetadataAgentGetArtistBiography(ptr, size uint32) uint64 {
	return export(ptr, size, callMetadataAgentGetArtistBiography)
}

//go:wasmexport metadata_agent_get_similar_artists
func exportMetadataAgentGetSimilarArtists(ptr, size uint32) uint64 {
	return export(ptr, size, callMetadataAgentGetSimilarArtists)
}

//go:wasmexport metadata_agent_get_artist_images
func exportMetadataAgentGetArtistImages(ptr, size uint32) uint64 {
	return export(ptr, size, callMetadataAgentGetArtistImages)
}

//go:wasmexport metadata_agent_get_artist_top_songs
func exportMetadataAgentGetArtistTopSongs(ptr, size uint32) uint64 {
	return export(ptr, size, callMetadataAgentGetArtistTopSongs)
}

//go:wasmexport metadata_agent_get_album_info
func exportMetadataAgentGetAlbumInfo(ptr, size uint32) uint64 {
	return export(ptr, size, callMetadataAgentGetAlbumInfo)
}

//go:wasmexport metadata_agent_get_album_images
func exportMetadataAgentGetAlbumImages(ptr, size uint32) uint64 {
	return export(ptr, size, callMetadataAgentGetAlbumImages)
}

//go:wasmexport scrobbler_is_authorized
func exportScrobblerIsAuthorized(ptr, size uint32) uint64 {
	return export(ptr, size, callScrobblerIsAuthorized)
}

//go:wasmexport scrobbler_now_playing
func exportScrobblerNowPlaying(ptr, size uint32) uint64 {
	return export(ptr, size, callScrobblerNowPlaying)
}

//go:wasmexport scrobbler_scrobble
func exportScrobblerScrobble(ptr, size uint32) uint64 {
	return export(ptr, size, callScrobblerScrobble)
}

//go:wasmexport scheduler_callback_on_scheduler_callback
func exportSchedulerCallbackOnSchedulerCallback(ptr, size uint32) uint64 {
	return export(ptr, size, callSchedulerCallbackOnSchedulerCallback)
}

//go:wasmexport lifecycle_management_on_init
func exportLifecycleManagementOnInit(ptr, size uint32) uint64 {
	return export(ptr, size, callLifecycleManagementOnInit)
}

//go:wasmexport web_socket_callback_on_text_message
func exportWebSocketCallbackOnTextMessage(ptr, size uint32) uint64 {
	return export(ptr, size, callWebSocketCallbackOnTextMessage)
}

//go:wasmexport web_socket_callback_on_binary_message
func exportWebSocketCallbackOnBinaryMessage(ptr, size uint32) uint64 {
	return export(ptr, size, callWebSocketCallbackOnBinaryMessage)
}

//go:wasmexport web_socket_callback_on_error
func exportWebSocketCallbackOnError(ptr, size uint32) uint64 {
	return export(ptr, size, callWebSocketCallbackOnError)
}

//go:wasmexport web_socket_callback_on_close
func exportWebSocketCallbackOnClose(ptr, size uint32) uint64 {
	return export(ptr, size, callWebSocketCallbackOnClose)
}
