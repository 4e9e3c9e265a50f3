package pdk

// Messages of the legacy protobuf package "http" (host/http/http.proto) and
// the wrappers of its host functions (env.get, env.post, ...). The manifest
// must grant the "http" permission.

// HttpRequest is http.HttpRequest.
type HttpRequest struct {
	Url       string            // 1
	Headers   map[string]string // 2
	TimeoutMs int32             // 3 (0 = the host's default, 10 s)
	Body      []byte            // 4 (sent only for POST, PUT and PATCH)
}

func (m *HttpRequest) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *HttpRequest) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.Url)
	e.stringMap(2, m.Headers)
	e.int32(3, m.TimeoutMs)
	e.bytes(4, m.Body)
	return e.buf
}

func (m *HttpRequest) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		switch num {
		case 1:
			return d.readString(num, wt, &m.Url)
		case 2:
			return d.readStringMapEntry(num, wt, &m.Headers)
		case 3:
			return d.readInt32(num, wt, &m.TimeoutMs)
		case 4:
			return d.readBytes(num, wt, &m.Body)
		}
		return d.skip(num, wt)
	})
}

// HttpResponse is http.HttpResponse.
type HttpResponse struct {
	Status  int32             // 1
	Body    []byte            // 2
	Headers map[string]string // 3 (canonical names, first value only)
	Error   string            // 4 (non-empty on a network or permission error)
}

func (m *HttpResponse) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *HttpResponse) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.int32(1, m.Status)
	e.bytes(2, m.Body)
	e.stringMap(3, m.Headers)
	e.string(4, m.Error)
	return e.buf
}

func (m *HttpResponse) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		switch num {
		case 1:
			return d.readInt32(num, wt, &m.Status)
		case 2:
			return d.readBytes(num, wt, &m.Body)
		case 3:
			return d.readStringMapEntry(num, wt, &m.Headers)
		case 4:
			return d.readString(num, wt, &m.Error)
		}
		return d.skip(num, wt)
	})
}

func httpCall(fn hostImport, req *HttpRequest) (*HttpResponse, error) {
	resp := &HttpResponse{}
	if err := callService(fn, req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// HttpGet sends a GET request (env.get). A permission or transport failure
// comes back in HttpResponse.Error with Status 0, not as the returned error
// (which only reports an undecodable response).
func HttpGet(req *HttpRequest) (*HttpResponse, error) { return httpCall(importHttpGet, req) }

// HttpPost sends a POST request with req.Body (env.post).
func HttpPost(req *HttpRequest) (*HttpResponse, error) { return httpCall(importHttpPost, req) }

// HttpPut sends a PUT request with req.Body (env.put).
func HttpPut(req *HttpRequest) (*HttpResponse, error) { return httpCall(importHttpPut, req) }

// HttpDelete sends a DELETE request (env.delete).
func HttpDelete(req *HttpRequest) (*HttpResponse, error) { return httpCall(importHttpDelete, req) }

// HttpPatch sends a PATCH request with req.Body (env.patch).
func HttpPatch(req *HttpRequest) (*HttpResponse, error) { return httpCall(importHttpPatch, req) }

// HttpHead sends a HEAD request (env.head).
func HttpHead(req *HttpRequest) (*HttpResponse, error) { return httpCall(importHttpHead, req) }

// HttpOptions sends an OPTIONS request (env.options).
func HttpOptions(req *HttpRequest) (*HttpResponse, error) { return httpCall(importHttpOptions, req) }
