package gateway

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v5"

	"github.com/asyncgw/asyncgw/status"
)

// DefaultTenant is the tenant every caller is when authentication is off.
const DefaultTenant = "default"

// AuthConfig configures who may call the API.
type AuthConfig struct {
	// Enabled requires a Bearer API key on every API call. When false,
	// every caller is tenant "default" with the admin role (for local
	// development). Defaults to false.
	Enabled bool
	// Tenants and their keys.
	Tenants []Tenant
}

// Tenant is an owner of jobs. It sees only its own jobs.
type Tenant struct {
	// Name identifies the tenant. Required.
	Name string
	// Admin grants the admin API.
	Admin bool
	// KeySHA256 are the hex SHA-256 digests of the tenant's API keys; keys
	// are never configured in clear.
	KeySHA256 []string
}

// principal is who is calling.
type principal struct {
	tenant string
	admin  bool
}

const principalKey = "asyncgw.principal"

// keyring holds the digests of every configured key.
type keyring []keyEntry

type keyEntry struct {
	digest [sha256.Size]byte
	who    principal
}

func (a AuthConfig) validate() error {
	if a.Enabled && len(a.Tenants) == 0 {
		return fmt.Errorf("auth.tenants: at least one tenant is needed when auth is enabled")
	}
	seen := map[string]bool{}
	keys := map[string]bool{}
	for i, t := range a.Tenants {
		at := fmt.Sprintf("auth.tenants[%d]", i)
		if !status.ValidTenant(t.Name) {
			return fmt.Errorf("%s.name: %q must be 1-64 letters, digits, '-', '_', '.'", at, t.Name)
		}
		if seen[t.Name] {
			return fmt.Errorf("%s.name: %q is used twice", at, t.Name)
		}
		seen[t.Name] = true
		if a.Enabled && len(t.KeySHA256) == 0 {
			return fmt.Errorf("%s.keys: the tenant has no key", at)
		}
		for j, k := range t.KeySHA256 {
			b, err := hex.DecodeString(k)
			if err != nil || len(b) != sha256.Size {
				return fmt.Errorf("%s.keys[%d].sha256: must be 64 hex digits (the SHA-256 of the key; see `asyncgw keys new`)", at, j)
			}
			if keys[strings.ToLower(k)] {
				return fmt.Errorf("%s.keys[%d].sha256: the same key is configured twice", at, j)
			}
			keys[strings.ToLower(k)] = true
		}
	}
	return nil
}

func (a AuthConfig) keyring() keyring {
	var kr keyring
	for _, t := range a.Tenants {
		for _, k := range t.KeySHA256 {
			var e keyEntry
			_, _ = hex.Decode(e.digest[:], []byte(k))
			e.who = principal{tenant: t.Name, admin: t.Admin}
			kr = append(kr, e)
		}
	}
	return kr
}

// authenticate finds the caller's tenant from its Bearer key.
func (g *Gateway) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		if !g.cfg.Auth.Enabled {
			c.Set(principalKey, principal{tenant: DefaultTenant, admin: true})
			return next(c)
		}
		p, ok := g.keys.lookup(c.Request().Header.Get("Authorization"))
		if !ok {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="asyncgw"`)
			return problem(http.StatusUnauthorized, "unauthorized", "a valid API key is required: Authorization: Bearer <key>")
		}
		c.Set(principalKey, p)
		return next(c)
	}
}

// requireAdmin lets only admin keys through.
func requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		if p, _ := c.Get(principalKey).(principal); !p.admin {
			return problem(http.StatusForbidden, "forbidden", "this endpoint needs an admin key")
		}
		return next(c)
	}
}

// lookup checks an Authorization header value against the keyring. The
// key's SHA-256 digest is compared with every configured digest in constant
// time, without stopping at a match.
func (kr keyring) lookup(header string) (principal, bool) {
	scheme, key, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return principal{}, false
	}
	key = strings.TrimSpace(key)
	if key == "" || len(key) > 512 {
		return principal{}, false
	}
	d := sha256.Sum256([]byte(key))
	var who principal
	found := 0
	for i := range kr {
		if subtle.ConstantTimeCompare(kr[i].digest[:], d[:]) == 1 {
			who, found = kr[i].who, 1
		}
	}
	return who, found == 1
}

// tenant is the caller's tenant.
func tenant(c *echo.Context) string {
	if p, ok := c.Get(principalKey).(principal); ok {
		return p.tenant
	}
	return DefaultTenant
}

// NewKey returns a fresh random API key and the hex SHA-256 digest to
// configure for it.
func NewKey() (key, digest string) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	key = "agw_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
	sum := sha256.Sum256([]byte(key))
	return key, hex.EncodeToString(sum[:])
}
