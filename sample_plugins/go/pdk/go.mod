module wasmhost.local/pdk

go 1.24
