package gateway

import (
	"bytes"
	"cmp"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v5"
)

// The operator console: server-rendered pages (html/template) with one
// small hand-written script for live updates, all embedded in the binary
// (console/). No front-end library and no build step: the pages work as
// plain HTML forms, and the script only refreshes parts of them when the
// gateway's event streams say something changed.

// ConsoleConfig configures the operator console.
type ConsoleConfig struct {
	// Disabled turns the console off. Defaults to false: the console is
	// served at Path.
	Disabled bool
	// Path is where the console is served: it starts and ends with "/".
	// Defaults to "/ui/".
	Path string
	// SessionTTL is how long a sign-in lasts. Defaults to 12h.
	SessionTTL time.Duration
	// SessionKey signs session cookies (HMAC-SHA256; at least 32 bytes).
	// Defaults to a random key made when the gateway starts: sessions then
	// end at a restart and are valid on this process only. Give every
	// gateway behind one balancer the same key to share sessions.
	SessionKey []byte
}

func (c ConsoleConfig) withDefaults() ConsoleConfig {
	c.Path = cmp.Or(c.Path, "/ui/")
	c.SessionTTL = cmp.Or(c.SessionTTL, 12*time.Hour)
	return c
}

func (c ConsoleConfig) validate(routes []Route) error {
	if c.Disabled {
		return nil
	}
	if !strings.HasPrefix(c.Path, "/") || !strings.HasSuffix(c.Path, "/") || len(c.Path) < 3 ||
		strings.ContainsAny(c.Path, ":*{}?#% ") {
		return fmt.Errorf("gateway.ui.path: %q must start and end with / and name a path such as /ui/", c.Path)
	}
	if reservedPath(c.Path) || reservedPath(strings.TrimSuffix(c.Path, "/")) {
		return fmt.Errorf("gateway.ui.path: %q is reserved by asyncgw's API", c.Path)
	}
	if c.SessionTTL < time.Minute || c.SessionTTL > 90*24*time.Hour {
		return fmt.Errorf("gateway.ui.session_ttl: %s must be from 1m to 2160h", c.SessionTTL)
	}
	if c.SessionKey != nil && len(c.SessionKey) < 32 {
		return fmt.Errorf("gateway.ui.session_key: must be at least 32 bytes")
	}
	for i, r := range routes {
		if strings.HasPrefix(r.Path+"/", c.Path) {
			return fmt.Errorf("routes[%d].path: %q is under the console's path %s (gateway.ui.path)", i, r.Path, c.Path)
		}
	}
	return nil
}

//go:embed console
var consoleFiles embed.FS

// consolePages are the console's pages, each parsed with the layout.
var consolePages = func() map[string]*template.Template {
	base := template.Must(template.New("layout.html").Funcs(consoleFuncs).ParseFS(consoleFiles, "console/layout.html"))
	pages := map[string]*template.Template{}
	names, _ := fs.Glob(consoleFiles, "console/page_*.html")
	for _, n := range names {
		t := template.Must(template.Must(base.Clone()).ParseFS(consoleFiles, n))
		pages[strings.TrimSuffix(strings.TrimPrefix(n, "console/page_"), ".html")] = t
	}
	return pages
}()

// consoleCSP is the console's Content-Security-Policy: nothing but its
// own files, no inline script or style, no framing.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// consoleRoutes mounts the console.
func (g *Gateway) consoleRoutes(e *echo.Echo) {
	c := g.cfg.Console
	if c.Disabled {
		return
	}
	p := c.Path
	e.GET(strings.TrimSuffix(p, "/"), func(c *echo.Context) error { return c.Redirect(http.StatusFound, p) })
	static, _ := fs.Sub(consoleFiles, "console/static")
	e.GET(p+"static/*", g.consoleStatic(http.StripPrefix(p+"static/", http.FileServerFS(static))))

	open := []echo.MiddlewareFunc{g.consoleHeaders}
	signed := []echo.MiddlewareFunc{g.consoleHeaders, g.consoleSession}
	e.GET(p+"signin", g.consoleSignInPage, open...)
	e.POST(p+"signin", g.consoleSignIn, append(open, g.consoleOrigin)...)
	e.POST(p+"signout", g.consoleSignOut, append(signed, g.consoleOrigin, g.consoleCSRF)...)

	e.GET(p, g.consoleHome, signed...)
	e.GET(p+"jobs", g.consoleJobs, signed...)
	e.GET(p+"jobs/:id", g.consoleJob, signed...)
	e.GET(p+"live", g.consoleLive, signed...)
	e.GET(p+"jobs/:id/live", g.consoleJobLive, signed...)
	write := append(signed, g.consoleOrigin, g.consoleCSRF)
	e.POST(p+"jobs/:id/cancel", g.consoleCancel, write...)
	if g.deps.Admin != nil {
		e.GET(p+"overview", g.consoleOverview, signed...)
		e.GET(p+"dlq", g.consoleDLQ, signed...)
		admin := append(write, g.consoleAdmin)
		e.POST(p+"jobs/:id/replay", g.consoleReplay, admin...)
		e.POST(p+"queues/:queue/:action", g.consolePause, admin...)
		e.POST(p+"dlq/selected", g.consoleDLQSelected, admin...)
		e.POST(p+"dlq/replay", g.consoleBulkReplay, admin...)
		e.POST(p+"dlq/delete", g.consoleBulkDelete, admin...)
	}
}

