package gateway

import (
	"bytes"
	"cmp"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v5"
)

// StreamTokenConfig configures stream tokens: short-lived, signed
// credentials that open one event stream without an API key, for a
// browser's EventSource, which cannot send Authorization.
type StreamTokenConfig struct {
	// Secret is the HMAC-SHA256 key tokens are signed with, at least 32
	// bytes. Every gateway behind one balancer needs the same secret, or a
	// token minted by one is refused by the others. Defaults to a random
	// key made when the gateway starts (kept across reloads), which suits
	// one gateway process.
	Secret string
	// TTL is how long a token may be used to open its stream, from 1s to
	// 24h. A stream opened in time goes on after it. Defaults to 5m.
	TTL time.Duration
}

// MinStreamTokenSecret is the shortest stream-token secret accepted.
const MinStreamTokenSecret = 32

// maxStreamTokenTTL caps StreamTokenConfig.TTL.
const maxStreamTokenTTL = 24 * time.Hour

func (c StreamTokenConfig) withDefaults() StreamTokenConfig {
	c.TTL = cmp.Or(c.TTL, 5*time.Minute)
	return c
}

func (c StreamTokenConfig) validate() error {
	if c.Secret != "" && len(c.Secret) < MinStreamTokenSecret {
		return fmt.Errorf("gateway.stream_tokens.secret: must be at least %d bytes (a random string; `openssl rand -hex 32` makes one)", MinStreamTokenSecret)
	}
	if c.TTL < time.Second || c.TTL > maxStreamTokenTTL {
		return fmt.Errorf("gateway.stream_tokens.ttl: %s must be between 1s and 24h", c.TTL)
	}
	return nil
}

// streamTokenPrefix starts every stream token; it names the token's
// format, so that a later format can be told apart.
const streamTokenPrefix = "st1."

// streamTokenContext separates this use of the key from any other.
const streamTokenContext = "asyncgw stream token v1\n"

// tenantScope is the scope of a token for the tenant's stream; a job
// token's scope is the job's ID.
const tenantScope = "*"

// streamClaims is what a token grants: reading one stream (a job's, or
// the tenant's when scope is tenantScope) of one tenant until expires.
type streamClaims struct {
	tenant  string
	scope   string
	expires time.Time
}

// StreamToken is the answer of POST /v1/jobs/{id}/stream-token and
// POST /v1/events/stream-token.
type StreamToken struct {
	// Token opens the stream as its ?token= query parameter.
	Token string `json:"token"`
	// ExpiresAt is when the token can no longer open the stream.
	ExpiresAt time.Time `json:"expires_at"`
}

// newStreamTokenKey makes the key of a gateway whose configuration names
// no secret.
func newStreamTokenKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}

// streamTokenKey is the key tokens are signed and checked with.
func (g *Gateway) streamTokenKey() []byte {
	if s := g.cfg.StreamTokens.Secret; s != "" {
		return []byte(s)
	}
	return g.tokenKey
}

// mint signs claims into a token:
// "st1." base64url(tenant "\n" scope "\n" unix expiry) "." base64url(mac).
func mintStreamToken(key []byte, c streamClaims) string {
	payload := c.tenant + "\n" + c.scope + "\n" + strconv.FormatInt(c.expires.Unix(), 10)
	enc := base64.RawURLEncoding
	return streamTokenPrefix + enc.EncodeToString([]byte(payload)) + "." + enc.EncodeToString(streamTokenMAC(key, payload))
}

func streamTokenMAC(key []byte, payload string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(streamTokenContext))
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// Why a token is refused.
var (
	errTokenInvalid = errors.New("the stream token is malformed or its signature does not match")
	errTokenExpired = errors.New("the stream token has expired")
)

