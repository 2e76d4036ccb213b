package e2e

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/jobs"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestMain(m *testing.M) { redistest.Main(m) }

// idPattern is the shape of a job ID on the wire.
var idPattern = regexp.MustCompile(`^[a-z2-7]{26}$`)

// problemBody is an RFC 9457 problem as the gateway sends it.
type problemBody struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Pointer string `json:"pointer"`
		Detail  string `json:"detail"`
	} `json:"errors"`
}

// requireProblem checks that r is a problem+json answer with status and
// the four standard fields, and returns it.
func requireProblem(t *testing.T, what string, r *Response, status int) problemBody {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: status %d, want %d; body %s", what, r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%s: Content-Type %q, want application/problem+json", what, ct)
	}
	var p problemBody
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("%s: decode problem %q: %v", what, r.Body, err)
	}
	if p.Type == "" || p.Title == "" || p.Detail == "" || p.Status != status {
		t.Errorf("%s: problem %s lacks type/title/detail or has status %d, want %d", what, r.Body, p.Status, status)
	}
	return p
}

// hasPointer reports whether a problem names the JSON pointer.
func hasPointer(p problemBody, pointer string) bool {
	for _, e := range p.Errors {
		if e.Pointer == pointer && e.Detail != "" {
			return true
		}
	}
	return false
}

// jsonEqual reports whether two JSON texts hold the same value.
func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("decode %q: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

// decodeJob decodes the job resource carried by an event or an answer.
func decodeJob(t *testing.T, b []byte) *jobs.Job {
	t.Helper()
	var j jobs.Job
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatalf("decode job resource %q: %v", b, err)
	}
	return &j
}

// timestamp matches the RFC 3339 times of the job resource.
var timestamp = regexp.MustCompile(`"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)"`)

// normalize replaces what changes from run to run (job IDs, queue names,
// times) with placeholders, so that output can be compared with a golden
// file.
func normalize(b []byte, replace map[string]string) []byte {
	s := string(b)
	for old, repl := range replace {
		s = strings.ReplaceAll(s, old, repl)
	}
	return timestamp.ReplaceAll([]byte(s), []byte(`"<time>"`))
}

// golden compares got with testdata/name, or rewrites the file under
// -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update if the change is intended)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// okJSON answers 200 with a small JSON body.
func okJSON(w http.ResponseWriter, _ *http.Request, _ Call) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"ok":true}`))
}
