// Command presence is a sample in the style of the discord-rich-presence
// example plugin: it shows the track a configured user is playing as that
// user's Discord activity, over one Discord gateway connection per user
// (connection id = the username).
//
//   - Config: "clientid" (the Discord application id) and "users", a comma
//     list of username:token pairs (an entry without exactly one ':' is a
//     config error; a missing clientid or users list means nobody is
//     configured).
//   - IsAuthorized: true iff the username is in "users"; a config error is a
//     plugin error (the host answers "not authorized").
//   - NowPlaying: the user must be configured. Reuses the connection when a
//     heartbeat can be sent on it, else GETs https://discord.com/api/gateway,
//     connects to the answered "url", sends the identify payload (op 2) and
//     schedules a recurring "@every 41s" heartbeat. Then cancels the pending
//     close-activity, resolves the cover with artwork get_track_url(id, 300)
//     (http://localhost URLs are dropped: Discord cannot fetch them; the
//     default image is used instead), converts the image URL into a Discord
//     external asset (POST .../applications/<clientid>/external-assets,
//     cached with set_string for 4 h, 48 h for the default image), sends the
//     presence (op 3) and schedules a one-time close-activity after
//     length - position + 5 s.
//   - Scrobble: nothing to do (default response).
//   - OnTextMessage: a JSON message with a sequence number "s" stores it with
//     set_int under "discord.seq.<connection id>" (TTL 82 s); a message that
//     is not a JSON object, or a refused set_int, is a plugin error.
//   - OnBinaryMessage, OnError, OnClose: log only.
//   - OnSchedulerCallback: "heartbeat" sends op 1 on the user's connection;
//     if that fails it cancels the heartbeat, closes the connection (1000
//     "Connection lost"), removes the sequence number and returns an error.
//     "close-activity" sends the empty presence, cancels the heartbeat and
//     closes the connection (1000 "Navidrome disconnect").
//
// Schedule ids follow the Go guest library's "named callbacks" convention:
// "<name>\u200b<username>" (U+200B ZERO WIDTH SPACE), routed by the name.
//
// Two deliberate differences from the example:
//   - the activity timestamps come from the scheduler's time_now, not from
//     the guest's clock, so they follow the host's clock (tests under a frozen
//     harness clock are deterministic);
//   - a heartbeat sends "d": null until a sequence number is known (cache
//     has), as the gateway protocol asks, instead of a 0 read from a missing
//     key.
//
// The plugin keeps no state in guest memory: instances are pooled, so every
// call may run on a different one.
//
// Build: ../../build.py presence.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/url"
	"strings"

	"wasmhost.local/pdk"
)

const (
	gatewayEndpoint = "https://discord.com/api/gateway"
	assetsEndpoint  = "https://discord.com/api/v9/applications/%s/external-assets"
	// defaultImage is shown when the track has no usable cover.
	defaultImage = "https://example.invalid/pytest-wasmhost/presence/navidrome.png"

	heartbeatSeconds   = 41
	seqTTLSeconds      = 2 * heartbeatSeconds
	imageTTLSeconds    = 4 * 3600
	defaultTTLSeconds  = 48 * 3600
	closeGraceSeconds  = 5
	normalClosure      = 1000
	callbackSeparator  = "\u200b"
	heartbeatCallback  = "heartbeat"
	closeActivityEvent = "close-activity"

	opHeartbeat = 1
	opIdentify  = 2
	opPresence  = 3
)

type presence struct{}

// scheduleID is the id of the named callback name for username.
func scheduleID(name, username string) string { return name + callbackSeparator + username }

func seqKey(connectionID string) string { return "discord.seq." + connectionID }

// settings is the parsed plugin configuration.
type settings struct {
	clientID string
	users    map[string]string // username -> Discord token
}

func loadSettings() (settings, error) {
	cfg, err := pdk.GetPluginConfig()
	if err != nil {
		return settings{}, fmt.Errorf("unable to load config: %w", err)
	}
	s := settings{clientID: cfg["clientid"], users: map[string]string{}}
	if s.clientID == "" || cfg["users"] == "" {
		log.Printf("presence: no clientid or no users configured")
		return s, nil
	}
	for _, entry := range strings.Split(cfg["users"], ",") {
		parts := strings.Split(entry, ":")
		if len(parts) != 2 {
			return settings{}, fmt.Errorf("invalid user config: %q", entry)
		}
		s.users[parts[0]] = parts[1]
	}
	return s, nil
}

// -- gateway messages ----------------------------------------------------------------------------

type gatewayMessage struct {
	Op int `json:"op"`
	D  any `json:"d"`
}

