// Package jsonx helps with JSON on hot paths: it checks request bodies in
// one pass (Check) and writes small documents by hand (Plain).
package jsonx

// Plain reports whether s can be written in a JSON string as it is, with
// the same bytes encoding/json would write: printable ASCII without
// quotes, backslashes or HTML's <, > and &.
func Plain(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}
