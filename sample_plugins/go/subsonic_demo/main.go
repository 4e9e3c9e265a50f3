// Command subsonic_demo is a LifecycleManagement sample in the style of the
// subsonicapi-demo example plugin.
//
//   - OnInit: calls the Subsonic API in-process (env.call) with
//     /rest/ping?u=admin and then /rest/getLicense?u=admin. A soft error
//     (CallResponse.error) or an undecodable answer stops there and is
//     reported in InitResponse.error as "<endpoint>: <error>"; a Subsonic
//     document with "status":"failed" is only logged, as in the example.
//
// Build: ../../build.py subsonic_demo.
package main

import (
	"context"
	"encoding/json"
	"log"

	"wasmhost.local/pdk"
)

type demo struct{}

var calls = []string{"/rest/ping?u=admin", "/rest/getLicense?u=admin"}

func (demo) OnInit(_ context.Context, _ *pdk.InitRequest) (*pdk.InitResponse, error) {
	for _, u := range calls {
		resp, err := pdk.SubsonicAPICall(&pdk.CallRequest{Url: u})
		if err != nil {
			return &pdk.InitResponse{Error: u + ": " + err.Error()}, nil
		}
		if resp.Error != "" {
			log.Printf("subsonic_demo: %s: %s", u, resp.Error)
			return &pdk.InitResponse{Error: u + ": " + resp.Error}, nil
		}
		var doc struct {
			Response struct {
				Status string `json:"status"`
			} `json:"subsonic-response"`
		}
		if err := json.Unmarshal([]byte(resp.Json), &doc); err != nil {
			log.Printf("subsonic_demo: %s: not JSON: %q", u, resp.Json)
			continue
		}
		log.Printf("subsonic_demo: %s: status %s", u, doc.Response.Status)
	}
	return &pdk.InitResponse{}, nil
}

// main is never run in a c-shared wasip1 module: register from init.
func init() {
	pdk.RegisterLifecycleManagement(demo{})
}

func main() {}