type identify struct {
	Token      string             `json:"token"`
	Intents    int                `json:"intents"`
	Properties identifyProperties `json:"properties"`
}

type identifyProperties struct {
	OS      string `json:"os"`
	Browser string `json:"browser"`
	Device  string `json:"device"`
}

type activity struct {
	Name          string     `json:"name"`
	Type          int        `json:"type"`
	Details       string     `json:"details"`
	State         string     `json:"state"`
	ApplicationID string     `json:"application_id"`
	Timestamps    timestamps `json:"timestamps"`
	Assets        assets     `json:"assets"`
}

type timestamps struct {
	Start int64 `json:"start"`
	End   int64 `json:"end"`
}

type assets struct {
	LargeImage string `json:"large_image"`
	LargeText  string `json:"large_text"`
}

// presenceUpdate is the op 3 payload; its zero value is the "empty presence".
type presenceUpdate struct {
	Activities []activity `json:"activities"`
	Status     string     `json:"status"`
	Afk        bool       `json:"afk"`
}

func send(connectionID string, op int, d any) error {
	msg, err := json.Marshal(gatewayMessage{Op: op, D: d})
	if err != nil {
		return err
	}
	resp, err := pdk.WebSocketSendText(&pdk.SendTextRequest{ConnectionId: connectionID, Message: string(msg)})
	if err != nil {
		return err
	}
	if resp.Error != "" {
		return errors.New(resp.Error) // "connection not found" or "failed to send message: ..."
	}
	return nil
}

// sendHeartbeat sends op 1 with the last sequence number, or null before the
// gateway has sent one.
func sendHeartbeat(connectionID string) error {
	var seq any
	key := seqKey(connectionID)
	if has, err := pdk.CacheHas(&pdk.HasRequest{Key: key}); err == nil && has.Exists {
		if got, err := pdk.CacheGetInt(&pdk.GetRequest{Key: key}); err == nil && got.Exists {
			seq = got.Value
		}
	}
	return send(connectionID, opHeartbeat, seq)
}

// -- connection ----------------------------------------------------------------------------------

func gatewayURL() (string, error) {
	resp, err := pdk.HttpGet(&pdk.HttpRequest{Url: gatewayEndpoint})
	switch {
	case err != nil:
		return "", err
	case resp.Error != "":
		return "", errors.New("failed to get the Discord gateway: " + resp.Error)
	case resp.Status != 200:
		return "", fmt.Errorf("failed to get the Discord gateway: HTTP %d", resp.Status)
	}
	var body struct {
		URL string `json:"url"`
	}
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		return "", fmt.Errorf("failed to parse the Discord gateway answer: %w", err)
	}
	if body.URL == "" {
		return "", errors.New("the Discord gateway answer has no url")
	}
	return body.URL, nil
}

// ensureConnected reuses a live connection of username, or opens, identifies
// and starts the heartbeat of a new one.
func ensureConnected(username, token string) error {
	if err := sendHeartbeat(username); err == nil {
		return nil
	}
	gateway, err := gatewayURL()
	if err != nil {
		return err
	}
	resp, err := pdk.WebSocketConnect(&pdk.ConnectRequest{Url: gateway, ConnectionId: username})
	if err != nil {
		return err
	}
	if resp.Error != "" {
		return errors.New(resp.Error)
	}
	hello := identify{
		Token:      token,
		Properties: identifyProperties{OS: "Windows 10", Browser: "Discord Client", Device: "Discord Client"},
	}
	if err := send(username, opIdentify, hello); err != nil {
		return err
	}
	if _, err := pdk.ScheduleRecurring(&pdk.ScheduleRecurringRequest{
		CronExpression: fmt.Sprintf("@every %ds", heartbeatSeconds),
		ScheduleId:     scheduleID(heartbeatCallback, username),
	}); err != nil {
		return fmt.Errorf("failed to schedule the heartbeat: %w", err)
	}
	return nil
}

func cancel(id string) {
	resp, err := pdk.CancelSchedule(&pdk.CancelRequest{ScheduleId: id})
	if err != nil {
		log.Printf("presence: cancelling %q: %v", id, err)
	} else if resp.Error != "" {
		log.Printf("presence: cancelling %q: %s", id, resp.Error)
	}
}

func closeConnection(connectionID, reason string) error {
	resp, err := pdk.WebSocketClose(&pdk.CloseRequest{ConnectionId: connectionID, Code: normalClosure, Reason: reason})
	if err != nil {
		return err
	}
	if resp.Error != "" {
		return errors.New("failed to close the connection: " + resp.Error)
	}
	return nil
}

// -- images --------------------------------------------------------------------------------------

