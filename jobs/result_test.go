package jobs

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
)

func TestNewResult(t *testing.T) {
	t.Parallel()
	binary := []byte{0x89, 'P', 'N', 'G', 0, 1, 2, 0xff}
	tests := []struct {
		name       string
		ct         string
		body       []byte
		wantBody   string // JSON as stored; "" for none
		wantBase64 bool
	}{
		{"json object", "application/json", []byte(`{"id":7,"ok":true}`), `{"id":7,"ok":true}`, false},
		{"json with charset", "application/json; charset=utf-8", []byte(`[1,2]`), `[1,2]`, false},
		{"problem json", "application/problem+json", []byte(`{"title":"x"}`), `{"title":"x"}`, false},
		{"json string", "application/json", []byte(`"done"`), `"done"`, false},
		{"json number", "Application/JSON", []byte(`42`), `42`, false},
		{"invalid json", "application/json", []byte(`{"id":`), "", true},
		{"text", "text/plain", []byte("hello\nworld"), `"hello\nworld"`, false},
		{"html", "text/html; charset=utf-8", []byte("<p>hi</p>"), `"\u003cp\u003ehi\u003c/p\u003e"`, false},
		{"text that looks like a JSON string", "text/plain", []byte(`"quoted"`), `"\"quoted\""`, false},
		{"text that is not UTF-8", "text/plain; charset=iso-8859-1", []byte("caf\xe9"), "", true},
		{"untyped printable", "", []byte("plain words\t1"), `"plain words\t1"`, false},
		{"untyped binary", "", binary, "", true},
		{"untyped control bytes", "", []byte("a\x00b"), "", true},
		{"octet stream", "application/octet-stream", []byte("printable, still binary"), "", true},
		{"image", "image/png", binary, "", true},
		{"empty", "application/json", nil, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			if tt.ct != "" {
				h.Set("Content-Type", tt.ct)
			}
			r := NewResult(http.StatusCreated, h, tt.body)
			if r.Status != http.StatusCreated {
				t.Errorf("Status = %d", r.Status)
			}
			if string(r.Body) != tt.wantBody {
				t.Errorf("Body = %s, want %s", r.Body, tt.wantBody)
			}
			if len(r.Body) > 0 && !json.Valid(r.Body) {
				t.Errorf("Body %s is not JSON", r.Body)
			}
			if tt.wantBase64 {
				if want := base64.StdEncoding.EncodeToString(tt.body); r.BodyBase64 != want {
					t.Errorf("BodyBase64 = %q, want %q", r.BodyBase64, want)
				}
			} else if r.BodyBase64 != "" {
				t.Errorf("BodyBase64 = %q, want none", r.BodyBase64)
			}

			if !bytes.Equal(r.Raw, tt.body) {
				t.Errorf("Raw = %q, want the body as it came", r.Raw)
			}
			// The body comes back as it came, also after the result is
			// stored as JSON.
			if got := r.Bytes(); !bytes.Equal(got, tt.body) {
				t.Errorf("Bytes() = %q, want %q", got, tt.body)
			}
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			var back Result
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatalf("Unmarshal %s: %v", b, err)
			}
			if got := back.Bytes(); !bytes.Equal(got, tt.body) {
				t.Errorf("Bytes() after a JSON round trip = %q, want %q", got, tt.body)
			}
		})
	}
}

func TestNewResultHeaders(t *testing.T) {
	t.Parallel()
	h := http.Header{
		"Content-Type":       {"application/json"},
		"X-Request-Id":       {"r1"},
		"Set-Cookie":         {"a=1", "b=2"},
		"Location":           {"/orders/7"},
		"Connection":         {"keep-alive"},
		"Keep-Alive":         {"timeout=5"},
		"Transfer-Encoding":  {"chunked"},
		"Te":                 {"trailers"},
		"Trailer":            {"X-Sum"},
		"Upgrade":            {"h2c"},
		"Proxy-Authenticate": {"Basic"},
		"Content-Length":     {"2"},
		"Date":               {"Sat, 21 Nov 2026 10:00:00 GMT"},
		"X-Empty":            {},
	}
	h["x-lower"] = []string{"v"} // not canonical, as a raw map may hold it
	r := NewResult(http.StatusOK, h, []byte(`{}`))
	want := map[string]string{
		"Content-Type": "application/json",
		"X-Request-Id": "r1",
		"Set-Cookie":   "a=1, b=2",
		"Location":     "/orders/7",
		"X-Lower":      "v",
	}
	if !reflect.DeepEqual(r.Headers, want) {
		t.Fatalf("Headers = %v, want %v", r.Headers, want)
	}
}

func TestResultBytes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		r    Result
		want []byte
	}{
		{"nothing", Result{Status: 204}, nil},
		{"base64", Result{BodyBase64: base64.StdEncoding.EncodeToString([]byte{0, 1, 2})}, []byte{0, 1, 2}},
		{"json", Result{Headers: map[string]string{"Content-Type": "application/json"}, Body: json.RawMessage(`{"a":1}`)}, []byte(`{"a":1}`)},
		{"json string stays JSON", Result{Headers: map[string]string{"Content-Type": "application/json"}, Body: json.RawMessage(`"x"`)}, []byte(`"x"`)},
		{"text", Result{Headers: map[string]string{"Content-Type": "text/plain"}, Body: json.RawMessage(`"a\nb"`)}, []byte("a\nb")},
		// A Go handler's result: JSON without a content type.
		{"handler json", Result{Status: 200, Body: json.RawMessage(`{"ok":true}`)}, []byte(`{"ok":true}`)},
	}
	for _, tt := range tests {
		if got := tt.r.Bytes(); !bytes.Equal(got, tt.want) {
			t.Errorf("%s: Bytes() = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestIsJSONType(t *testing.T) {
	t.Parallel()
	for ct, want := range map[string]bool{
		"application/json":                true,
		"application/json; charset=utf-8": true,
		"APPLICATION/JSON":                true,
		"application/vnd.api+json":        true,
		"application/problem+json":        true,
		"+json":                           false,
		"application/+json":               false,
		"/vnd.api+json":                   false,
		"+json/x":                         false,
		"text/json":                       false,
		"application/jsonx":               false,
		"text/plain":                      false,
		"":                                false,
		";;;":                             false,
	} {
		if got := IsJSONType(ct); got != want {
			t.Errorf("IsJSONType(%q) = %v, want %v", ct, got, want)
		}
	}
}
