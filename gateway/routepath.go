package gateway

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/labstack/echo/v5"
)

// routePath is a route's path read at start-up.
type routePath struct {
	// echo is the path in echo's syntax: "{name}" segments become ":name".
	echo string
	// shape is the path with its parameters left unnamed ("/v1/orders/:"):
	// two routes of one method and one shape are the same route.
	shape string
	// params are the names of the path's parameters, in order.
	params []string
}

// parseRoutePath reads a route path that names its parameters either as
// whole "{name}" segments or in echo's syntax (":name", up to the next
// "/"; "*" for the rest of the path).
func parseRoutePath(path string) (routePath, error) {
	var rp routePath
	var echoPath, shape strings.Builder
	for i, seg := range strings.Split(path, "/") {
		if i > 0 {
			echoPath.WriteByte('/')
			shape.WriteByte('/')
		}
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") && len(seg) > 2 {
			seg = ":" + seg[1:len(seg)-1]
		}
		if strings.ContainsAny(seg, "{}") {
			return rp, fmt.Errorf("%q: a parameter in braces must be a whole segment, such as /v1/orders/{customer}", path)
		}
		echoPath.WriteString(seg)
		// As echo reads a segment: a parameter from an unescaped ":" to
		// the end of the segment, or "*" for the rest of the path.
		for k := 0; k < len(seg); k++ {
			switch {
			case seg[k] == ':' && (k == 0 || seg[k-1] != '\\'):
				name := seg[k+1:]
				if name == "" || strings.ContainsAny(name, ":*") {
					return rp, fmt.Errorf("%q: parameter %q needs a name of its own, such as :customer", path, seg[k:])
				}
				if slices.Contains(rp.params, name) {
					return rp, fmt.Errorf("%q: parameter %q is named twice", path, name)
				}
				rp.params = append(rp.params, name)
				shape.WriteByte(':')
				k = len(seg)
			case seg[k] == '*':
				rp.params = append(rp.params, "*")
				shape.WriteByte('*')
				k = len(seg)
			default:
				shape.WriteByte(seg[k])
			}
		}
	}
	rp.echo, rp.shape = echoPath.String(), shape.String()
	return rp, nil
}

// upstreamParams returns the names of an upstream URL template's
// placeholders: whole path segments ":name" or "{name}". Braces anywhere
// else are refused, since nothing would replace them.
func upstreamParams(tmpl string) ([]string, error) {
	u, err := parseURL(tmpl)
	if err != nil {
		return nil, err
	}
	if strings.ContainsAny(u.Host, "{}") || strings.ContainsAny(u.RawQuery, "{}") || strings.ContainsAny(u.Fragment, "{}") {
		return nil, errors.New("placeholders are replaced only in whole path segments, such as /orders/{customer}")
	}
	var names []string
	for _, seg := range strings.Split(templatePath(u), "/") {
		if name, ok := placeholder(seg); ok {
			names = append(names, name)
		} else if strings.ContainsAny(seg, "{}") {
			return nil, fmt.Errorf("%q: a placeholder must be a whole path segment, such as /orders/{customer}", seg)
		}
	}
	return names, nil
}

// templatePath is the path of an upstream URL template as it was written
// (escapes kept, braces as they are).
func templatePath(u *url.URL) string {
	if u.RawPath != "" {
		return u.RawPath
	}
	return u.Path
}

// placeholder reports whether a path segment of an upstream URL template
// is a placeholder, and of which parameter.
func placeholder(seg string) (string, bool) {
	switch {
	case strings.HasPrefix(seg, ":") && len(seg) > 1:
		return seg[1:], true
	case strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") && len(seg) > 2:
		return seg[1 : len(seg)-1], true
	}
	return "", false
}

// checkPlaceholders checks that every placeholder of a route's upstream
// names one of its path's parameters.
func checkPlaceholders(upstream string, rp routePath) error {
	names, err := upstreamParams(upstream)
	if err != nil {
		return fmt.Errorf("%q: %w", upstream, err)
	}
	for _, name := range names {
		if !slices.Contains(rp.params, name) {
			return fmt.Errorf("%q: placeholder %q matches no parameter of the route's path %s", upstream, name, rp.echo)
		}
	}
	return nil
}

// upstreamURL fills a route's upstream template with the request's path
// parameters and adds its query string. escaped says that the router read
// the parameters from the request's escaped path (echo does when the
// path has escapes it would not write itself, such as %2F).
func upstreamURL(tmpl string, params echo.PathValues, escaped bool, rawQuery string) (string, error) {
	u, err := parseURL(tmpl)
	if err != nil {
		return "", err
	}
	segs := strings.Split(templatePath(u), "/")
	for i, s := range segs {
		name, ok := placeholder(s)
		if !ok {
			continue
		}
		v, ok := params.Get(name)
		if !ok {
			return "", fmt.Errorf("path parameter %q missing", name)
		}
		if escaped {
			if v, err = url.PathUnescape(v); err != nil {
				return "", fmt.Errorf("path parameter %q: %w", name, err)
			}
		}
		segs[i] = url.PathEscape(v)
	}
	// The path is set in its escaped form, so that a value's "/" or "%"
	// stays part of the value.
	u.RawPath = strings.Join(segs, "/")
	if u.Path, err = url.PathUnescape(u.RawPath); err != nil {
		return "", err
	}
	if rawQuery != "" {
		if u.RawQuery != "" {
			u.RawQuery += "&" + rawQuery
		} else {
			u.RawQuery = rawQuery
		}
	}
	return u.String(), nil
}

// emptyParam reports whether a request left a path parameter empty
// ("/v1/customers//orders"), which echo matches but no one means.
func emptyParam(params echo.PathValues) bool {
	for _, p := range params {
		if p.Value == "" && p.Name != "*" {
			return true
		}
	}
	return false
}
