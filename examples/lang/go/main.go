// The example filter in Go (standard library only), written against the raw proxy-wasm ABI 0.2.1 with
// //go:wasmimport and //go:wasmexport, built with GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared (a WASI
// reactor: the host calls `_initialize`, which runs the Go runtime's start-up and this package's init, and then
// the exported callbacks). The behaviour, the same in every language, is specified in
// docs/filters-in-other-languages.md.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
)

// config is the plugin configuration: every key required (a nil field is a missing key), no other key.
type config struct {
	Tag            *string `json:"tag"`
	DenyPath       *string `json:"deny_path"`
	CalloutCluster *string `json:"callout_cluster"`
	CalloutPath    *string `json:"callout_path"`
	CalloutHeader  *string `json:"callout_header"`
}

func parseConfig(text []byte) (*config, error) {
	decoder := json.NewDecoder(bytes.NewReader(text))
	decoder.DisallowUnknownFields()
	var c config
	if err := decoder.Decode(&c); err != nil {
		return nil, err
	}
	if decoder.More() {
		return nil, errors.New("text after the JSON object")
	}
	for _, field := range []struct {
		name  string
		value *string
	}{{"tag", c.Tag}, {"deny_path", c.DenyPath}, {"callout_cluster", c.CalloutCluster}, {"callout_path", c.CalloutPath}, {"callout_header", c.CalloutHeader}} {
		if field.value == nil {
			return nil, errors.New("missing key `" + field.name + "` (a string)")
		}
	}
	return &c, nil
}

type stream struct {
	root         uint32
	calloutValue *string
}

var (
	roots    = map[uint32]*config{} // root context id → its configuration (nil until on_configure accepts one)
	streams  = map[uint32]*stream{} // stream context id → its state
	callouts = map[uint32]uint32{}  // outstanding callout token → stream context id
	requests uint32                 // the example_requests counter
)

//go:wasmexport proxy_on_context_create
func proxyOnContextCreate(id, parent uint32) {
	if parent == 0 {
		roots[id] = nil
	} else {
		streams[id] = &stream{root: parent}
	}
}

//go:wasmexport proxy_on_vm_start
func proxyOnVMStart(root, size uint32) uint32 { return 1 }

//go:wasmexport proxy_on_configure
func proxyOnConfigure(root, size uint32) uint32 {
	c, err := parseConfig(getBufferBytes(bufferPluginConfiguration, size))
	if err != nil {
		logf(logError, "example: bad configuration: "+err.Error())
		return 0
	}
	roots[root] = c
	requests = defineCounter("example_requests")
	return 1
}

func configOf(id uint32) (*stream, *config) {
	s := streams[id]
	if s == nil {
		return nil, nil
	}
	return s, roots[s.root]
}

//go:wasmexport proxy_on_request_headers
func proxyOnRequestHeaders(id, numHeaders, endOfStream uint32) uint32 {
	_, c := configOf(id)
	if c == nil {
		return actionContinue
	}
	proxyIncrementMetric(requests, 1)
	addHeader(mapRequestHeaders, "x-example-request", *c.Tag)
	if path, ok := getHeader(mapRequestHeaders, ":path"); ok && path == *c.DenyPath {
		sendJSON(403, `{"error":"forbidden"}`)
		return actionPause
	}
	token, ok := httpCall(*c.CalloutCluster, *c.CalloutPath, 5000)
	if !ok {
		sendJSON(502, `{"error":"callout failed"}`)
		return actionPause
	}
	callouts[token] = id
	return actionPause
}

//go:wasmexport proxy_on_http_call_response
func proxyOnHTTPCallResponse(root, token, numHeaders, bodySize, numTrailers uint32) {
	id, ok := callouts[token]
	if !ok {
		return
	}
	delete(callouts, token)
	s, c := configOf(id)
	if s == nil || c == nil {
		return // the request is gone
	}
	proxySetEffectiveContext(id)
	if numHeaders == 0 {
		sendJSON(502, `{"error":"callout failed"}`)
		return
	}
	if value, ok := getHeader(mapCallResponseHeaders, *c.CalloutHeader); ok {
		s.calloutValue = &value
	}
	proxyContinueStream(streamRequest)
}

//go:wasmexport proxy_on_response_headers
func proxyOnResponseHeaders(id, numHeaders, endOfStream uint32) uint32 {
	s, c := configOf(id)
	if c == nil {
		return actionContinue
	}
	addHeader(mapResponseHeaders, "x-example-response", *c.Tag)
	if s.calloutValue != nil {
		addHeader(mapResponseHeaders, "x-example-callout", *s.calloutValue)
	}
	return actionContinue
}

//go:wasmexport proxy_on_done
func proxyOnDone(id uint32) uint32 { return 1 }

//go:wasmexport proxy_on_delete
func proxyOnDelete(id uint32) {
	delete(streams, id)
	delete(roots, id)
}

// main is required by -buildmode=c-shared and never called: the host calls `_initialize`, then the exports.
func main() {}
