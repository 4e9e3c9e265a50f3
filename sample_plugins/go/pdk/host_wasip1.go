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
