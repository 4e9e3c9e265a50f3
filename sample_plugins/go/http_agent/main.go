// Command http_agent is a MetadataAgent sample in the style of the wikimedia
// example plugin: it asks a JSON web service for artist data through the
// host's http service.
//
//   - config "endpoint": the service's base URL (default
//     https://api.example.com);
//   - GetArtistURL: GET <endpoint>/artist?name=<query-escaped name> with
//     Accept: application/json and a 5000 ms timeout; answers the JSON's
//     "url" field;
//   - GetArtistBiography: served from the cache (key "bio:<name>") when
//     present; otherwise POST <endpoint>/bio with the form body name=<name>,
//     answers the response body and caches it for 3600 s;
//   - an empty name, an http error (HttpResponse.error), a status other than
//     200, or an unusable answer give plugin:not_found; every other method
//     gives plugin:not_implemented.
//
// Build: ../../build.py http_agent.
package main

import (
	"context"
	"encoding/json"
	"log"
	"net/url"
	"strings"

	"wasmhost.local/pdk"
)

const (
	defaultEndpoint = "https://api.example.com"
	userAgent       = "PytestWasmhostHttpAgent/1.0"
	timeoutMs       = 5000
	bioTTLSeconds   = 3600
)

type httpAgent struct{}

// endpoint reads the base URL from the plugin config, without a trailing slash.
func endpoint() string {
	cfg, err := pdk.GetPluginConfig()
	if err != nil {
		log.Printf("http_agent: reading config: %v", err)
	}
	ep := strings.TrimSpace(cfg["endpoint"])
	if ep == "" {
		ep = defaultEndpoint
	}
	return strings.TrimRight(ep, "/")
}

// ok tells whether an http answer is usable, logging why not.
func ok(what string, resp *pdk.HttpResponse, err error) bool {
	switch {
	case err != nil:
		log.Printf("http_agent: %s: %v", what, err)
	case resp.Error != "":
		log.Printf("http_agent: %s: %s", what, resp.Error)
	case resp.Status != 200:
		log.Printf("http_agent: %s: status %d", what, resp.Status)
	default:
		return true
	}
	return false
}

func (httpAgent) GetArtistURL(_ context.Context, req *pdk.ArtistURLRequest) (*pdk.ArtistURLResponse, error) {
	if req.Name == "" {
		return nil, pdk.ErrNotFound
	}
	resp, err := pdk.HttpGet(&pdk.HttpRequest{
		Url:       endpoint() + "/artist?name=" + url.QueryEscape(req.Name),
		Headers:   map[string]string{"Accept": "application/json", "User-Agent": userAgent},
		TimeoutMs: timeoutMs,
	})
	if !ok("artist lookup", resp, err) {
		return nil, pdk.ErrNotFound
	}
	var body struct {
		Url string `json:"url"`
	}
	if err := json.Unmarshal(resp.Body, &body); err != nil || body.Url == "" {
		log.Printf("http_agent: artist lookup: no url in %q", resp.Body)
		return nil, pdk.ErrNotFound
	}
	return &pdk.ArtistURLResponse{Url: body.Url}, nil
}

func (httpAgent) GetArtistBiography(_ context.Context, req *pdk.ArtistBiographyRequest) (*pdk.ArtistBiographyResponse, error) {
	if req.Name == "" {
		return nil, pdk.ErrNotFound
	}
	key := "bio:" + req.Name
	if cached, err := pdk.CacheGetString(&pdk.GetRequest{Key: key}); err == nil && cached.Exists {
		return &pdk.ArtistBiographyResponse{Biography: cached.Value}, nil
	}
	resp, err := pdk.HttpPost(&pdk.HttpRequest{
		Url: endpoint() + "/bio",
		Headers: map[string]string{
			"Accept":       "text/plain",
			"Content-Type": "application/x-www-form-urlencoded",
			"User-Agent":   userAgent,
		},
		TimeoutMs: timeoutMs,
		Body:      []byte(url.Values{"name": {req.Name}}.Encode()),
	})
	if !ok("biography lookup", resp, err) || len(resp.Body) == 0 {
		return nil, pdk.ErrNotFound
	}
	bio := string(resp.Body)
	if set, err := pdk.CacheSetString(&pdk.SetStringRequest{Key: key, Value: bio, TtlSeconds: bioTTLSeconds}); err != nil || !set.Success {
		log.Printf("http_agent: caching the biography of %q failed", req.Name)
	}
	return &pdk.ArtistBiographyResponse{Biography: bio}, nil
}

func (httpAgent) GetArtistMBID(context.Context, *pdk.ArtistMBIDRequest) (*pdk.ArtistMBIDResponse, error) {
	return nil, pdk.ErrNotImplemented
}

func (httpAgent) GetSimilarArtists(context.Context, *pdk.ArtistSimilarRequest) (*pdk.ArtistSimilarResponse, error) {
	return nil, pdk.ErrNotImplemented
}

func (httpAgent) GetArtistImages(context.Context, *pdk.ArtistImageRequest) (*pdk.ArtistImageResponse, error) {
	return nil, pdk.ErrNotImplemented
}

func (httpAgent) GetArtistTopSongs(context.Context, *pdk.ArtistTopSongsRequest) (*pdk.ArtistTopSongsResponse, error) {
	return nil, pdk.ErrNotImplemented
}

func (httpAgent) GetAlbumInfo(context.Context, *pdk.AlbumInfoRequest) (*pdk.AlbumInfoResponse, error) {
	return nil, pdk.ErrNotImplemented
}

func (httpAgent) GetAlbumImages(context.Context, *pdk.AlbumImagesRequest) (*pdk.AlbumImagesResponse, error) {
	return nil, pdk.ErrNotImplemented
}

// main is never run in a c-shared wasip1 module: register from init.
func init() {
	pdk.RegisterMetadataAgent(httpAgent{})
}

func main() {}
