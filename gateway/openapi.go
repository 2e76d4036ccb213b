package gateway

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/labstack/echo/v5"
)

// openAPIDocument is the OpenAPI 3.1 description of the public and admin
// API. The end-to-end suite checks every answer it gets against it.
//
//go:embed openapi.json
var openAPIDocument []byte

// openAPIETag identifies this build's document.
var openAPIETag = func() string {
	sum := sha256.Sum256(openAPIDocument)
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}()

// openAPI serves GET /openapi.json, with an ETag so that clients can
// revalidate instead of downloading it again.
func (g *Gateway) openAPI(c *echo.Context) error {
	h := c.Response().Header()
	h.Set("ETag", openAPIETag)
	h.Set("Cache-Control", "no-cache")
	if etagMatch(c.Request().Header.Get("If-None-Match"), openAPIETag) {
		return c.NoContent(http.StatusNotModified)
	}
	return c.Blob(http.StatusOK, "application/json", openAPIDocument)
}

// etagMatch reports whether an If-None-Match value names etag (or is "*").
// Weak and strong forms compare alike, as RFC 9110 asks for GET.
func etagMatch(header, etag string) bool {
	for v := range strings.SplitSeq(header, ",") {
		v = strings.TrimPrefix(strings.TrimSpace(v), "W/")
		if v == "*" || v == etag {
			return true
		}
	}
	return false
}
