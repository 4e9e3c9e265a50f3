"""The go-plugin ABI: guest memory, protobuf messages, capability clients."""
