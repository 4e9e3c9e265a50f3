// Command scrobbler is a Scrobbler sample that forwards plays to a JSON web
// service.
//
//   - IsAuthorized: true iff the username is in the config "users" (comma
//     list, whitespace trimmed, exact match);
//   - NowPlaying: POST https://scrobble.example.com/now with the JSON body
//     {"user","track","album","artists","timestamp"} (Content-Type
//     application/json, 5000 ms);
//   - Scrobble: the same body to https://scrobble.example.com/scrobble; on
//     success the track name is cached with set_string under
//     "last:<username>" (TTL 86400 s);
//   - a request without a track, an http error (HttpResponse.error) or a
//     status other than 2xx is a plugin error (the host logs it; the
//     original adapter ignores the response's error field, so an error
//     return is the only way to report it).
//
// Build: ../../build.py scrobbler.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"strings"

	"wasmhost.local/pdk"
)

const (
	serviceURL  = "https://scrobble.example.com"
	timeoutMs   = 5000
	lastTTLSecs = 86400
)

type scrobbler struct{}

// users reads the comma-separated "users" config value.
func users() []string {
	cfg, err := pdk.GetPluginConfig()
	if err != nil {
		log.Printf("scrobbler: reading config: %v", err)
	}
	out := []string{}
	for _, u := range strings.Split(cfg["users"], ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

type play struct {
	User      string   `json:"user"`
	Track     string   `json:"track"`
	Album     string   `json:"album"`
	Artists   []string `json:"artists"`
	Timestamp int64    `json:"timestamp"`
}

func post(path, username string, track *pdk.TrackInfo, timestamp int64) error {
	if track == nil {
		return errors.New("scrobbler: no track")
	}
	p := play{User: username, Track: track.Name, Album: track.Album, Artists: []string{}, Timestamp: timestamp}
	for _, a := range track.Artists {
		if a != nil {
			p.Artists = append(p.Artists, a.Name)
		}
	}
	body, err := json.Marshal(p)
	if err != nil {
		return err
	}
	resp, err := pdk.HttpPost(&pdk.HttpRequest{
		Url:       serviceURL + path,
		Headers:   map[string]string{"Content-Type": "application/json"},
		TimeoutMs: timeoutMs,
		Body:      body,
	})
	switch {
	case err != nil:
		return err
	case resp.Error != "":
		return errors.New("scrobbler: " + resp.Error)
	case resp.Status < 200 || resp.Status > 299:
		return fmt.Errorf("scrobbler: %s answered %d", path, resp.Status)
	}
	return nil
}

func (scrobbler) IsAuthorized(_ context.Context, req *pdk.ScrobblerIsAuthorizedRequest) (*pdk.ScrobblerIsAuthorizedResponse, error) {
	for _, u := range users() {
		if u == req.Username {
			return &pdk.ScrobblerIsAuthorizedResponse{Authorized: true}, nil
		}
	}
	return &pdk.ScrobblerIsAuthorizedResponse{Authorized: false}, nil
}

func (scrobbler) NowPlaying(_ context.Context, req *pdk.ScrobblerNowPlayingRequest) (*pdk.ScrobblerNowPlayingResponse, error) {
	if err := post("/now", req.Username, req.Track, req.Timestamp); err != nil {
		return nil, err
	}
	return &pdk.ScrobblerNowPlayingResponse{}, nil
}

func (scrobbler) Scrobble(_ context.Context, req *pdk.ScrobblerScrobbleRequest) (*pdk.ScrobblerScrobbleResponse, error) {
	if err := post("/scrobble", req.Username, req.Track, req.Timestamp); err != nil {
		return nil, err
	}
	set, err := pdk.CacheSetString(&pdk.SetStringRequest{Key: "last:" + req.Username, Value: req.Track.Name, TtlSeconds: lastTTLSecs})
	if err != nil || !set.Success {
		log.Printf("scrobbler: caching the last track of %q failed", req.Username)
	}
	return &pdk.ScrobblerScrobbleResponse{}, nil
}

// main is never run in a c-shared wasip1 module: register from init.
func init() {
	pdk.RegisterScrobbler(scrobbler{})
}

func main() {}
