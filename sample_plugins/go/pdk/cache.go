package pdk

// Messages of the legacy protobuf package "cache" (host/cache/cache.proto)
// and the wrappers of its host functions (env.set_string, env.get_string,
// ...). The manifest must grant the "cache" permission. The cache is
// per plugin; entries expire after their TTL (0 = the host default).

// SetStringRequest is cache.SetStringRequest.
type SetStringRequest struct {
	Key        string // 1
	Value      string // 2
	TtlSeconds int64  // 3 (0 = the host default)
}

func (m *SetStringRequest) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *SetStringRequest) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.Key)
	e.string(2, m.Value)
	e.int64(3, m.TtlSeconds)
	return e.buf
}

func (m *SetStringRequest) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		switch num {
		case 1:
			return d.readString(num, wt, &m.Key)
		case 2:
			return d.readString(num, wt, &m.Value)
		case 3:
			return d.readInt64(num, wt, &m.TtlSeconds)
		}
		return d.skip(num, wt)
	})
}

// SetIntRequest is cache.SetIntRequest.
type SetIntRequest struct {
	Key        string // 1
	Value      int64  // 2
	TtlSeconds int64  // 3
}

func (m *SetIntRequest) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *SetIntRequest) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.Key)
	e.int64(2, m.Value)
	e.int64(3, m.TtlSeconds)
	return e.buf
}

func (m *SetIntRequest) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		switch num {
		case 1:
			return d.readString(num, wt, &m.Key)
		case 2:
			return d.readInt64(num, wt, &m.Value)
		case 3:
			return d.readInt64(num, wt, &m.TtlSeconds)
		}
		return d.skip(num, wt)
	})
}

// SetFloatRequest is cache.SetFloatRequest.
type SetFloatRequest struct {
	Key        string  // 1
	Value      float64 // 2
	TtlSeconds int64   // 3
}

func (m *SetFloatRequest) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *SetFloatRequest) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.Key)
	e.double(2, m.Value)
	e.int64(3, m.TtlSeconds)
	return e.buf
}

func (m *SetFloatRequest) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		switch num {
		case 1:
			return d.readString(num, wt, &m.Key)
		case 2:
			return d.readDouble(num, wt, &m.Value)
		case 3:
			return d.readInt64(num, wt, &m.TtlSeconds)
		}
		return d.skip(num, wt)
	})
}

// SetBytesRequest is cache.SetBytesRequest.
type SetBytesRequest struct {
	Key        string // 1
	Value      []byte // 2
	TtlSeconds int64  // 3
}

func (m *SetBytesRequest) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *SetBytesRequest) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.Key)
	e.bytes(2, m.Value)
	e.int64(3, m.TtlSeconds)
	return e.buf
}

func (m *SetBytesRequest) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		switch num {
		case 1:
			return d.readString(num, wt, &m.Key)
		case 2:
			return d.readBytes(num, wt, &m.Value)
		case 3:
			return d.readInt64(num, wt, &m.TtlSeconds)
		}
		return d.skip(num, wt)
	})
}

// SetResponse is cache.SetResponse.
type SetResponse struct {
	Success bool // 1
}

func (m *SetResponse) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *SetResponse) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.bool(1, m.Success)
	return e.buf
}

func (m *SetResponse) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		if num == 1 {
			return d.readBool(num, wt, &m.Success)
		}
		return d.skip(num, wt)
	})
}

// GetRequest is cache.GetRequest.
type GetRequest struct {
	Key string // 1
}

func (m *GetRequest) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *GetRequest) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.Key)
	return e.buf
}

func (m *GetRequest) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		if num == 1 {
			return d.readString(num, wt, &m.Key)
		}
		return d.skip(num, wt)
	})
}

// GetStringResponse is cache.GetStringResponse.
type GetStringResponse struct {
	Exists bool   // 1
	Value  string // 2
}

func (m *GetStringResponse) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *GetStringResponse) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.bool(1, m.Exists)
	e.string(2, m.Value)
	return e.buf
}

func (m *GetStringResponse) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		switch num {
		case 1:
			return d.readBool(num, wt, &m.Exists)
		case 2:
			return d.readString(num, wt, &m.Value)
		}
		return d.skip(num, wt)
	})
}

// GetIntResponse is cache.GetIntResponse.
type GetIntResponse struct {
	Exists bool  // 1
	Value  int64 // 2
}

func (m *GetIntResponse) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *GetIntResponse) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.bool(1, m.Exists)
	e.int64(2, m.Value)
	return e.buf
}

func (m *GetIntResponse) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		switch num {
		case 1:
			return d.readBool(num, wt, &m.Exists)
		case 2:
			return d.readInt64(num, wt, &m.Value)
		}
		return d.skip(num, wt)
	})
}

