package gateway

import (
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestSessionCookie(t *testing.T) {
	t.Parallel()
	keys := sessionKeys{key: []byte("0123456789abcdef0123456789abcdef")}
	now := time.Now()
	s := newSession(sha256.Sum256([]byte("key-a")), time.Hour, now)
	v := keys.encode(s)
	got, err := keys.decode(v, now)
	if err != nil || got.key != s.key || got.nonce != s.nonce {
		t.Fatalf("decode(encode) = %+v, %v; want %+v", got, err, s)
	}
	other := sessionKeys{key: []byte("another key, another key, another key")}
	p64, sig, _ := strings.Cut(v, ".")
	for name, bad := range map[string]string{
		"expired":        "",
		"other key":      other.encode(s),
		"no signature":   p64,
		"bad signature":  p64 + "." + sig[:len(sig)-2] + "AA",
		"payload edited": strings.Replace(v, p64[:4], "eDEx", 1),
		"garbage":        "!!.!!",
		"long":           strings.Repeat("a", 600) + "." + sig,
	} {
		at := now
		if name == "expired" {
			bad, at = v, now.Add(2*time.Hour)
		}
		if _, err := keys.decode(bad, at); err == nil {
			t.Errorf("%s: a cookie was taken", name)
		}
	}
	if !keys.checkCSRF(s, keys.csrf(s)) {
		t.Error("the session's own CSRF token was refused")
	}
	s2 := newSession(sha256.Sum256([]byte("key-a")), time.Hour, now)
	for _, tok := range []string{"", "x", keys.csrf(s2), other.csrf(s)} {
		if keys.checkCSRF(s, tok) {
			t.Errorf("CSRF token %q of another session or key was taken", tok)
		}
	}
}

// consoleBundle is a gateway with authentication and the console, and
// an API key of tenant acme.
type consoleBundle struct {
	g   *Gateway
	cfg Config
}

func newConsole(t *testing.T, cfg Config) *consoleBundle {
	t.Helper()
	g, err := New(cfg, Deps{Jobs: &recordingJobs{}, Store: emptyStore{}, Hub: quietFeed{}})
	if err != nil {
		t.Fatal(err)
	}
	return &consoleBundle{g: g, cfg: cfg}
}

func authCfg() Config {
	return Config{Auth: AuthConfig{Enabled: true, Tenants: []Tenant{
		{Name: "acme", KeySHA256: []string{digest("key-a")}},
		{Name: "ops", Admin: true, KeySHA256: []string{digest("key-ops")}},
	}}}
}

// do serves one request; form, when set, is posted as a form.
func (b *consoleBundle) do(method, path string, form url.Values, cookie *http.Cookie, header http.Header) *httptest.ResponseRecorder {
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	r := httptest.NewRequest(method, "http://gw.test"+path, body)
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != nil {
		r.AddCookie(cookie)
	}
	for k, vs := range header {
		r.Header[k] = vs
	}
	w := httptest.NewRecorder()
	b.g.ServeHTTP(w, r)
	return w
}

func sessionFrom(t *testing.T, w *httptest.ResponseRecorder) *http.Cookie {
	t.Helper()
	for _, c := range w.Result().Cookies() {
		if c.Name == sessionCookie {
			return c
		}
	}
	t.Fatalf("no session cookie in %v", w.Header())
	return nil
}

func (b *consoleBundle) signIn(t *testing.T, key string) *http.Cookie {
	t.Helper()
	w := b.do(http.MethodPost, "/ui/signin", url.Values{"key": {key}}, nil, nil)
	if w.Code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d %s", w.Code, w.Body)
	}
	return sessionFrom(t, w)
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func TestConsoleSignIn(t *testing.T) {
	t.Parallel()
	b := newConsole(t, authCfg())

	w := b.do(http.MethodGet, "/ui/jobs", nil, nil, nil)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/ui/signin" {
		t.Fatalf("without a session: %d to %q, want 303 to /ui/signin", w.Code, w.Header().Get("Location"))
	}
	for _, path := range []string{"/ui/live", "/ui/jobs/abc/live"} {
		if w := b.do(http.MethodGet, path, nil, nil, nil); w.Code != http.StatusUnauthorized || w.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s without a session: %d %s, want a 401 problem", path, w.Code, w.Header().Get("Content-Type"))
		}
	}
	w = b.do(http.MethodGet, "/ui/signin", nil, nil, nil)
	if w.Code != http.StatusOK || w.Header().Get("Content-Security-Policy") != consoleCSP || !strings.Contains(w.Body.String(), `name="key"`) {
		t.Fatalf("sign-in page: %d, CSP %q", w.Code, w.Header().Get("Content-Security-Policy"))
	}
	if w := b.do(http.MethodPost, "/ui/signin", url.Values{"key": {"key-x"}}, nil, nil); w.Code != http.StatusUnauthorized || len(w.Result().Cookies()) != 0 {
		t.Fatalf("a wrong key: %d with cookies %v, want 401 and none", w.Code, w.Result().Cookies())
	}
	if w := b.do(http.MethodPost, "/ui/signin", url.Values{"key": {"key-a"}}, nil, http.Header{"Origin": {"http://evil.test"}}); w.Code != http.StatusForbidden {
		t.Fatalf("a sign-in posted from another site: %d, want 403", w.Code)
	}

	c := b.signIn(t, "key-a")
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/ui/" || c.Secure || c.Expires.Before(time.Now().Add(11*time.Hour)) {
		t.Fatalf("cookie %+v: want HttpOnly, SameSite=Strict, Path /ui/, not Secure over plain HTTP, 12h", c)
	}
	if strings.Contains(c.Value, "key-a") || strings.Contains(c.Value, digest("key-a")) {
		t.Fatal("the cookie carries the key or its whole digest")
	}
	w = b.do(http.MethodPost, "/ui/signin", url.Values{"key": {"key-a"}}, nil, http.Header{"X-Forwarded-Proto": {"https"}})
	if !sessionFrom(t, w).Secure {
		t.Fatal("a sign-in behind a TLS proxy got a cookie without Secure")
	}

	w = b.do(http.MethodGet, "/ui/jobs", nil, c, nil)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `<span id="who">acme</span>`) {
		t.Fatalf("with the session: %d %s", w.Code, w.Body)
	}
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy"} {
		if w.Header().Get(h) == "" {
			t.Errorf("the page has no %s", h)
		}
	}
	if strings.Contains(w.Body.String(), "<script>") || strings.Contains(w.Body.String(), "style=") {
		t.Error("a page has an inline script or style")
	}
	// A tenant has no overview; an admin does not reach the admin pages
	// without the admin service (none here).
	if w := b.do(http.MethodGet, "/ui/", nil, c, nil); w.Header().Get("Location") != "/ui/jobs" {
		t.Errorf("a tenant's home: %q, want /ui/jobs", w.Header().Get("Location"))
	}
}

