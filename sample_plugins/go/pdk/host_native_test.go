//go:build !wasip1

package pdk

import "testing"

func TestGetPluginConfig(t *testing.T) {
	var gotReq []byte
	nativeHost["get_plugin_config"] = func(req []byte) []byte {
		gotReq = req
		return h(t, "0a 0e 0a 08 67 72 65 65 74 69 6e 67 12 02 48 69") // {greeting: Hi}
	}
	defer delete(nativeHost, "get_plugin_config")

	cfg, err := GetPluginConfig()
	if err != nil || len(cfg) != 1 || cfg["greeting"] != "Hi" {
		t.Errorf("config: %v, %v", cfg, err)
	}
	if len(gotReq) != 0 {
		t.Errorf("request must be empty, got % x", gotReq)
	}

	nativeHost["get_plugin_config"] = func([]byte) []byte { return nil }
	if cfg, err := GetPluginConfig(); err != nil || cfg == nil || len(cfg) != 0 {
		t.Errorf("empty config: %v, %v", cfg, err)
	}
}