// trackImage is the public cover URL of the track, or "" when Discord could
// not fetch it.
func trackImage(trackID string) string {
	resp, err := pdk.ArtworkGetTrackUrl(&pdk.GetArtworkUrlRequest{Id: trackID, Size: 300})
	if err != nil || strings.HasPrefix(resp.Url, "http://localhost") {
		return ""
	}
	return resp.Url
}

// externalAsset converts imageURL (the default image when empty or not
// convertible) into a Discord "mp:" asset; "" when even the default fails.
func externalAsset(clientID, token, imageURL string) string {
	if imageURL != "" {
		asset, err := convertImage(clientID, token, imageURL, imageTTLSeconds)
		if err == nil {
			return asset
		}
		log.Printf("presence: image %s: %v; using the default image", imageURL, err)
	}
	asset, err := convertImage(clientID, token, defaultImage, defaultTTLSeconds)
	if err != nil {
		log.Printf("presence: default image: %v; continuing without an image", err)
		return ""
	}
	return asset
}

func convertImage(clientID, token, imageURL string, ttl int64) (string, error) {
	if strings.HasPrefix(imageURL, "mp:") {
		return imageURL, nil
	}
	key := fmt.Sprintf("discord.image.%x", imageURL)
	if cached, err := pdk.CacheGetString(&pdk.GetRequest{Key: key}); err == nil && cached.Exists {
		return cached.Value, nil
	}
	body, err := json.Marshal(map[string][]string{"urls": {imageURL}})
	if err != nil {
		return "", err
	}
	resp, err := pdk.HttpPost(&pdk.HttpRequest{
		Url:     fmt.Sprintf(assetsEndpoint, url.PathEscape(clientID)),
		Headers: map[string]string{"Authorization": token, "Content-Type": "application/json"},
		Body:    body,
	})
	switch {
	case err != nil:
		return "", err
	case resp.Error != "":
		return "", errors.New(resp.Error)
	case resp.Status < 200 || resp.Status > 299:
		return "", fmt.Errorf("external-assets answered HTTP %d", resp.Status)
	}
	var answer []struct {
		Path string `json:"external_asset_path"`
	}
	if err := json.Unmarshal(resp.Body, &answer); err != nil {
		return "", fmt.Errorf("external-assets answer: %w", err)
	}
	if len(answer) == 0 || answer[0].Path == "" {
		return "", errors.New("external-assets answered no asset")
	}
	asset := "mp:" + answer[0].Path
	if set, err := pdk.CacheSetString(&pdk.SetStringRequest{Key: key, Value: asset, TtlSeconds: ttl}); err != nil || !set.Success {
		log.Printf("presence: caching the asset of %s failed", imageURL)
	}
	return asset, nil
}

// -- Scrobbler -----------------------------------------------------------------------------------

func (presence) IsAuthorized(_ context.Context, req *pdk.ScrobblerIsAuthorizedRequest) (*pdk.ScrobblerIsAuthorizedResponse, error) {
	s, err := loadSettings()
	if err != nil {
		return nil, fmt.Errorf("presence: failed to check user authorization: %w", err)
	}
	_, ok := s.users[req.Username]
	return &pdk.ScrobblerIsAuthorizedResponse{Authorized: ok}, nil
}

func artists(track *pdk.TrackInfo) string {
	names := []string{}
	for _, a := range track.Artists {
		if a != nil {
			names = append(names, a.Name)
		}
	}
	return strings.Join(names, " • ")
}

func (presence) NowPlaying(_ context.Context, req *pdk.ScrobblerNowPlayingRequest) (*pdk.ScrobblerNowPlayingResponse, error) {
	s, err := loadSettings()
	if err != nil {
		return nil, fmt.Errorf("presence: failed to get config: %w", err)
	}
	token, ok := s.users[req.Username]
	if !ok {
		return nil, fmt.Errorf("presence: user %q not authorized", req.Username)
	}
	track := req.Track
	if track == nil {
		return nil, errors.New("presence: no track")
	}
	if err := ensureConnected(req.Username, token); err != nil {
		return nil, fmt.Errorf("presence: failed to connect to Discord: %w", err)
	}
	cancel(scheduleID(closeActivityEvent, req.Username))

	// The host's clock (scheduler time_now), not the guest's: the activity
	// then follows the same clock as the schedules, frozen ones included.
	now, err := pdk.TimeNow()
	if err != nil {
		return nil, fmt.Errorf("presence: reading the time: %w", err)
	}
	start := (now.UnixMilli/1000 - int64(track.Position)) * 1000
	update := presenceUpdate{
		Activities: []activity{{
			Name:          "Navidrome",
			Type:          2, // "Listening to"
			Details:       track.Name,
			State:         artists(track),
			ApplicationID: s.clientID,
			Timestamps:    timestamps{Start: start, End: start + int64(track.Length)*1000},
			Assets: assets{
				LargeImage: externalAsset(s.clientID, token, trackImage(track.Id)),
				LargeText:  track.Album,
			},
		}},
		Status: "dnd",
	}
	if err := send(req.Username, opPresence, update); err != nil {
		return nil, fmt.Errorf("presence: failed to send the activity: %w", err)
	}
	if _, err := pdk.ScheduleOneTime(&pdk.ScheduleOneTimeRequest{
		DelaySeconds: track.Length - track.Position + closeGraceSeconds,
		ScheduleId:   scheduleID(closeActivityEvent, req.Username),
	}); err != nil {
		return nil, fmt.Errorf("presence: failed to schedule the activity's end: %w", err)
	}
	return nil, nil
}

