package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/jobs"
)

// bigJSON is a valid JSON document of at least n bytes.
func bigJSON(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"items":[`)
	for i := 0; b.Len() < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"n":` + strconv.Itoa(i) + `,"pad":"` + strings.Repeat("x", 100) + `"}`)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// TestUpstreamAnswerSize: an answer within max_response (10 MiB by
// default) is kept whole, a larger one is recorded with its status,
// headers and size but no body, and /result never serves a cut body.
func TestUpstreamAnswerSize(t *testing.T) {
	t.Parallel()
	big := bigJSON(1536 << 10) // 1.5 MiB, over the 1 MiB that used to be kept
	h := Start(t, Options{Routes: []gateway.Route{
		{Name: "default", Path: "/v1/default", Upstream: "/answer"},
		{Name: "small", Path: "/v1/small", Upstream: "/answer", MaxResponse: 1 << 20},
		{Name: "chunked", Path: "/v1/chunked", Upstream: "/chunked", MaxResponse: 1 << 20},
	}})
	h.Upstream.Handle(func(w http.ResponseWriter, r *http.Request, c Call) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Answer", "kept")
		if c.Path == "/chunked" {
			// No Content-Length: the size is only known by reading on.
			w.WriteHeader(http.StatusCreated)
			for rest := big; len(rest) > 0; {
				n := min(len(rest), 64<<10)
				_, _ = w.Write(rest[:n])
				w.(http.Flusher).Flush()
				rest = rest[n:]
			}
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(big)))
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(big)
	})

	t.Run("within the default limit", func(t *testing.T) {
		id := h.Submit(t, "/v1/default", `{}`)
		j := h.WaitState(t, id, jobs.StateSucceeded)
		if j.Result == nil || j.Result.BodyTooLarge || !jsonEqual(t, j.Result.Body, big) {
			t.Fatalf("result %+v: want the whole %d-byte answer", j.Result, len(big))
		}
		r := h.Do(t, http.MethodGet, "/v1/jobs/"+id+"/result", nil, nil)
		if r.Status != http.StatusCreated || !bytes.Equal(r.Body, big) || !json.Valid(r.Body) {
			t.Fatalf("/result: status %d, %d bytes; want 201 and the %d bytes as sent", r.Status, len(r.Body), len(big))
		}
	})

	for _, path := range []string{"/v1/small", "/v1/chunked"} {
		t.Run("over the limit "+path, func(t *testing.T) {
			id := h.Submit(t, path, `{}`)
			j := h.WaitState(t, id, jobs.StateSucceeded)
			res := j.Result
			if res == nil || res.Status != http.StatusCreated || !res.BodyTooLarge {
				t.Fatalf("result %+v: want status 201 and body_too_large", res)
			}
			if res.BodySize != int64(len(big)) {
				t.Errorf("body_size %d, want %d", res.BodySize, len(big))
			}
			if len(res.Body) != 0 || res.BodyBase64 != "" {
				t.Errorf("result carries a body (%d bytes, %d base64): a cut body must never be kept", len(res.Body), len(res.BodyBase64))
			}
			if res.Headers["X-Answer"] != "kept" || res.Headers["Content-Type"] != "application/json" {
				t.Errorf("headers %v: want the upstream's", res.Headers)
			}
			r := h.Do(t, http.MethodGet, "/v1/jobs/"+id+"/result", nil, nil)
			p := requireProblem(t, "/result of a too large answer", r, http.StatusGone)
			if p.Type != "https://asyncgw.dev/problems/result-too-large" {
				t.Errorf("problem type %q, want result-too-large", p.Type)
			}
			if !strings.Contains(p.Detail, strconv.Itoa(len(big))) {
				t.Errorf("detail %q does not give the size", p.Detail)
			}
			if r.Header.Get("X-Asyncgw-Job-State") != "" {
				t.Errorf("X-Asyncgw-Job-State on asyncgw's own answer")
			}
		})
	}
}

// TestUpstreamHeaders: a route's configured headers reach the upstream on
// every call, replacing the client's, and appear nowhere a client or an
// operator can read: not in the job, its events, its result or Redis.
func TestUpstreamHeaders(t *testing.T) {
	t.Parallel()
	const secret = "Bearer s3cr3t-orders-token"
	h := Start(t, Options{Routes: []gateway.Route{{
		Name: "orders", Path: "/v1/orders", Upstream: "/orders",
		Headers: map[string]string{"Authorization": secret, "X-Api-Version": "2"},
	}}})
	h.Upstream.Handle(func(w http.ResponseWriter, r *http.Request, c Call) {
		if r.Header.Get("Authorization") != secret || r.Header.Get("X-Api-Version") != "2" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		okJSON(w, r, c)
	})
	r := h.Do(t, http.MethodPost, "/v1/orders", []byte(`{"n":1}`), http.Header{
		"Content-Type":  {"application/json"},
		"X-Api-Version": {"1"},
	})
	a := requireAccepted(t, "orders", r)
	j := h.WaitState(t, a.ID, jobs.StateSucceeded)
	calls := h.Upstream.Calls(a.ID)
	if len(calls) != 1 || calls[0].Header.Values("X-Api-Version")[0] != "2" || len(calls[0].Header.Values("X-Api-Version")) != 1 {
		t.Fatalf("upstream calls %+v: want one with the configured X-Api-Version only", calls)
	}
	_, jr := h.Job(t, j.ID)
	ev := h.Do(t, http.MethodGet, "/v1/jobs/"+j.ID+"/events", nil, nil)
	res := h.Do(t, http.MethodGet, "/v1/jobs/"+j.ID+"/result", nil, nil)
	for what, b := range map[string][]byte{"job": jr.Body, "events": ev.Body, "result": res.Body} {
		if bytes.Contains(b, []byte("s3cr3t")) {
			t.Errorf("the configured header's value is in the %s: %s", what, b)
		}
	}
	for k, v := range storedValues(t, h) {
		if strings.Contains(v, "s3cr3t") {
			t.Errorf("the configured header's value is stored in Redis under %s", k)
		}
	}
}

// storedValues returns the contents of every key Keys lists, as text: a
// string's value, a hash's, list's, set's or sorted set's members and
// fields, a stream's entries.
func storedValues(t *testing.T, h *Harness) map[string]string {
	t.Helper()
	ctx := t.Context()
	out := map[string]string{}
	for k := range h.Keys(t) {
		var v any
		var err error
		switch typ, _ := h.Redis.Type(ctx, k).Result(); typ {
		case "string":
			v, err = h.Redis.Get(ctx, k).Result()
		case "hash":
			v, err = h.Redis.HGetAll(ctx, k).Result()
		case "list":
			v, err = h.Redis.LRange(ctx, k, 0, -1).Result()
		case "set":
			v, err = h.Redis.SMembers(ctx, k).Result()
		case "zset":
			v, err = h.Redis.ZRange(ctx, k, 0, -1).Result()
		case "stream":
			v, err = h.Redis.XRange(ctx, k, "-", "+").Result()
		default:
			continue
		}
		if err != nil {
			t.Fatalf("read %s: %v", k, err)
		}
		out[k] = fmt.Sprint(v)
	}
	return out
}
