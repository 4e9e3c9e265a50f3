package pdk

// Messages of the legacy protobuf package "config" (host/config/config.proto)
// and the wrapper for its host function.

// GetPluginConfigRequest is config.GetPluginConfigRequest (no fields).
type GetPluginConfigRequest struct{}

func (m *GetPluginConfigRequest) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *GetPluginConfigRequest) appendTo(b []byte) []byte { return b }

func (m *GetPluginConfigRequest) Unmarshal(b []byte) error { return unmarshalEmpty(b) }

// GetPluginConfigResponse is config.GetPluginConfigResponse.
type GetPluginConfigResponse struct {
	Config map[string]string // 1
}

func (m *GetPluginConfigResponse) Marshal() ([]byte, error) { return m.appendTo(nil), nil }

func (m *GetPluginConfigResponse) appendTo(b []byte) []byte {
	if m == nil {
		return b
	}
	e := encoder{b}
	e.stringMap(1, m.Config)
	return e.buf
}

func (m *GetPluginConfigResponse) Unmarshal(b []byte) error {
	return unmarshalFields(b, func(d *decoder, num, wt int) error {
		if num == 1 {
			return d.readStringMapEntry(num, wt, &m.Config)
		}
		return d.skip(num, wt)
	})
}

// GetPluginConfig returns the plugin's section of the server configuration
// (PluginConfig.<pluginID>) by calling the host import env.get_plugin_config.
// The manifest must grant the "config" permission, otherwise the module does
// not even instantiate. The result is never nil.
func GetPluginConfig() (map[string]string, error) {
	req, err := (&GetPluginConfigRequest{}).Marshal()
	if err != nil {
		return nil, err
	}
	var resp GetPluginConfigResponse
	if err := resp.Unmarshal(hostCall(importGetPluginConfig, req)); err != nil {
		return nil, err
	}
	if resp.Config == nil {
		resp.Config = map[string]string{}
	}
	return resp.Config, nil
}