// GetFloatResponse is cache.GetFloatResponse.
type GetFloatResponse struct {
	Exists bool    // 1
	Value  float64 // 2
}

func (m *GetFloatResponse) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *GetFloatResponse) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.bool(1, m.Exists)
	e.double(2, m.Value)
	return e.buf
}

func (m *GetFloatResponse) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		switch num {
		case 1:
			return d.readBool(num, wt, &m.Exists)
		case 2:
			return d.readDouble(num, wt, &m.Value)
		}
		return d.skip(num, wt)
	})
}

// GetBytesResponse is cache.GetBytesResponse.
type GetBytesResponse struct {
	Exists bool   // 1
	Value  []byte // 2
}

func (m *GetBytesResponse) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *GetBytesResponse) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.bool(1, m.Exists)
	e.bytes(2, m.Value)
	return e.buf
}

func (m *GetBytesResponse) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		switch num {
		case 1:
			return d.readBool(num, wt, &m.Exists)
		case 2:
			return d.readBytes(num, wt, &m.Value)
		}
		return d.skip(num, wt)
	})
}

// RemoveRequest is cache.RemoveRequest.
type RemoveRequest struct {
	Key string // 1
}

func (m *RemoveRequest) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *RemoveRequest) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.Key)
	return e.buf
}

func (m *RemoveRequest) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		if num == 1 {
			return d.readString(num, wt, &m.Key)
		}
		return d.skip(num, wt)
	})
}

// RemoveResponse is cache.RemoveResponse.
type RemoveResponse struct {
	Success bool // 1
}

func (m *RemoveResponse) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *RemoveResponse) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.bool(1, m.Success)
	return e.buf
}

func (m *RemoveResponse) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		if num == 1 {
			return d.readBool(num, wt, &m.Success)
		}
		return d.skip(num, wt)
	})
}

// HasRequest is cache.HasRequest.
type HasRequest struct {
	Key string // 1
}

func (m *HasRequest) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *HasRequest) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.Key)
	return e.buf
}

func (m *HasRequest) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		if num == 1 {
			return d.readString(num, wt, &m.Key)
		}
		return d.skip(num, wt)
	})
}

// HasResponse is cache.HasResponse.
type HasResponse struct {
	Exists bool // 1
}

func (m *HasResponse) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *HasResponse) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.bool(1, m.Exists)
	return e.buf
}

func (m *HasResponse) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		if num == 1 {
			return d.readBool(num, wt, &m.Exists)
		}
		return d.skip(num, wt)
	})
}

// CacheSetString stores a string value (env.set_string).
func CacheSetString(req *SetStringRequest) (*SetResponse, error) {
	resp := &SetResponse{}
	if err := callService(importCacheSetString, req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// CacheGetString reads a string value; Exists is false when the key is missing, expired or holds another type (env.get_string).
func CacheGetString(req *GetRequest) (*GetStringResponse, error) {
	resp := &GetStringResponse{}
	if err := callService(importCacheGetString, req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// CacheSetInt stores an int64 value (env.set_int).
func CacheSetInt(req *SetIntRequest) (*SetResponse, error) {
	resp := &SetResponse{}
	if err := callService(importCacheSetInt, req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// CacheGetInt reads an int64 value (env.get_int).
func CacheGetInt(req *GetRequest) (*GetIntResponse, error) {
	resp := &GetIntResponse{}
	if err := callService(importCacheGetInt, req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// CacheSetFloat stores a float64 value (env.set_float).
func CacheSetFloat(req *SetFloatRequest) (*SetResponse, error) {
	resp := &SetResponse{}
	if err := callService(importCacheSetFloat, req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// CacheGetFloat reads a float64 value (env.get_float).
func CacheGetFloat(req *GetRequest) (*GetFloatResponse, error) {
	resp := &GetFloatResponse{}
	if err := callService(importCacheGetFloat, req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// CacheSetBytes stores a byte slice (env.set_bytes).
func CacheSetBytes(req *SetBytesRequest) (*SetResponse, error) {
	resp := &SetResponse{}
	if err := callService(importCacheSetBytes, req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// CacheGetBytes reads a byte slice (env.get_bytes).
func CacheGetBytes(req *GetRequest) (*GetBytesResponse, error) {
	resp := &GetBytesResponse{}
	if err := callService(importCacheGetBytes, req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// CacheRemove deletes a key (env.remove).
func CacheRemove(req *RemoveRequest) (*RemoveResponse, error) {
	resp := &RemoveResponse{}
	if err := callService(importCacheRemove, req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// CacheHas tells whether a key is present (env.has).
func CacheHas(req *HasRequest) (*HasResponse, error) {
	resp := &HasResponse{}
	if err := callService(importCacheHas, req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}
