package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/internal/testutil"
	"github.com/asyncgw/asyncgw/sse"
)

// tokenServer is a gateway served on a real listener, for streams.
type tokenServer struct {
	t   *testing.T
	url string
	log *testutil.SyncBuffer
	g   *Gateway
}

func newTokenServer(t *testing.T, tune func(*Config, *Deps)) *tokenServer {
	t.Helper()
	logs := &testutil.SyncBuffer{}
	bg := newTestGateway(t, func(c *Config, d *Deps) {
		d.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		if tune != nil {
			tune(c, d)
		}
	})
	srv := httptest.NewServer(bg.g)
	t.Cleanup(func() { bg.g.Stop(); srv.CloseClientConnections(); srv.Close() })
	return &tokenServer{t: t, url: srv.URL, log: logs, g: bg.g}
}

// do sends a request with key ("" for none) and returns the status, the
// headers and, unless it is an event stream, the body; for a stream it
// returns the first event's kind.
func (s *tokenServer) do(method, path, key, body string) (int, http.Header, string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, s.url+path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		ev, err := sse.NewReader(bufio.NewReader(resp.Body)).Next()
		if err != nil {
			s.t.Fatalf("%s %s: first event: %v", method, path, err)
		}
		return resp.StatusCode, resp.Header, ev.Event
	}
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, resp.Header, b.String()
}

// open opens a stream and returns its status and content type, without
// reading an event (the tenant stream sends none until a job changes).
func (s *tokenServer) open(path string) (int, string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Content-Type")
}

func (s *tokenServer) submit(key string) string {
	s.t.Helper()
	code, _, body := s.do(http.MethodPost, "/v1/orders", key, benchOrder)
	var acc Accepted
	if code != http.StatusAccepted || json.Unmarshal([]byte(body), &acc) != nil {
		s.t.Fatalf("submit: %d %s", code, body)
	}
	return acc.ID
}

func (s *tokenServer) token(path, key string) StreamToken {
	s.t.Helper()
	code, h, body := s.do(http.MethodPost, path, key, "")
	var tok StreamToken
	if code != http.StatusOK || json.Unmarshal([]byte(body), &tok) != nil || tok.Token == "" {
		s.t.Fatalf("POST %s: %d %s; want 200 with a token", path, code, body)
	}
	if cc := h.Get("Cache-Control"); cc != "no-store" {
		s.t.Errorf("POST %s: Cache-Control %q, want no-store", path, cc)
	}
	return tok
}

// wantProblem checks a problem answer's status and type slug.
func wantProblem(t *testing.T, what string, code int, h http.Header, body string, status int, slug string) {
	t.Helper()
	var p Problem
	if code != status || h.Get("Content-Type") != "application/problem+json" ||
		json.Unmarshal([]byte(body), &p) != nil || p.Type != problemTypeBase+slug {
		t.Errorf("%s: %d %s %s; want %d problem %s", what, code, h.Get("Content-Type"), body, status, slug)
	}
}

