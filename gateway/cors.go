package gateway

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v5"
)

// CORSConfig says which web origins may call the API from a browser
// (Cross-Origin Resource Sharing). No credentials are involved: a page
// sends an API key in Authorization (which it should not hold) or, for an
// event stream, a stream token in the URL.
type CORSConfig struct {
	// AllowedOrigins are the origins allowed, each exactly as a browser
	// sends it ("https://app.example.com", "http://127.0.0.1:3000": scheme,
	// host and a port other than the scheme's default; no path), or the
	// single entry "*" for any origin. Defaults to none: no CORS headers
	// at all.
	AllowedOrigins []string
}

// corsMaxAge is how long a browser may keep a preflight's answer.
const corsMaxAge = 600 // seconds

// corsAllowHeaders are the request headers a page may send.
var corsAllowHeaders = []string{
	"Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID", "Cache-Control",
	"X-Priority", "X-Callback-URL", "X-Ordering-Key", "Prefer", "X-Request-ID",
	"traceparent", "tracestate",
}

// corsExposeHeaders are the answer headers beyond the CORS-safelisted ones
// that a page may read.
var corsExposeHeaders = []string{
	"Location", "Retry-After", "X-Request-ID", "Idempotent-Replayed", "Preference-Applied",
	"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "WWW-Authenticate",
	"ETag", "X-Asyncgw-Job-State",
}

func (c CORSConfig) validate() error {
	for i, o := range c.AllowedOrigins {
		at := fmt.Sprintf("gateway.cors.allowed_origins[%d]", i)
		if o == "*" {
			if len(c.AllowedOrigins) > 1 {
				return fmt.Errorf("%s: \"*\" allows every origin and must be the only entry", at)
			}
			continue
		}
		if err := checkOrigin(o); err != nil {
			return fmt.Errorf("%s: %q %w", at, o, err)
		}
	}
	return nil
}

// checkOrigin checks that o is an origin written as browsers send it in
// the Origin header, so that comparing strings is comparing origins.
func checkOrigin(o string) error {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("must be an origin such as https://app.example.com")
	}
	if u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(o, "?") || strings.HasSuffix(o, "#") {
		return fmt.Errorf("must be an origin only: scheme, host and port, without a path or a trailing /")
	}
	want := u.Scheme + "://" + strings.ToLower(u.Hostname())
	if strings.Contains(u.Hostname(), ":") {
		want = u.Scheme + "://[" + strings.ToLower(u.Hostname()) + "]"
	}
	if p := u.Port(); p != "" && !(u.Scheme == "http" && p == "80") && !(u.Scheme == "https" && p == "443") {
		want += ":" + p
	}
	if o != want {
		return fmt.Errorf("is not written as a browser sends it: use %q", want)
	}
	return nil
}

// cors answers preflights and marks the answers of allowed origins.
type cors struct {
	any     bool
	origins map[string]bool
	methods string
	headers string
	expose  string
}

// newCORS compiles c for a gateway with routes; nil when no origin is
// allowed.
func newCORS(c CORSConfig, routes []Route) *cors {
	if len(c.AllowedOrigins) == 0 {
		return nil
	}
	methods := []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodDelete}
	for _, r := range routes {
		if !slices.Contains(methods, r.Method) {
			methods = append(methods, r.Method)
		}
	}
	co := &cors{
		origins: map[string]bool{},
		methods: strings.Join(methods, ", "),
		headers: strings.Join(corsAllowHeaders, ", "),
		expose:  strings.Join(corsExposeHeaders, ", "),
	}
	for _, o := range c.AllowedOrigins {
		co.any = co.any || o == "*"
		co.origins[o] = true
	}
	return co
}

// allowed reports whether a request's Origin may read the answer.
func (co *cors) allowed(origin string) bool {
	return origin != "" && (co.any || co.origins[origin])
}

// middleware runs before routing. Every answer varies by Origin; an
// allowed origin's answers carry Access-Control-Allow-Origin (the origin
// itself) and the headers it may read; a preflight of an allowed origin
// is answered 204 here, without authentication or routing. A disallowed
// origin gets no CORS header, so its page cannot read the answer.
func (co *cors) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		r := c.Request()
		h := c.Response().Header()
		h.Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		if !co.allowed(origin) {
			return next(c)
		}
		h.Set("Access-Control-Allow-Origin", origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			h.Set("Access-Control-Allow-Methods", co.methods)
			h.Set("Access-Control-Allow-Headers", co.headers)
			h.Set("Access-Control-Max-Age", strconv.Itoa(corsMaxAge))
			return c.NoContent(http.StatusNoContent)
		}
		h.Set("Access-Control-Expose-Headers", co.expose)
		return next(c)
	}
}