// consoleStatic serves the embedded assets, cacheable for a while (their
// names do not change between versions, so not for long).
func (g *Gateway) consoleStatic(h http.Handler) echo.HandlerFunc {
	return func(c *echo.Context) error {
		w := c.Response()
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, c.Request())
		return nil
	}
}

// consoleHeaders sets the headers of every console page.
func (g *Gateway) consoleHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", consoleCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		return next(c)
	}
}

// originCheck refuses cross-origin state-changing requests (by
// Sec-Fetch-Site or Origin).
var originCheck = http.NewCrossOriginProtection()

// consoleOrigin refuses a form posted from another site.
func (g *Gateway) consoleOrigin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		if err := originCheck.Check(c.Request()); err != nil {
			return g.consoleError(c, http.StatusForbidden, "This form was sent from another site, and was refused.")
		}
		return next(c)
	}
}

// consoleKeys are the keys that sign this gateway's sessions.
func (g *Gateway) consoleKeys() sessionKeys {
	if k := g.cfg.Console.SessionKey; k != nil {
		return sessionKeys{key: k}
	}
	return sessionKeys{key: g.consoleKey}
}

const (
	sessionKey = "asyncgw.console.session"
	csrfField  = "csrf"
)

// consoleSession lets through a request with a valid session (or any
// request when authentication is off), as its principal; others go to
// the sign-in page (pages) or get 401 (event streams and fragments).
func (g *Gateway) consoleSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		keys := g.consoleKeys()
		if !g.cfg.Auth.Enabled {
			c.Set(principalKey, principal{tenant: DefaultTenant, admin: true})
			c.Set(sessionKey, session{nonce: "auth-off"})
			return next(c)
		}
		if ck, err := c.Request().Cookie(sessionCookie); err == nil {
			if s, err := keys.decode(ck.Value, time.Now()); err == nil {
				if p, ok := g.keys.byPrefix(s.key); ok {
					c.Set(principalKey, p)
					c.Set(sessionKey, s)
					return next(c)
				}
			}
		}
		r := c.Request()
		if r.Method != http.MethodGet || r.Header.Get("X-Console-Fragment") != "" || strings.HasSuffix(r.URL.Path, "/live") {
			return problem(http.StatusUnauthorized, "unauthorized", "sign in to the console first")
		}
		return c.Redirect(http.StatusSeeOther, g.cfg.Console.Path+"signin")
	}
}

// consoleCSRF refuses a state-changing request without the session's
// CSRF token (form field csrf).
func (g *Gateway) consoleCSRF(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		s, _ := c.Get(sessionKey).(session)
		if err := c.Request().ParseForm(); err != nil {
			return g.consoleError(c, http.StatusBadRequest, "The form could not be read.")
		}
		if !g.consoleKeys().checkCSRF(s, c.Request().PostForm.Get(csrfField)) {
			return g.consoleError(c, http.StatusForbidden, "This form has expired or did not come from the console. Go back, reload the page and try again.")
		}
		return next(c)
	}
}

// consoleAdmin lets only admins through.
func (g *Gateway) consoleAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		if p, _ := c.Get(principalKey).(principal); !p.admin {
			return g.consoleError(c, http.StatusForbidden, "This needs an admin key.")
		}
		return next(c)
	}
}

// pageData is what every page's template gets.
type pageData struct {
	Base     string
	Title    string
	Nav      string
	Tenant   string
	Admin    bool
	SignedIn bool
	AuthOn   bool
	// Ops is set when the admin service is there (overview, dead letters).
	Ops   bool
	CSRF  string
	Flash string
	// Live is the event stream the page follows ("" for none).
	Live string
	Data any
}