// TestStreamTokens: a token opens the one stream it was made for, without
// an API key, and nothing else; a tampered, expired or foreign token is
// 401; another tenant's job is 404 as on GET; no token reaches the logs.
func TestStreamTokens(t *testing.T) {
	t.Parallel()
	s := newTokenServer(t, nil)
	const other = "agw_other_tenant_key_1" // tenant globex
	id, id2 := s.submit(benchAPIKey), s.submit(benchAPIKey)

	before := time.Now()
	jt := s.token("/v1/jobs/"+id+"/stream-token", benchAPIKey)
	if d := jt.ExpiresAt.Sub(before); d < 4*time.Minute || d > 5*time.Minute+time.Second {
		t.Errorf("expires_at %s is %s away, want the default 5m", jt.ExpiresAt, d)
	}
	tt := s.token("/v1/events/stream-token", benchAPIKey)

	// The job's stream opens with its token, without Authorization.
	if code, h, kind := s.do(http.MethodGet, "/v1/jobs/"+id+"/events?token="+jt.Token, "", ""); code != http.StatusOK || kind != "queued" {
		t.Errorf("job stream with its token: %d %s first event %q; want 200 and queued", code, h.Get("Content-Type"), kind)
	}
	if code, ct := s.open("/v1/events?token=" + tt.Token); code != http.StatusOK || ct != "text/event-stream" {
		t.Errorf("tenant stream with its token: %d %s, want 200 and a stream", code, ct)
	}

	for _, tc := range []struct {
		what, method, path, key string
		status                  int
		slug                    string
	}{
		{"job token on another job", http.MethodGet, "/v1/jobs/" + id2 + "/events?token=" + jt.Token, "", 403, "stream-token-scope"},
		{"job token on the tenant stream", http.MethodGet, "/v1/events?token=" + jt.Token, "", 403, "stream-token-scope"},
		{"tenant token on a job stream", http.MethodGet, "/v1/jobs/" + id + "/events?token=" + tt.Token, "", 403, "stream-token-scope"},
		{"job token on GET /v1/jobs/{id}", http.MethodGet, "/v1/jobs/" + id + "?token=" + jt.Token, "", 401, "unauthorized"},
		{"job token on the result", http.MethodGet, "/v1/jobs/" + id + "/result?token=" + jt.Token, "", 401, "unauthorized"},
		{"job token on cancel", http.MethodDelete, "/v1/jobs/" + id + "?token=" + jt.Token, "", 401, "unauthorized"},
		{"job token minting another", http.MethodPost, "/v1/jobs/" + id + "/stream-token?token=" + jt.Token, "", 401, "unauthorized"},
		{"tampered token", http.MethodGet, "/v1/jobs/" + id + "/events?token=" + tamper(jt.Token), "", 401, "invalid-stream-token"},
		{"empty token", http.MethodGet, "/v1/jobs/" + id + "/events?token=", "", 401, "invalid-stream-token"},
		{"junk token", http.MethodGet, "/v1/events?token=%00%ff", "", 401, "invalid-stream-token"},
		{"another tenant's job", http.MethodPost, "/v1/jobs/" + id + "/stream-token", other, 404, "not-found"},
		{"a missing job", http.MethodPost, "/v1/jobs/aaaaaaaaaaaaaaaaaaaaaaaaaa/stream-token", benchAPIKey, 404, "not-found"},
		{"a malformed job ID", http.MethodPost, "/v1/jobs/x/stream-token", benchAPIKey, 404, "not-found"},
		{"no API key", http.MethodPost, "/v1/events/stream-token", "", 401, "unauthorized"},
	} {
		code, h, body := s.do(tc.method, tc.path, tc.key, "")
		wantProblem(t, tc.what, code, h, body, tc.status, tc.slug)
	}
	// Another tenant's job answers as GET /v1/jobs/{id} does.
	_, _, getBody := s.do(http.MethodGet, "/v1/jobs/"+id, other, "")
	_, _, tokBody := s.do(http.MethodPost, "/v1/jobs/"+id+"/stream-token", other, "")
	if getBody != tokBody {
		t.Errorf("another tenant's job: token answer %s differs from GET's %s", tokBody, getBody)
	}

	// Expired, and signed by another gateway's key.
	key := s.g.current.Load().streamTokenKey()
	expired := mintStreamToken(key, streamClaims{tenant: "acme", scope: id, expires: time.Now().Add(-time.Second)})
	code, h, body := s.do(http.MethodGet, "/v1/jobs/"+id+"/events?token="+expired, "", "")
	wantProblem(t, "expired token", code, h, body, 401, "invalid-stream-token")
	if !strings.Contains(body, "expired") {
		t.Errorf("expired token: detail %s does not say so", body)
	}
	foreign := mintStreamToken(newStreamTokenKey(), streamClaims{tenant: "acme", scope: id, expires: time.Now().Add(time.Minute)})
	code, h, body = s.do(http.MethodGet, "/v1/jobs/"+id+"/events?token="+foreign, "", "")
	wantProblem(t, "another gateway's token", code, h, body, 401, "invalid-stream-token")

	// A token minted for one tenant cannot be edited into another's.
	forged := mintStreamToken([]byte("not the key"), streamClaims{tenant: "globex", scope: id, expires: time.Now().Add(time.Minute)})
	code, h, body = s.do(http.MethodGet, "/v1/jobs/"+id+"/events?token="+forged, "", "")
	wantProblem(t, "forged token", code, h, body, 401, "invalid-stream-token")

	logs := s.log.String()
	if !strings.Contains(logs, "/v1/jobs/:id/events") {
		t.Fatalf("the access log has no stream request: %s", logs)
	}
	for _, tok := range []string{jt.Token, tt.Token, expired, foreign} {
		if strings.Contains(logs, tok) || strings.Contains(logs, tok[len(tok)-20:]) {
			t.Errorf("a stream token is in the logs:\n%s", logs)
		}
	}
}

