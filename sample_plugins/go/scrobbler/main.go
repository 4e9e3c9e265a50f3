// Command scrobbler is a Scrobbler sample: a client of a REST-style
// scrobbling service at https://scrobble.example.com, whose resources live
// under /users/<username>/ (the username path-escaped). Every request has a
// 5000 ms timeout; bodies are JSON (Content-Type application/json).
//
//   - IsAuthorized: true iff the username is in the config "users" (comma
//     list, whitespace trimmed, exact match). It makes no request.
//   - NowPlaying: the first report of a track is
//     PUT /users/<u>/now-playing with {"user","track","album","artists",
//     "timestamp"}; on success the track id is cached with set_string under
//     "np:<u>" (TTL 86400 s). Reporting the same track id again is a
//     PATCH /users/<u>/now-playing with only {"position":<seconds>}, if the
//     service allows PATCH there: the plugin asks once with
//     OPTIONS /users/<u>/now-playing and caches the Allow header (looked up
//     case-insensitively) with set_string under "allow:<u>" (TTL 86400 s).
//     When Allow lacks PATCH, or OPTIONS fails or answers non-2xx (then
//     nothing is cached and it asks again next time), it PUTs the full body
//     again.
//   - Scrobble: HEAD /users/<u>/scrobbles/<timestamp> first. Once the
//     service has answered it (any status but 429 and 5xx), the retry queue
//     (below) is flushed; then a 2xx to the HEAD means the scrobble is
//     already recorded (an idempotent retry) and nothing is posted, any
//     other status is followed by POST /users/<u>/scrobbles with the same
//     JSON body as NowPlaying. Then DELETE /users/<u>/now-playing (the track
//     finished; a failure is only logged), the "np:<u>" entry is removed
//     (remove), and the track name is cached with set_string under
//     "last:<u>" (TTL 86400 s).
//   - Retry queue: when a scrobble fails in a retryable way (a transport
//     error, a 429 or a 5xx, on the HEAD, the flush or the POST), its JSON
//     body is appended to a newline-delimited queue kept with set_bytes under
//     "queue:<u>" (TTL 604800 s) and the error is returned. A body already
//     queued is not queued again (the host may retry a failed scrobble), and
//     the queue keeps the newest 100 bodies. The next Scrobble of that user
//     that reaches the service reads the queue with get_bytes and POSTs each
//     line, in order, before its own scrobble, then stores the empty byte
//     string with set_bytes. A queued line that fails in a retryable way
//     stops the flush and stays queued with the ones after it; one that
//     fails for good (a permission denial or another 4xx) is dropped and
//     logged.
//   - Rate limiting: a 429 with a Retry-After in seconds (fractions allowed,
//     e.g. "1.5"; an HTTP date is not understood) stores that number with
//     set_float under "backoff" (TTL = the seconds rounded up) and is the
//     error "scrobbler: rate limited, retry in 1.5 s". While "backoff" is
//     cached (get_float), NowPlaying and Scrobble fail fast with that same
//     error and make no request; Scrobble still queues its body. The number
//     in the message is the service's Retry-After, not a countdown. Note
//     that the host's cache slides an entry's expiry on every read, so each
//     fail-fast call pushes the end of the backoff to one TTL after it.
//   - A request without a track, a permission denial, an http error or a
//     non-2xx answer to PUT, PATCH or POST is a plugin error (the host logs
//     it; the original adapter ignores the response's error field, so an
//     error return is the only way to report it).
//
// Build: ../../build.py scrobbler.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"math"
	"net/url"
	"strconv"
	"strings"

	"wasmhost.local/pdk"
)