func TestConsoleCSRF(t *testing.T) {
	t.Parallel()
	b := newConsole(t, authCfg())
	c := b.signIn(t, "key-a")
	w := b.do(http.MethodGet, "/ui/jobs", nil, c, nil)
	m := csrfInput.FindStringSubmatch(w.Body.String())
	if m == nil {
		t.Fatal("the page has no CSRF field")
	}
	token := m[1]
	c2 := b.signIn(t, "key-a")
	other := csrfInput.FindStringSubmatch(b.do(http.MethodGet, "/ui/jobs", nil, c2, nil).Body.String())[1]
	if other == token {
		t.Fatal("two sessions share a CSRF token")
	}
	for name, tt := range map[string]struct {
		form   url.Values
		header http.Header
	}{
		"no token":        {url.Values{}, nil},
		"wrong token":     {url.Values{"csrf": {"nope"}}, nil},
		"another's token": {url.Values{"csrf": {other}}, nil},
		"cross-site":      {url.Values{"csrf": {token}}, http.Header{"Sec-Fetch-Site": {"cross-site"}}},
		"other origin":    {url.Values{"csrf": {token}}, http.Header{"Origin": {"http://evil.test"}}},
	} {
		if w := b.do(http.MethodPost, "/ui/signout", tt.form, c, tt.header); w.Code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, w.Code)
		}
	}
	// A cancel with another session's token is refused before the job is
	// looked at.
	if w := b.do(http.MethodPost, "/ui/jobs/aaaaaaaaaaaaaaaaaaaaaaaaaa/cancel", url.Values{"csrf": {other}}, c, nil); w.Code != http.StatusForbidden {
		t.Errorf("cancel with another's token: %d, want 403", w.Code)
	}
	w = b.do(http.MethodPost, "/ui/signout", url.Values{"csrf": {token}}, c, http.Header{"Origin": {"http://gw.test"}, "Sec-Fetch-Site": {"same-origin"}})
	if w.Code != http.StatusSeeOther || sessionFrom(t, w).MaxAge >= 0 {
		t.Fatalf("sign-out: %d, cookie %+v; want 303 and the cookie cleared", w.Code, sessionFrom(t, w))
	}
}

