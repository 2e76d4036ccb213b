package main

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// unconfigurableHeaders are headers a route may not set on its upstream
// calls: asyncgw sets them itself (the job's Idempotency-Key, the
// attempt's trace context), or they belong to the connection and the
// message framing, which the HTTP client owns. X-Asyncgw-* are refused
// too (see routeHeaders).
var unconfigurableHeaders = map[string]bool{
	"Host": true, "Content-Length": true, "Transfer-Encoding": true,
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true,
	"Te": true, "Trailer": true, "Upgrade": true, "Expect": true,
	"Idempotency-Key": true, "Traceparent": true, "Tracestate": true,
}

// routeHeaders checks a route's headers (at is its key, such as
// routes[0].headers) and returns them under their canonical names. Errors
// never quote a value: values are often credentials.
func routeHeaders(at string, in map[string]string) (map[string]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	names := make([]string, 0, len(in))
	for name := range in {
		names = append(names, name)
	}
	slices.Sort(names)
	out := make(map[string]string, len(in))
	for _, name := range names {
		if !httpguts.ValidHeaderFieldName(name) {
			return nil, fmt.Errorf("%s: %q is not a valid header name", at, name)
		}
		canonical := http.CanonicalHeaderKey(name)
		if unconfigurableHeaders[canonical] || strings.HasPrefix(canonical, "X-Asyncgw-") {
			return nil, fmt.Errorf("%s.%s: asyncgw or the HTTP connection sets this header; it cannot be configured", at, name)
		}
		if _, twice := out[canonical]; twice {
			return nil, fmt.Errorf("%s.%s: the header is given twice (header names are case-insensitive)", at, name)
		}
		if !httpguts.ValidHeaderFieldValue(in[name]) {
			return nil, fmt.Errorf("%s.%s: the value has a control character (such as CR, LF or NUL), which a header cannot carry", at, name)
		}
		out[canonical] = in[name]
	}
	return out, nil
}
