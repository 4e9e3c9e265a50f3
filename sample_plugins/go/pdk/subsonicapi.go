package pdk

// Messages of the legacy protobuf package "subsonicapi"
// (host/subsonicapi/subsonicapi.proto) and the wrapper of its host function
// (env.call). The manifest must grant the "subsonicapi" permission.

// CallRequest is subsonicapi.CallRequest.
type CallRequest struct {
	Url string // 1, e.g. "/rest/ping?u=admin"
}

func (m *CallRequest) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *CallRequest) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.Url)
	return e.buf
}

func (m *CallRequest) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		if num == 1 {
			return d.readString(num, wt, &m.Url)
		}
		return d.skip(num, wt)
	})
}

// CallResponse is subsonicapi.CallResponse.
type CallResponse struct {
	Json  string // 1, the Subsonic response document
	Error string // 2, a soft error (permission, bad URL, missing u)
}

func (m *CallResponse) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *CallResponse) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.string(1, m.Json)
	e.string(2, m.Error)
	return e.buf
}

func (m *CallResponse) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		switch num {
		case 1:
			return d.readString(num, wt, &m.Json)
		case 2:
			return d.readString(num, wt, &m.Error)
		}
		return d.skip(num, wt)
	})
}

// SubsonicAPICall calls a Subsonic API endpoint in-process as user u of the
// URL's query (env.call). Soft errors arrive in CallResponse.Error.
func SubsonicAPICall(req *CallRequest) (*CallResponse, error) {
	resp := &CallResponse{}
	if err := callService(importSubsonicAPICall, req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}
