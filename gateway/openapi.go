package gateway

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/labstack/echo/v5"
)

// openAPIFixed is the fixed part of the OpenAPI 3.1 document: asyncgw's
// own API, public and admin. buildOpenAPI adds what the configuration
// decides (routes, authentication, server) to make the document a gateway
// serves.
//
//go:embed openapi.json
var openAPIFixed []byte

// OpenAPI returns the OpenAPI 3.1 document that GET /openapi.json serves:
// asyncgw's own API and this gateway's configured routes, made by New and
// again by each Reload. The caller must not modify it.
func (g *Gateway) OpenAPI() []byte { return g.current.Load().openapi }

// openAPIETag identifies a document.
func openAPIETag(doc []byte) string {
	sum := sha256.Sum256(doc)
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}

// openAPI serves GET /openapi.json, with an ETag so that clients can
// revalidate instead of downloading it again.
func (g *Gateway) openAPI(c *echo.Context) error {
	h := c.Response().Header()
	h.Set("ETag", g.openapiETag)
	h.Set("Cache-Control", "no-cache")
	if etagMatch(c.Request().Header.Get("If-None-Match"), g.openapiETag) {
		return c.NoContent(http.StatusNotModified)
	}
	return c.Blob(http.StatusOK, "application/json", g.openapi)
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
