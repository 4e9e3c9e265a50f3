package pdk

import "errors"

// Sentinel errors understood by the host. They travel as plain error strings
// and are recognised by exact string equality, so wrap them only with care:
// the host sees err.Error(), not the chain.
var (
	// ErrNotImplemented tells the host the plugin does not implement a method.
	ErrNotImplemented = errors.New("plugin:not_implemented")
	// ErrNotFound tells the host the requested resource does not exist.
	ErrNotFound = errors.New("plugin:not_found")
)