func (presence) Scrobble(context.Context, *pdk.ScrobblerScrobbleRequest) (*pdk.ScrobblerScrobbleResponse, error) {
	return nil, nil
}

// -- WebSocketCallback ---------------------------------------------------------------------------

func (presence) OnTextMessage(_ context.Context, req *pdk.OnTextMessageRequest) (*pdk.OnTextMessageResponse, error) {
	var msg struct {
		S *int64 `json:"s"`
	}
	if err := json.Unmarshal([]byte(req.Message), &msg); err != nil {
		return nil, fmt.Errorf("presence: failed to parse the gateway message: %w", err)
	}
	if msg.S == nil {
		return nil, nil
	}
	set, err := pdk.CacheSetInt(&pdk.SetIntRequest{Key: seqKey(req.ConnectionId), Value: *msg.S, TtlSeconds: seqTTLSeconds})
	if err != nil || !set.Success {
		return nil, fmt.Errorf("presence: failed to store the sequence number of %s", req.ConnectionId)
	}
	return nil, nil
}

func (presence) OnBinaryMessage(_ context.Context, req *pdk.OnBinaryMessageRequest) (*pdk.OnBinaryMessageResponse, error) {
	log.Printf("presence: ignoring %d bytes of binary from %s", len(req.Data), req.ConnectionId)
	return nil, nil
}

func (presence) OnError(_ context.Context, req *pdk.OnErrorRequest) (*pdk.OnErrorResponse, error) {
	log.Printf("presence: connection %s failed: %s", req.ConnectionId, req.Error)
	return nil, nil
}

func (presence) OnClose(_ context.Context, req *pdk.OnCloseRequest) (*pdk.OnCloseResponse, error) {
	log.Printf("presence: connection %s closed: %d %s", req.ConnectionId, req.Code, req.Reason)
	return nil, nil
}

// -- SchedulerCallback ---------------------------------------------------------------------------

func (presence) OnSchedulerCallback(_ context.Context, req *pdk.SchedulerCallbackRequest) (*pdk.SchedulerCallbackResponse, error) {
	name, username, ok := strings.Cut(req.ScheduleId, callbackSeparator)
	switch {
	case ok && name == heartbeatCallback:
		if err := sendHeartbeat(username); err != nil {
			cancel(scheduleID(heartbeatCallback, username))
			if cerr := closeConnection(username, "Connection lost"); cerr != nil {
				log.Printf("presence: cleaning up %s: %v", username, cerr)
			}
			if _, rerr := pdk.CacheRemove(&pdk.RemoveRequest{Key: seqKey(username)}); rerr != nil {
				log.Printf("presence: cleaning up %s: %v", username, rerr)
			}
			return nil, fmt.Errorf("presence: heartbeat failed, connection cleaned up: %w", err)
		}
		return nil, nil
	case ok && name == closeActivityEvent:
		// Clear, then disconnect even if clearing failed: the heartbeat must stop either way.
		clearErr := send(username, opPresence, presenceUpdate{})
		cancel(scheduleID(heartbeatCallback, username))
		closeErr := closeConnection(username, "Navidrome disconnect")
		if clearErr != nil {
			return nil, fmt.Errorf("presence: failed to clear the activity: %w", clearErr)
		}
		if closeErr != nil {
			return nil, fmt.Errorf("presence: failed to disconnect: %w", closeErr)
		}
		return nil, nil
	}
	return nil, fmt.Errorf("presence: unknown schedule %q", req.ScheduleId)
}

// main is never run in a c-shared wasip1 module: register from init.
func init() {
	p := presence{}
	pdk.RegisterScrobbler(p)
	pdk.RegisterWebSocketCallback(p)
	pdk.RegisterSchedulerCallback(p)
}

func main() {}