// tamper changes one character of a token's signature.
func tamper(tok string) string {
	b := []byte(tok)
	i := len(b) - 3
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// TestStreamTokensWithoutAuth: with authentication off the endpoints
// still work, as tenant default, and the token still opens only its
// stream.
func TestStreamTokensWithoutAuth(t *testing.T) {
	t.Parallel()
	s := newTokenServer(t, func(c *Config, _ *Deps) {
		c.Auth = AuthConfig{}
		c.StreamTokens = StreamTokenConfig{Secret: strings.Repeat("s", 32), TTL: time.Minute}
	})
	id, id2 := s.submit(""), s.submit("")
	jt := s.token("/v1/jobs/"+id+"/stream-token", "")
	if d := time.Until(jt.ExpiresAt); d > time.Minute || d < 50*time.Second {
		t.Errorf("expires_at is %s away, want the configured 1m", d)
	}
	claims, err := parseStreamToken([]byte(strings.Repeat("s", 32)), jt.Token, time.Now())
	if err != nil || claims.tenant != DefaultTenant || claims.scope != id {
		t.Errorf("token claims %+v, %v; want tenant default, scope the job (signed with the configured secret)", claims, err)
	}
	if code, _, kind := s.do(http.MethodGet, "/v1/jobs/"+id+"/events?token="+jt.Token, "", ""); code != 200 || kind != "queued" {
		t.Errorf("job stream with its token: %d %q", code, kind)
	}
	code, h, body := s.do(http.MethodGet, "/v1/jobs/"+id2+"/events?token="+jt.Token, "", "")
	wantProblem(t, "job token on another job", code, h, body, 403, "stream-token-scope")
	code, h, body = s.do(http.MethodGet, "/v1/jobs/"+id+"/events?token="+tamper(jt.Token), "", "")
	wantProblem(t, "tampered token", code, h, body, 401, "invalid-stream-token")
	tt := s.token("/v1/events/stream-token", "")
	if code, ct := s.open("/v1/events?token=" + tt.Token); code != http.StatusOK || ct != "text/event-stream" {
		t.Errorf("tenant stream with its token: %d %s", code, ct)
	}
}

// TestStreamTokenKeyOutlivesReload: a token minted before a reload opens
// its stream after it when no secret is configured.
func TestStreamTokenKeyOutlivesReload(t *testing.T) {
	t.Parallel()
	var cfg Config
	s := newTokenServer(t, func(c *Config, _ *Deps) { cfg = *c })
	id := s.submit(benchAPIKey)
	jt := s.token("/v1/jobs/"+id+"/stream-token", benchAPIKey)
	if err := s.g.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if code, _, kind := s.do(http.MethodGet, "/v1/jobs/"+id+"/events?token="+jt.Token, "", ""); code != 200 || kind != "queued" {
		t.Errorf("after a reload: %d %q; want the stream", code, kind)
	}
}

func TestStreamTokenConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  StreamTokenConfig
		want string
	}{
		{StreamTokenConfig{}, ""},
		{StreamTokenConfig{Secret: strings.Repeat("k", 32), TTL: time.Hour}, ""},
		{StreamTokenConfig{Secret: "short"}, "gateway.stream_tokens.secret"},
		{StreamTokenConfig{TTL: time.Millisecond}, "gateway.stream_tokens.ttl"},
		{StreamTokenConfig{TTL: 25 * time.Hour}, "gateway.stream_tokens.ttl"},
		{StreamTokenConfig{TTL: -time.Second}, "gateway.stream_tokens.ttl"},
	} {
		err := tc.cfg.withDefaults().validate()
		if (err == nil) != (tc.want == "") || err != nil && !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%+v: %v; want %q", tc.cfg, err, tc.want)
		}
	}
}

// FuzzParseStreamToken: no input panics, and only the minted token
// parses.
func FuzzParseStreamToken(f *testing.F) {
	key := []byte(strings.Repeat("k", 32))
	now := time.Unix(1_800_000_000, 0)
	good := mintStreamToken(key, streamClaims{tenant: "acme", scope: "*", expires: now.Add(time.Minute)})
	f.Add(good)
	f.Add("st1..")
	f.Add("st1.YQ.")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := parseStreamToken(key, tok, now)
		if err == nil && tok != good {
			// Base64 decoding accepts no alternative spellings
			// (RawURLEncoding is strict about padding and bits), so
			// another string that parses would be a forgery.
			if mintStreamToken(key, c) != tok {
				t.Fatalf("%q parsed as %+v", tok, c)
			}
		}
	})
}
