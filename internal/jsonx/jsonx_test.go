package jsonx

import (
	"encoding/json"
	"testing"
)

// TestPlain: a Plain string is one encoding/json writes between quotes
// unchanged (Plain may refuse a few more, such as non-ASCII text), and
// names and IDs are Plain.
func TestPlain(t *testing.T) {
	for _, s := range []string{"", "acme", "a-b_c.d", "01jq7x", "/v1/jobs/x", "a\"b", `a\b`, "a<b", "a>b", "a&b",
		"a\nb", "\x00", "\x7f", "é", "\u2028", "tab\t", "~!@#$%^*()"} {
		b, _ := json.Marshal(s)
		if Plain(s) && string(b) != `"`+s+`"` {
			t.Errorf("Plain(%q), but encoding/json writes %s", s, b)
		}
	}
	for _, s := range []string{"acme", "a-b_c.d", "01jq7xk2m4", "/v1/jobs/01jq7xk2m4/events"} {
		if !Plain(s) {
			t.Errorf("Plain(%q) = false", s)
		}
	}
}
