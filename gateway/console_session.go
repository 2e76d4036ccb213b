package gateway

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// A console session is a signed cookie, not a server-side record: it
// names the API key it was made from (by the first half of the key's
// SHA-256 digest), a random nonce and when it ends, and carries an
// HMAC-SHA256 of all that under the console's session key. Each request
// checks the signature and the end, then looks the key up in the current
// keyring: a key taken out of the configuration ends its sessions at
// once, and a tenant's role is always the configured one. The CSRF token
// of a session is an HMAC of its nonce, sent in every form and checked
// on every state-changing request.

// sessionCookie is the name of the console's session cookie.
const sessionCookie = "asyncgw_console"

// session is a signed-in console user.
type session struct {
	// key is the first 16 bytes of the API key's SHA-256, hex; "" when
	// authentication is off.
	key     string
	nonce   string
	expires time.Time
}

// sessionKeys sign sessions and derive CSRF tokens.
type sessionKeys struct{ key []byte }

// newSessionKey makes a random session key.
func newSessionKey() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}

func (k sessionKeys) mac(parts ...string) []byte {
	m := hmac.New(sha256.New, k.key)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

// encode is the cookie value of s.
func (k sessionKeys) encode(s session) string {
	payload := "v1|" + s.key + "|" + s.nonce + "|" + strconv.FormatInt(s.expires.Unix(), 10)
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." +
		base64.RawURLEncoding.EncodeToString(k.mac("session", payload))
}

var errBadSession = errors.New("invalid or expired console session")

// decode checks a cookie value and returns its session.
func (k sessionKeys) decode(v string, now time.Time) (session, error) {
	p64, s64, ok := strings.Cut(v, ".")
	if !ok || len(v) > 512 {
		return session{}, errBadSession
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p64)
	sig, err2 := base64.RawURLEncoding.DecodeString(s64)
	if err1 != nil || err2 != nil || !hmac.Equal(sig, k.mac("session", string(payload))) {
		return session{}, errBadSession
	}
	parts := strings.Split(string(payload), "|")
	if len(parts) != 4 || parts[0] != "v1" {
		return session{}, errBadSession
	}
	exp, err := strconv.ParseInt(parts[3], 10, 64)
	if err != nil || !now.Before(time.Unix(exp, 0)) {
		return session{}, errBadSession
	}
	return session{key: parts[1], nonce: parts[2], expires: time.Unix(exp, 0)}, nil
}

// csrf is the session's CSRF token.
func (k sessionKeys) csrf(s session) string {
	return base64.RawURLEncoding.EncodeToString(k.mac("csrf", s.nonce))
}

// checkCSRF reports whether token is the session's.
func (k sessionKeys) checkCSRF(s session, token string) bool {
	want := k.csrf(s)
	return len(token) == len(want) && subtle.ConstantTimeCompare([]byte(token), []byte(want)) == 1
}

// newSession is a session of the key with digest d, ending after ttl.
func newSession(d [sha256.Size]byte, ttl time.Duration, now time.Time) session {
	var n [16]byte
	_, _ = rand.Read(n[:])
	return session{key: hex.EncodeToString(d[:16]), nonce: hex.EncodeToString(n[:]), expires: now.Add(ttl)}
}

// byPrefix finds the principal of the key whose digest starts with the
// hex prefix, comparing every entry in constant time.
func (kr keyring) byPrefix(prefix string) (principal, bool) {
	b, err := hex.DecodeString(prefix)
	if err != nil || len(b) != 16 {
		return principal{}, false
	}
	var who principal
	found := 0
	for i := range kr {
		if subtle.ConstantTimeCompare(kr[i].digest[:16], b) == 1 {
			who, found = kr[i].who, 1
		}
	}
	return who, found == 1
}

// signIn checks an API key typed into the sign-in form.
func (kr keyring) signIn(key string) ([sha256.Size]byte, principal, bool) {
	key = strings.TrimSpace(key)
	if key == "" || len(key) > 512 {
		return [sha256.Size]byte{}, principal{}, false
	}
	p, ok := kr.lookup("Bearer " + key)
	return sha256.Sum256([]byte(key)), p, ok
}

// sessionCookieFor is the cookie that carries value (or, with "",
// clears it), Secure when the request came over TLS, directly or through
// a proxy that says so (X-Forwarded-Proto: https).
func sessionCookieFor(r *http.Request, path, value string, expires time.Time) *http.Cookie {
	c := &http.Cookie{
		Name: sessionCookie, Value: value, Path: path,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https"),
	}
	if value == "" {
		c.MaxAge = -1
	} else {
		c.Expires = expires
	}
	return c
}