// parseStreamToken checks a token's signature and expiry at now and
// returns its claims.
func parseStreamToken(key []byte, token string, now time.Time) (streamClaims, error) {
	rest, ok := strings.CutPrefix(token, streamTokenPrefix)
	if !ok || len(token) > 512 {
		return streamClaims{}, errTokenInvalid
	}
	p64, m64, ok := strings.Cut(rest, ".")
	if !ok {
		return streamClaims{}, errTokenInvalid
	}
	enc := base64.RawURLEncoding
	payload, err1 := enc.DecodeString(p64)
	mac, err2 := enc.DecodeString(m64)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, streamTokenMAC(key, string(payload))) {
		return streamClaims{}, errTokenInvalid
	}
	parts := bytes.Split(payload, []byte("\n"))
	if len(parts) != 3 {
		return streamClaims{}, errTokenInvalid
	}
	exp, err := strconv.ParseInt(string(parts[2]), 10, 64)
	if err != nil {
		return streamClaims{}, errTokenInvalid
	}
	c := streamClaims{tenant: string(parts[0]), scope: string(parts[1]), expires: time.Unix(exp, 0)}
	if !now.Before(c.expires) {
		return streamClaims{}, errTokenExpired
	}
	return c, nil
}

// streamAuth authenticates a request for an event stream: with a stream
// token in ?token= when it has one, else as every other API call. A token
// is checked whether authentication is on or off; it opens only the stream
// it was minted for (scope names it: a job ID, or tenantScope).
func (g *Gateway) streamAuth(scope func(c *echo.Context) string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		byKey := g.authenticate(next)
		return func(c *echo.Context) error {
			q := c.Request().URL.Query()
			if !q.Has("token") {
				return byKey(c)
			}
			claims, err := parseStreamToken(g.streamTokenKey(), q.Get("token"), time.Now())
			if err != nil {
				c.Response().Header().Set("WWW-Authenticate", `Bearer realm="asyncgw", error="invalid_token"`)
				return problem(http.StatusUnauthorized, "invalid-stream-token", err.Error()+"; ask the API for a new one")
			}
			if claims.scope != scope(c) {
				return problem(http.StatusForbidden, "stream-token-scope",
					"this stream token opens another event stream; it grants reading only the stream it was made for")
			}
			if g.cfg.Auth.Enabled && !g.knownTenant(claims.tenant) {
				// The tenant was removed by a reload since.
				return problem(http.StatusUnauthorized, "invalid-stream-token", "the stream token's tenant is no longer configured")
			}
			c.Set(principalKey, principal{tenant: claims.tenant})
			return next(c)
		}
	}
}

// knownTenant reports whether the configuration has tenant.
func (g *Gateway) knownTenant(tenant string) bool {
	for _, t := range g.cfg.Auth.Tenants {
		if t.Name == tenant {
			return true
		}
	}
	return false
}

// jobScope is the scope a token needs for GET /v1/jobs/{id}/events.
func jobScope(c *echo.Context) string { return c.Param("id") }

// tenantStreamScope is the scope a token needs for GET /v1/events.
func tenantStreamScope(*echo.Context) string { return tenantScope }

// jobStreamToken serves POST /v1/jobs/{id}/stream-token: a token that
// opens the caller's job's event stream. Another tenant's job, or none,
// is 404 as on GET /v1/jobs/{id}.
func (g *Gateway) jobStreamToken(c *echo.Context) error {
	id, err := jobID(c)
	if err != nil {
		return err
	}
	t := tenant(c)
	if _, err := g.deps.Store.Get(c.Request().Context(), t, id); err != nil {
		return err
	}
	return g.answerStreamToken(c, streamClaims{tenant: t, scope: id})
}

// tenantStreamToken serves POST /v1/events/stream-token: a token that
// opens the caller's tenant stream.
func (g *Gateway) tenantStreamToken(c *echo.Context) error {
	return g.answerStreamToken(c, streamClaims{tenant: tenant(c), scope: tenantScope})
}

func (g *Gateway) answerStreamToken(c *echo.Context, claims streamClaims) error {
	// Whole seconds: the token carries its expiry in seconds.
	claims.expires = time.Now().Add(g.cfg.StreamTokens.TTL).Truncate(time.Second)
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, StreamToken{
		Token:     mintStreamToken(g.streamTokenKey(), claims),
		ExpiresAt: claims.expires.UTC(),
	})
}
