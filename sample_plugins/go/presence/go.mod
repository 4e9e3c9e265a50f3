module wasmhost.local/samples/presence

go 1.24

require wasmhost.local/pdk v0.0.0

replace wasmhost.local/pdk => ../pdk
