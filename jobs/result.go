package jobs

import (
	"encoding/base64"
	"encoding/json"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"
)

// hopHeader reports whether an upstream response header is connection-level
// and so not worth storing in a Result.
func hopHeader(k string) bool {
	switch http.CanonicalHeaderKey(k) {
	case "Connection", "Keep-Alive", "Transfer-Encoding", "Te", "Trailer", "Upgrade",
		"Proxy-Authenticate", "Proxy-Authorization", "Content-Length", "Date":
		return true
	}
	return false
}

// isJSONType reports whether a content type is application/json or a
// type/subtype+json (a "+json" without a type or a subtype before it, which
// mime.ParseMediaType lets through, is not).
func isJSONType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	if mt == "application/json" {
		return true
	}
	typ, sub, ok := strings.Cut(mt, "/")
	return ok && typ != "" && len(sub) > len("+json") && strings.HasSuffix(sub, "+json")
}

// IsJSONType reports whether the media type of a Content-Type header value
// is application/json or a *+json type.
func IsJSONType(ct string) bool { return isJSONType(ct) }

func isPrintableUTF8(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if r < 0x20 && r != '\n' && r != '\r' && r != '\t' {
			return false
		}
	}
	return true
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func encodeBase64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// Bytes returns the body carried by r as it came from the upstream.
func (r *Result) Bytes() []byte {
	switch {
	case r.BodyBase64 != "":
		b, _ := base64.StdEncoding.DecodeString(r.BodyBase64)
		return b
	case len(r.Body) == 0:
		return nil
	case r.Body[0] == '"' && !isJSONType(r.Headers["Content-Type"]):
		var s string
		if err := jsonUnmarshal(r.Body, &s); err == nil {
			return []byte(s)
		}
	}
	return r.Body
}