// TestConsoleKeyRevoked: a session ends when its key leaves the
// configuration, and follows the key's configured role.
func TestConsoleKeyRevoked(t *testing.T) {
	t.Parallel()
	b := newConsole(t, authCfg())
	c := b.signIn(t, "key-a")
	cfg := authCfg()
	cfg.Auth.Tenants[0].KeySHA256 = []string{digest("key-a-new")}
	if err := b.g.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if w := b.do(http.MethodGet, "/ui/jobs", nil, c, nil); w.Code != http.StatusSeeOther {
		t.Fatalf("a revoked key's session: %d, want 303 to sign-in", w.Code)
	}
}

func TestConsoleAuthOff(t *testing.T) {
	t.Parallel()
	b := newConsole(t, Config{})
	if w := b.do(http.MethodGet, "/ui/signin", nil, nil, nil); w.Code != http.StatusSeeOther {
		t.Fatalf("sign-in with auth off: %d, want a redirect into the console", w.Code)
	}
	w := b.do(http.MethodGet, "/ui/jobs", nil, nil, nil)
	if w.Code != http.StatusOK || strings.Contains(w.Body.String(), "Sign out") {
		t.Fatalf("auth off: %d, sign-out shown: %v", w.Code, strings.Contains(w.Body.String(), "Sign out"))
	}
	// Forms still need the token: another site cannot post to a local
	// console.
	if w := b.do(http.MethodPost, "/ui/jobs/aaaaaaaaaaaaaaaaaaaaaaaaaa/cancel", url.Values{}, nil, nil); w.Code != http.StatusForbidden {
		t.Fatalf("a form without a token, auth off: %d, want 403", w.Code)
	}
	if w := b.do(http.MethodGet, "/ui/static/console.js", nil, nil, nil); w.Code != http.StatusOK || !strings.Contains(w.Header().Get("Content-Type"), "javascript") {
		t.Fatalf("console.js: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
}

func TestConsoleConfig(t *testing.T) {
	t.Parallel()
	route := Route{Name: "r", Path: "/console/x", Upstream: "http://u.test/"}
	for _, tt := range []struct {
		cfg  ConsoleConfig
		want string
	}{
		{ConsoleConfig{Path: "ui"}, "gateway.ui.path"},
		{ConsoleConfig{Path: "/ui"}, "gateway.ui.path"},
		{ConsoleConfig{Path: "/v1/jobs/"}, "gateway.ui.path"},
		{ConsoleConfig{Path: "/a b/"}, "gateway.ui.path"},
		{ConsoleConfig{SessionTTL: time.Second}, "gateway.ui.session_ttl"},
		{ConsoleConfig{SessionKey: []byte("short")}, "gateway.ui.session_key"},
		{ConsoleConfig{Path: "/console/"}, "routes[0].path"},
	} {
		_, err := New(Config{Console: tt.cfg, Routes: []Route{route}}, Deps{Jobs: &recordingJobs{}, Store: emptyStore{}, Hub: quietFeed{}})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want an error naming %s", tt.cfg, err, tt.want)
		}
	}
	b := newConsole(t, Config{Console: ConsoleConfig{Disabled: true}})
	if w := b.do(http.MethodGet, "/ui/jobs", nil, nil, nil); w.Code != http.StatusNotFound {
		t.Fatalf("console disabled: %d, want 404", w.Code)
	}
	b = newConsole(t, Config{Console: ConsoleConfig{Path: "/ops/console/"}})
	if w := b.do(http.MethodGet, "/ops/console/jobs", nil, nil, nil); w.Code != http.StatusOK {
		t.Fatalf("console at /ops/console/: %d, want 200", w.Code)
	}
}
