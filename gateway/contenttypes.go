package gateway

import (
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/asyncgw/asyncgw/jobs"
)

// Content types. A route takes JSON — application/json and any
// type/subtype+json — unless its ContentTypes lists others, which then
// replace that default: media types ("text/plain"), all subtypes of a
// type ("text/*"), or anything ("*/*"); "application/json" in the list
// keeps JSON, with every +json type. A JSON body is checked as JSON (one
// value, UTF-8, no duplicate members) and against the route's schema;
// any other is stored and forwarded as it came, bytes for bytes, with its
// Content-Type.

// checkContentTypes checks a route's ContentTypes: each a media type
// without parameters, type/*, or */*.
func checkContentTypes(at string, list []string) error {
	for i, ct := range list {
		mt, params, err := mime.ParseMediaType(ct)
		typ, sub, ok := strings.Cut(mt, "/")
		wild := strings.Contains(typ, "*") && mt != "*/*" || strings.Contains(sub, "*") && sub != "*"
		if err != nil || len(params) > 0 || !ok || typ == "" || sub == "" || wild || mt != ct {
			return fmt.Errorf("%s.content_types[%d]: %q must be a media type such as text/plain (lower case, no parameters), type/* or */*", at, i, ct)
		}
	}
	return nil
}

// takesJSON reports whether a route with ContentTypes list takes JSON
// bodies.
func takesJSON(list []string) bool {
	ok, _ := takes(list, "application/json")
	return ok
}

// takes reports whether a route with ContentTypes list takes a body of
// media type mt (lower case, without parameters), and whether that body
// is JSON.
func takes(list []string, mt string) (ok, isJSON bool) {
	isJSON = jobs.IsJSONType(mt)
	if list == nil {
		return isJSON, isJSON
	}
	typ, _, _ := strings.Cut(mt, "/")
	for _, a := range list {
		if a == mt || a == "*/*" || a == typ+"/*" || a == "application/json" && isJSON {
			return true, isJSON
		}
	}
	return false, isJSON
}

// checkContentType checks a request's Content-Type against a route's
// ContentTypes (nil: JSON only), and reports whether its body is JSON. A
// request without a body needs no content type.
func checkContentType(ct string, length int64, list []string) (isJSON bool, err error) {
	want := "application/json"
	if list != nil {
		want = strings.Join(list, ", ")
	}
	if ct == "" && length == 0 {
		return true, nil
	}
	if ct == "" {
		return false, problem(http.StatusUnsupportedMediaType, "unsupported-media-type",
			"a Content-Type header is required: "+want)
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return false, problem(http.StatusUnsupportedMediaType, "unsupported-media-type",
			fmt.Sprintf("content type %q cannot be read: send %s", sanitize(ct), want))
	}
	ok, isJSON := takes(list, mt)
	if !ok {
		return false, problem(http.StatusUnsupportedMediaType, "unsupported-media-type",
			fmt.Sprintf("content type %q is not accepted: send %s", sanitize(ct), want))
	}
	if isJSON && params["charset"] != "" && !strings.EqualFold(params["charset"], "utf-8") {
		return false, problem(http.StatusUnsupportedMediaType, "unsupported-media-type", "JSON must be UTF-8")
	}
	return isJSON, nil
}