const (
	serviceURL   = "https://scrobble.example.com"
	timeoutMs    = 5000
	dayTTLSecs   = 86400
	queueTTLSecs = 7 * 86400
	maxQueued    = 100
	backoffKey   = "backoff"
	deniedPrefix = "Request blocked by plugin permissions"
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

type progress struct {
	Position int32 `json:"position"`
}

func playBody(username string, track *pdk.TrackInfo, timestamp int64) ([]byte, error) {
	p := play{User: username, Track: track.Name, Album: track.Album, Artists: []string{}, Timestamp: timestamp}
	for _, a := range track.Artists {
		if a != nil {
			p.Artists = append(p.Artists, a.Name)
		}
	}
	return json.Marshal(p)
}

// userPath is the path of a resource of the user, e.g. /users/bob/now-playing.
func userPath(username, resource string) string {
	return "/users/" + url.PathEscape(username) + "/" + resource
}

// failure is an error of a request; retry tells whether trying again later
// can help (transport errors, 429, 5xx), as opposed to a permission denial
// or another 4xx; limited marks a rate limit.
type failure struct {
	msg     string
	retry   bool
	limited bool
}

func (f *failure) Error() string { return f.msg }

func retryable(err error) bool {
	var f *failure
	return errors.As(err, &f) && f.retry
}

func rateLimited(err error) bool {
	var f *failure
	return errors.As(err, &f) && f.limited
}

// header looks a response header up by name, case-insensitively.
func header(resp *pdk.HttpResponse, name string) (string, bool) {
	for k, v := range resp.Headers {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

func formatSeconds(s float64) string { return strconv.FormatFloat(s, 'f', -1, 64) }

func rateLimitedError(seconds float64) error {
	return &failure{msg: "scrobbler: rate limited, retry in " + formatSeconds(seconds) + " s", retry: true, limited: true}
}

// backoff fails fast while a Retry-After of the service is cached.
func backoff() error {
	got, err := pdk.CacheGetFloat(&pdk.GetRequest{Key: backoffKey})
	if err != nil || !got.Exists {
		return nil
	}
	return rateLimitedError(got.Value)
}

type hostCall func(*pdk.HttpRequest) (*pdk.HttpResponse, error)

// send makes one request to the service. A transport error, a denial, a 429
// and a 5xx are errors; any other status is the caller's to judge.
func send(method string, call hostCall, path string, body []byte) (*pdk.HttpResponse, error) {
	req := &pdk.HttpRequest{Url: serviceURL + path, TimeoutMs: timeoutMs}
	if body != nil {
		req.Headers = map[string]string{"Content-Type": "application/json"}
		req.Body = body
	}
	resp, err := call(req)
	switch {
	case err != nil:
		return nil, &failure{msg: fmt.Sprintf("scrobbler: %s %s: %v", method, path, err), retry: true}
	case resp.Error != "":
		return nil, &failure{msg: "scrobbler: " + resp.Error, retry: !strings.HasPrefix(resp.Error, deniedPrefix)}
	case resp.Status == 429:
		if v, ok := header(resp, "Retry-After"); ok {
			secs, perr := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if perr == nil && secs > 0 && !math.IsInf(secs, 0) {
				set, serr := pdk.CacheSetFloat(&pdk.SetFloatRequest{Key: backoffKey, Value: secs, TtlSeconds: int64(math.Ceil(secs))})
				if serr != nil || !set.Success {
					log.Printf("scrobbler: storing the backoff failed")
				}
				return nil, rateLimitedError(secs)
			}
		}
		return nil, &failure{msg: fmt.Sprintf("scrobbler: %s %s answered 429", method, path), retry: true, limited: true}
	case resp.Status >= 500:
		return nil, &failure{msg: fmt.Sprintf("scrobbler: %s %s answered %d", method, path, resp.Status), retry: true}
	}
	return resp, nil
}

// sendOK is send for requests that must answer 2xx.
func sendOK(method string, call hostCall, path string, body []byte) error {
	resp, err := send(method, call, path, body)
	if err != nil {
		return err
	}
	if resp.Status < 200 || resp.Status > 299 {
		return &failure{msg: fmt.Sprintf("scrobbler: %s %s answered %d", method, path, resp.Status)}
	}
	return nil
}

func setString(key, value string) {
	set, err := pdk.CacheSetString(&pdk.SetStringRequest{Key: key, Value: value, TtlSeconds: dayTTLSecs})
	if err != nil || !set.Success {
		log.Printf("scrobbler: caching %q failed", key)
	}
}

func getString(key string) (string, bool) {
	got, err := pdk.CacheGetString(&pdk.GetRequest{Key: key})
	if err != nil || !got.Exists {
		return "", false
	}
	return got.Value, true
}

// patchAllowed tells whether the user's now-playing resource takes PATCH,
// asking the service once (OPTIONS) and caching its Allow header.
func patchAllowed(username string) (bool, error) {
	key := "allow:" + username
	allow, ok := getString(key)
	if !ok {
		path := userPath(username, "now-playing")
		resp, err := send("OPTIONS", pdk.HttpOptions, path, nil)
		if err != nil {
			if rateLimited(err) {
				return false, err
			}
			log.Printf("%v", err) // fall back to PUT
			return false, nil
		}
		if resp.Status < 200 || resp.Status > 299 {
			log.Printf("scrobbler: OPTIONS %s answered %d", path, resp.Status)
			return false, nil
		}
		allow, _ = header(resp, "Allow")
		setString(key, allow)
	}
	for _, m := range strings.Split(allow, ",") {
		if strings.EqualFold(strings.TrimSpace(m), "PATCH") {
			return true, nil
		}
	}
	return false, nil
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
	if req.Track == nil {
		return nil, errors.New("scrobbler: no track")
	}
	if err := backoff(); err != nil {
		return nil, err
	}
	path := userPath(req.Username, "now-playing")
	npKey := "np:" + req.Username
	if current, ok := getString(npKey); ok && current == req.Track.Id {
		patch, err := patchAllowed(req.Username)
		if err != nil {
			return nil, err
		}
		if patch {
			body, err := json.Marshal(progress{Position: req.Track.Position})
			if err != nil {
				return nil, err
			}
			if err := sendOK("PATCH", pdk.HttpPatch, path, body); err != nil {
				return nil, err
			}
			return &pdk.ScrobblerNowPlayingResponse{}, nil
		}
	}
	body, err := playBody(req.Username, req.Track, req.Timestamp)
	if err != nil {
		return nil, err
	}
	if err := sendOK("PUT", pdk.HttpPut, path, body); err != nil {
		return nil, err
	}
	setString(npKey, req.Track.Id)
	return &pdk.ScrobblerNowPlayingResponse{}, nil
}

func queueKey(username string) string { return "queue:" + username }

func readQueue(username string) []byte {
	got, err := pdk.CacheGetBytes(&pdk.GetRequest{Key: queueKey(username)})
	if err != nil || !got.Exists {
		return nil
	}
	return got.Value
}

func writeQueue(username string, queue []byte) {
	set, err := pdk.CacheSetBytes(&pdk.SetBytesRequest{Key: queueKey(username), Value: queue, TtlSeconds: queueTTLSecs})
	if err != nil || !set.Success {
		log.Printf("scrobbler: storing the queue of %q failed", username)
	}
}

// enqueue appends a scrobble body to the user's retry queue, unless it is
// queued already; the queue keeps the newest maxQueued bodies.
func enqueue(username string, body []byte) {
	lines := [][]byte{}
	for _, line := range bytes.Split(readQueue(username), []byte{'\n'}) {
		if bytes.Equal(line, body) {
			return
		}
		if len(line) > 0 {
			lines = append(lines, line)
		}
	}
	lines = append(lines, body)
	if drop := len(lines) - maxQueued; drop > 0 {
		log.Printf("scrobbler: the queue of %q is full, dropping %d old scrobble(s)", username, drop)
		lines = lines[drop:]
	}
	writeQueue(username, append(bytes.Join(lines, []byte{'\n'}), '\n'))
}

// flush POSTs the user's queued scrobbles in order and stores what is left.
func flush(username string) error {
	queued := readQueue(username)
	if len(queued) == 0 {
		return nil
	}
	path := userPath(username, "scrobbles")
	for queue := queued; len(queue) > 0; {
		line, rest, _ := bytes.Cut(queue, []byte{'\n'})
		if len(line) > 0 {
			if err := sendOK("POST", pdk.HttpPost, path, line); err != nil {
				if retryable(err) {
					if len(queue) < len(queued) {
						writeQueue(username, queue) // keep the unsent rest
					}
					return err
				}
				log.Printf("scrobbler: dropping a queued scrobble: %v", err)
			}
		}
		queue = rest
	}
	writeQueue(username, []byte{})
	return nil
}

func (scrobbler) Scrobble(_ context.Context, req *pdk.ScrobblerScrobbleRequest) (*pdk.ScrobblerScrobbleResponse, error) {
	if req.Track == nil {
		return nil, errors.New("scrobbler: no track")
	}
	body, err := playBody(req.Username, req.Track, req.Timestamp)
	if err != nil {
		return nil, err
	}
	if err := scrobble(req.Username, req.Timestamp, body); err != nil {
		if retryable(err) {
			enqueue(req.Username, body)
		}
		return nil, err
	}
	nowPlaying := userPath(req.Username, "now-playing")
	if err := sendOK("DELETE", pdk.HttpDelete, nowPlaying, nil); err != nil {
		log.Printf("%v", err)
	}
	if rm, err := pdk.CacheRemove(&pdk.RemoveRequest{Key: "np:" + req.Username}); err != nil || !rm.Success {
		log.Printf("scrobbler: forgetting the now-playing track of %q failed", req.Username)
	}
	setString("last:"+req.Username, req.Track.Name)
	return &pdk.ScrobblerScrobbleResponse{}, nil
}

// scrobble records one play: backoff check, HEAD, queue flush, POST.
func scrobble(username string, timestamp int64, body []byte) error {
	if err := backoff(); err != nil {
		return err
	}
	resp, err := send("HEAD", pdk.HttpHead, userPath(username, "scrobbles/"+strconv.FormatInt(timestamp, 10)), nil)
	if err != nil {
		return err
	}
	// The service answered: send what is queued first, oldest first.
	if err := flush(username); err != nil {
		return err
	}
	if resp.Status >= 200 && resp.Status <= 299 {
		return nil // already recorded: this is a retry of a scrobble that went through
	}
	return sendOK("POST", pdk.HttpPost, userPath(username, "scrobbles"), body)
}

// main is never run in a c-shared wasip1 module: register from init.
func init() {
	pdk.RegisterScrobbler(scrobbler{})
}

func main() {}
