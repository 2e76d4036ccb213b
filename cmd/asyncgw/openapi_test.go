package main

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/asyncgw/asyncgw/internal/redistest"
)

// servedPaths reads the OpenAPI document a running asyncgw serves and
// returns the operationId of each described "METHOD path".
func servedPaths(t *testing.T, base string) map[string]string {
	t.Helper()
	resp, err := httpClient.Get(base + "/openapi.json")
	if err != nil {
		t.Fatalf("GET /openapi.json: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /openapi.json: %s (%v)", resp.Status, err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("GET /openapi.json: %v", err)
	}
	ops := map[string]string{}
	for path, item := range doc.Paths {
		for method, raw := range item {
			var op struct {
				OperationID string `json:"operationId"`
			}
			if json.Unmarshal(raw, &op) == nil && op.OperationID != "" {
				ops[method+" "+path] = op.OperationID
			}
		}
	}
	return ops
}

// TestOpenAPIServed: the document asyncgw serves describes the process's
// own configuration: the built-in demo has its route POST /v1/demo, and
// asyncgw started with a file has the file's routes and no demo route.
func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	demo := startAsyncgw(t, map[string]string{"ASYNCGW_LISTEN": "127.0.0.1:0"})
	up := newUpstream(t, nil)
	s := newSetup(t, redistest.Shared(t), up.URL+"/orders")
	configured := startAsyncgw(t, nil, "gateway", "--config", s.config)

	ops := servedPaths(t, demo.baseURL(t))
	if ops["post /v1/demo"] != "submit_demo" {
		t.Errorf("the demo's document does not describe POST /v1/demo: %v", ops)
	}
	if ops["post /v1/work"] != "" {
		t.Errorf("the demo's document describes POST /v1/work")
	}

	ops = servedPaths(t, configured.baseURL(t))
	if ops["post /v1/work"] != "submit_work" {
		t.Errorf("the document of asyncgw --config does not describe its route POST /v1/work: %v", ops)
	}
	if _, ok := ops["post /v1/demo"]; ok {
		t.Errorf("the document of asyncgw --config describes the demo's POST /v1/demo")
	}
}
