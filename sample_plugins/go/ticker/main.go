// Command ticker is a sample in the style of the crypto-ticker example
// plugin: it keeps one WebSocket connection (id "ticker") to a price feed.
//
//   - OnInit: config "url" (required; missing -> InitResponse.error
//     "Missing 'url' configuration") and "symbols" (comma list, trimmed);
//     connects and sends {"type":"subscribe","symbols":[...]}. A refused
//     connection is reported in InitResponse.error.
//   - OnTextMessage: a JSON {"type":"price","symbol":S,"price":P} is cached
//     under "price:S" (cache set_string) and answered with
//     {"type":"ack","symbol":S}; anything else is ignored.
//   - OnBinaryMessage: sends the bytes back reversed.
//   - OnClose: schedules a one-time reconnect in 5 s (schedule id
//     "reconnect").
//   - OnSchedulerCallback("reconnect"): re-reads the config, reconnects and
//     resubscribes.
//   - OnError: logs only.
//
// The plugin keeps no state in guest memory: instances are pooled, so every
// callback may run on a different one.
//
// Build: ../../build.py ticker.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"log"
	"strings"

	"wasmhost.local/pdk"
)

const (
	connectionID    = "ticker"
	reconnectID     = "reconnect"
	reconnectDelayS = 5
)

type ticker struct{}

// symbols parses the comma-separated "symbols" config value.
func symbols(cfg map[string]string) []string {
	out := []string{}
	for _, s := range strings.Split(cfg["symbols"], ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func sendJSON(v any) error {
	msg, err := json.Marshal(v)
	if err != nil {
		return err
	}
	resp, err := pdk.WebSocketSendText(&pdk.SendTextRequest{ConnectionId: connectionID, Message: string(msg)})
	if err != nil {
		return err
	}
	if resp.Error != "" {
		return errors.New(resp.Error)
	}
	return nil
}

// connect opens the feed connection and subscribes to the symbols.
func connect(cfg map[string]string) error {
	url := strings.TrimSpace(cfg["url"])
	if url == "" {
		return errors.New("Missing 'url' configuration")
	}
	resp, err := pdk.WebSocketConnect(&pdk.ConnectRequest{Url: url, ConnectionId: connectionID})
	if err != nil {
		return err
	}
	if resp.Error != "" {
		return errors.New("Failed to connect to " + url + ": " + resp.Error)
	}
	type subscribe struct {
		Type    string   `json:"type"`
		Symbols []string `json:"symbols"`
	}
	if err := sendJSON(subscribe{Type: "subscribe", Symbols: symbols(cfg)}); err != nil {
		return errors.New("Failed to subscribe: " + err.Error())
	}
	return nil
}

func (ticker) OnInit(_ context.Context, req *pdk.InitRequest) (*pdk.InitResponse, error) {
	if err := connect(req.Config); err != nil {
		log.Printf("ticker: init: %v", err)
		return &pdk.InitResponse{Error: err.Error()}, nil
	}
	return &pdk.InitResponse{}, nil
}

func (ticker) OnTextMessage(_ context.Context, req *pdk.OnTextMessageRequest) (*pdk.OnTextMessageResponse, error) {
	if req.ConnectionId != connectionID {
		return &pdk.OnTextMessageResponse{}, nil
	}
	var msg struct {
		Type   string          `json:"type"`
		Symbol string          `json:"symbol"`
		Price  json.RawMessage `json:"price"`
	}
	if err := json.Unmarshal([]byte(req.Message), &msg); err != nil {
		log.Printf("ticker: ignoring a message that is not JSON: %v", err)
		return &pdk.OnTextMessageResponse{}, nil
	}
	if msg.Type != "price" || msg.Symbol == "" {
		return &pdk.OnTextMessageResponse{}, nil
	}
	price := string(msg.Price)
	var quoted string
	if json.Unmarshal(msg.Price, &quoted) == nil {
		price = quoted // "price": "42.5" as well as "price": 42.5
	}
	if set, err := pdk.CacheSetString(&pdk.SetStringRequest{Key: "price:" + msg.Symbol, Value: price}); err != nil || !set.Success {
		log.Printf("ticker: caching the price of %s failed", msg.Symbol)
	}
	type ack struct {
		Type   string `json:"type"`
		Symbol string `json:"symbol"`
	}
	if err := sendJSON(ack{Type: "ack", Symbol: msg.Symbol}); err != nil {
		log.Printf("ticker: ack %s: %v", msg.Symbol, err)
	}
	return &pdk.OnTextMessageResponse{}, nil
}

func (ticker) OnBinaryMessage(_ context.Context, req *pdk.OnBinaryMessageRequest) (*pdk.OnBinaryMessageResponse, error) {
	if req.ConnectionId != connectionID {
		return &pdk.OnBinaryMessageResponse{}, nil
	}
	reversed := make([]byte, len(req.Data))
	for i, b := range req.Data {
		reversed[len(req.Data)-1-i] = b
	}
	resp, err := pdk.WebSocketSendBinary(&pdk.SendBinaryRequest{ConnectionId: connectionID, Data: reversed})
	if err != nil || resp.Error != "" {
		log.Printf("ticker: echo failed: %v %v", err, resp)
	}
	return &pdk.OnBinaryMessageResponse{}, nil
}

func (ticker) OnError(_ context.Context, req *pdk.OnErrorRequest) (*pdk.OnErrorResponse, error) {
	log.Printf("ticker: connection %s failed: %s", req.ConnectionId, req.Error)
	return &pdk.OnErrorResponse{}, nil
}

func (ticker) OnClose(_ context.Context, req *pdk.OnCloseRequest) (*pdk.OnCloseResponse, error) {
	if req.ConnectionId != connectionID {
		return &pdk.OnCloseResponse{}, nil
	}
	log.Printf("ticker: closed (%d %s); reconnecting in %d s", req.Code, req.Reason, reconnectDelayS)
	if _, err := pdk.ScheduleOneTime(&pdk.ScheduleOneTimeRequest{
		DelaySeconds: reconnectDelayS,
		ScheduleId:   reconnectID,
	}); err != nil {
		log.Printf("ticker: scheduling the reconnect: %v", err)
	}
	return &pdk.OnCloseResponse{}, nil
}

func (ticker) OnSchedulerCallback(_ context.Context, req *pdk.SchedulerCallbackRequest) (*pdk.SchedulerCallbackResponse, error) {
	if req.ScheduleId != reconnectID {
		return &pdk.SchedulerCallbackResponse{}, nil
	}
	cfg, err := pdk.GetPluginConfig()
	if err == nil {
		err = connect(cfg)
	}
	if err != nil {
		log.Printf("ticker: reconnect: %v", err)
		return &pdk.SchedulerCallbackResponse{Error: err.Error()}, nil
	}
	return &pdk.SchedulerCallbackResponse{}, nil
}

// main is never run in a c-shared wasip1 module: register from init.
func init() {
	t := ticker{}
	pdk.RegisterLifecycleManagement(t)
	pdk.RegisterWebSocketCallback(t)
	pdk.RegisterSchedulerCallback(t)
}

func main() {}