// page fills the common part of a page's data.
func (g *Gateway) page(c *echo.Context, title, nav string, data any) pageData {
	p, _ := c.Get(principalKey).(principal)
	s, ok := c.Get(sessionKey).(session)
	pd := pageData{
		Base: g.cfg.Console.Path, Title: title, Nav: nav, Tenant: p.tenant, Admin: p.admin,
		SignedIn: ok, AuthOn: g.cfg.Auth.Enabled, Ops: g.deps.Admin != nil, Data: data,
	}
	if ok {
		pd.CSRF = g.consoleKeys().csrf(s)
	}
	if ck, err := c.Request().Cookie(flashCookie); err == nil {
		pd.Flash = flashText(ck.Value)
		http.SetCookie(c.Response(), &http.Cookie{Name: flashCookie, Path: g.cfg.Console.Path, MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	}
	return pd
}

// render answers a page; a request for a fragment (the script's
// refresh, header X-Console-Fragment) gets the page's content only.
func (g *Gateway) render(c *echo.Context, status int, name string, pd pageData) error {
	t, ok := consolePages[name]
	if !ok {
		return fmt.Errorf("console: no page %q", name)
	}
	tmpl := "layout.html"
	if c.Request().Header.Get("X-Console-Fragment") != "" {
		tmpl = "content"
	}
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, tmpl, pd); err != nil {
		return fmt.Errorf("console: render %s: %w", name, err)
	}
	return c.HTMLBlob(status, b.Bytes())
}

// consoleError answers an error page.
func (g *Gateway) consoleError(c *echo.Context, status int, msg string) error {
	pd := g.page(c, http.StatusText(status), "", map[string]any{"Status": status, "Message": msg})
	return g.render(c, status, "error", pd)
}

// flashCookie carries a one-line message to the page after a redirect.
const flashCookie = "asyncgw_console_flash"

// redirectFlash redirects to path with a message for the next page.
func (g *Gateway) redirectFlash(c *echo.Context, path, msg string) error {
	http.SetCookie(c.Response(), &http.Cookie{
		Name: flashCookie, Value: encodeFlash(msg), Path: g.cfg.Console.Path,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: 60,
	})
	return c.Redirect(http.StatusSeeOther, path)
}

func encodeFlash(msg string) string {
	if len(msg) > 300 {
		msg = msg[:300]
	}
	return strings.NewReplacer("%", "%25", ";", "%3B", ",", "%2C", "\"", "%22", " ", "%20", "\\", "%5C").Replace(msg)
}

func flashText(v string) string {
	return strings.NewReplacer("%25", "%", "%3B", ";", "%2C", ",", "%22", "\"", "%20", " ", "%5C", "\\").Replace(v)
}

// consoleHome sends an admin to the overview, a tenant to its jobs.
func (g *Gateway) consoleHome(c *echo.Context) error {
	if p, _ := c.Get(principalKey).(principal); p.admin && g.deps.Admin != nil {
		return c.Redirect(http.StatusSeeOther, g.cfg.Console.Path+"overview")
	}
	return c.Redirect(http.StatusSeeOther, g.cfg.Console.Path+"jobs")
}

// consoleSignInPage shows the sign-in form (or, with authentication off,
// goes straight in).
func (g *Gateway) consoleSignInPage(c *echo.Context) error {
	if !g.cfg.Auth.Enabled {
		return c.Redirect(http.StatusSeeOther, g.cfg.Console.Path)
	}
	return g.render(c, http.StatusOK, "signin", g.page(c, "Sign in", "", nil))
}

// consoleSignIn exchanges an API key for a session cookie.
func (g *Gateway) consoleSignIn(c *echo.Context) error {
	if !g.cfg.Auth.Enabled {
		return c.Redirect(http.StatusSeeOther, g.cfg.Console.Path)
	}
	r := c.Request()
	r.Body = http.MaxBytesReader(c.Response(), r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		return g.consoleError(c, http.StatusBadRequest, "The form could not be read.")
	}
	d, _, ok := g.keys.signIn(r.PostForm.Get("key"))
	if !ok {
		g.log.Info("console sign-in refused", "remote", r.RemoteAddr)
		pd := g.page(c, "Sign in", "", map[string]any{"Error": "That API key is not valid."})
		return g.render(c, http.StatusUnauthorized, "signin", pd)
	}
	now := time.Now()
	s := newSession(d, g.cfg.Console.SessionTTL, now)
	http.SetCookie(c.Response(), sessionCookieFor(r, g.cfg.Console.Path, g.consoleKeys().encode(s), s.expires))
	return c.Redirect(http.StatusSeeOther, g.cfg.Console.Path)
}

// consoleSignOut clears the session cookie.
func (g *Gateway) consoleSignOut(c *echo.Context) error {
	http.SetCookie(c.Response(), sessionCookieFor(c.Request(), g.cfg.Console.Path, "", time.Time{}))
	if !g.cfg.Auth.Enabled {
		return c.Redirect(http.StatusSeeOther, g.cfg.Console.Path)
	}
	return c.Redirect(http.StatusSeeOther, g.cfg.Console.Path+"signin")
}

// errConsoleNotFound is the console's answer for a job the caller cannot
// see, exactly as for one that does not exist.
var errConsoleNotFound = errors.New("not found")

// consoleFuncs are the templates' helpers.
var consoleFuncs = template.FuncMap{
	// when formats a time (or *time.Time) in UTC to the second.
	"when": func(v any) string {
		var t time.Time
		switch x := v.(type) {
		case time.Time:
			t = x
		case *time.Time:
			if x == nil {
				return ""
			}
			t = *x
		}
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	// seconds formats a duration in seconds for people.
	"seconds": func(s float64) string {
		if s <= 0 {
			return "–"
		}
		return (time.Duration(s * float64(time.Second))).Round(time.Second / 10).String()
	},
	// withCursor is a page's query with another cursor ("" for none),
	// without a dry run's preview.
	"withCursor": func(q url.Values, cursor string) string {
		v := url.Values{}
		for k, vs := range q {
			if k != "cursor" && k != "preview" {
				v[k] = vs
			}
		}
		if cursor != "" {
			v.Set("cursor", cursor)
		}
		return v.Encode()
	},
}
