// Package pdk is a small, standard-library-only guest library for writing
// Navidrome legacy (go-plugin v0.9 ABI) plugins in Go.
//
// It reproduces what the original generated glue (plugins/api and
// plugins/host/*) puts into a plugin module built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared
//
// namely:
//
//   - the exports malloc and free (allocations are Go byte slices pinned in a
//     map keyed by their address; free of an unknown pointer is a no-op);
//   - all five <capability>_api_version exports (returning 1) and all
//     seventeen capability method exports, whatever the plugin registers.
//     Calling a method of a capability that was never registered
//     dereferences a nil interface: the Go runtime prints the panic to stderr
//     and the module traps, exactly like the original;
//   - the proto3 wire encoding of every message of the legacy "api",
//     "config", "http", "websocket", "scheduler" and "cache" protobuf
//     packages;
//   - wrappers of the host service imports from the "env" module:
//     GetPluginConfig, HttpGet..HttpOptions, WebSocketConnect/SendText/
//     SendBinary/Close, ScheduleOneTime/ScheduleRecurring/CancelSchedule/
//     TimeNow and CacheSetString..CacheHas.
//
// A plugin registers its implementations from an init function (main is not
// run in a c-shared wasip1 module):
//
//	func init() { pdk.RegisterMetadataAgent(myAgent{}) }
//	func main() {}
//
// The wasm-only parts live in files with the wasip1 build constraint; native
// builds (used by go test) get stubs so the codec can be tested on the host.
package pdk
