package gateway

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MaxIdempotencyKeyLen is the longest Idempotency-Key accepted.
const MaxIdempotencyKeyLen = 255

// ParseIdempotencyKey reads the Idempotency-Key header (values as given by
// Header.Values): per draft-ietf-httpapi-idempotency-key-header a
// structured-field string ("..."), also accepted as a bare token. It returns
// "" when the header is absent.
func ParseIdempotencyKey(values []string) (string, error) {
	if len(values) == 0 {
		return "", nil
	}
	if len(values) > 1 {
		return "", errors.New("send one Idempotency-Key header, not several")
	}
	v := strings.Trim(values[0], " \t")
	if v == "" {
		return "", errors.New("the Idempotency-Key header is empty")
	}
	var key string
	if v[0] == '"' {
		var err error
		key, err = parseSFString(v)
		if err != nil {
			return "", err
		}
	} else {
		for i := 0; i < len(v); i++ {
			if !isTokenChar(v[i]) {
				return "", fmt.Errorf("the Idempotency-Key must be a quoted string or a token; character %d is not allowed", i+1)
			}
		}
		key = v
	}
	if key == "" {
		return "", errors.New("the Idempotency-Key is empty")
	}
	if len(key) > MaxIdempotencyKeyLen {
		return "", fmt.Errorf("the Idempotency-Key is longer than %d characters", MaxIdempotencyKeyLen)
	}
	return key, nil
}

// parseSFString parses an RFC 8941 string: printable ASCII in quotes, with
// \" and \\ escapes, and nothing after the closing quote.
func parseSFString(v string) (string, error) {
	var b strings.Builder
	for i := 1; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\':
			i++
			if i >= len(v) || (v[i] != '"' && v[i] != '\\') {
				return "", errors.New("the Idempotency-Key has a bad escape")
			}
			b.WriteByte(v[i])
		case c == '"':
			if i != len(v)-1 {
				return "", errors.New("the Idempotency-Key has data after its closing quote")
			}
			return b.String(), nil
		case c < 0x20 || c > 0x7e:
			return "", errors.New("the Idempotency-Key must be printable ASCII")
		default:
			b.WriteByte(c)
		}
	}
	return "", errors.New("the Idempotency-Key has no closing quote")
}

// isTokenChar: RFC 9110 tchar, plus ':' and '/' as in RFC 8941 tokens.
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~:/", c) >= 0
}

// ParsePreferWait reads RFC 7240 Prefer headers and returns the wait=N
// preference in time, capped at limit (0 when absent). Other preferences are
// ignored; a malformed wait is an error.
func ParsePreferWait(values []string, limit time.Duration) (time.Duration, error) {
	var wait time.Duration
	for _, v := range values {
		for pref := range strings.SplitSeq(v, ",") {
			// Parameters after ';' belong to the preference; wait takes none.
			name, val, hasVal := strings.Cut(strings.TrimSpace(strings.SplitN(pref, ";", 2)[0]), "=")
			if !strings.EqualFold(strings.TrimSpace(name), "wait") {
				continue
			}
			val = strings.Trim(strings.TrimSpace(val), `"`)
			n, err := strconv.ParseUint(val, 10, 32)
			if !hasVal || err != nil {
				return 0, errors.New("Prefer: wait must be a whole number of seconds")
			}
			wait = time.Duration(n) * time.Second
		}
	}
	return min(wait, limit), nil
}
