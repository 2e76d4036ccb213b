package gateway

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// maxSchemaErrors bounds how many violations one answer lists.
const maxSchemaErrors = 50

var schemaPrinter = message.NewPrinter(language.English)

// Schema validates request bodies against a JSON Schema (draft 2020-12
// unless the schema says otherwise).
type Schema struct {
	s *jsonschema.Schema
	// files are the schema files compiled, by absolute path, as they were
	// read: the OpenAPI document shows these.
	files map[string][]byte
}

// CompileSchema reads and compiles the JSON Schema in file. Formats are
// asserted. References to other local files are resolved relative to it;
// nothing is fetched from the network.
func CompileSchema(file string) (*Schema, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	files := recordingLoader{}
	c.UseLoader(files)
	s, err := c.Compile(abs)
	if err != nil {
		return nil, fmt.Errorf("compile schema %s: %s", file, oneLine(err.Error()))
	}
	return &Schema{s: s, files: files}, nil
}

// recordingLoader loads schema files as jsonschema.FileLoader does, and
// keeps what it read by path.
type recordingLoader map[string][]byte

func (l recordingLoader) Load(url string) (any, error) {
	path, err := jsonschema.FileLoader{}.ToFile(url)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	l[path] = b
	return jsonschema.UnmarshalJSON(bytes.NewReader(b))
}

// Validate checks a JSON body and returns one FieldError per violation.
func (s *Schema) Validate(body []byte) []FieldError {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return []FieldError{{Pointer: "", Detail: "the body is not JSON"}}
	}
	err = s.s.Validate(doc)
	if err == nil {
		return nil
	}
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return []FieldError{{Pointer: "", Detail: oneLine(err.Error())}}
	}
	var out []FieldError
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			out = append(out, FieldError{Pointer: pointer(e.InstanceLocation), Detail: e.ErrorKind.LocalizedString(schemaPrinter)})
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Pointer < out[j].Pointer })
	if len(out) > maxSchemaErrors {
		out = out[:maxSchemaErrors]
	}
	return out
}

// pointer builds an RFC 6901 JSON pointer.
func pointer(path []string) string {
	var b strings.Builder
	for _, p := range path {
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(p))
	}
	return b.String()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// loadSchemas compiles the schema of every route that names one.
func loadSchemas(routes []Route) (map[string]*Schema, error) {
	out := map[string]*Schema{}
	for i, r := range routes {
		if r.Schema == "" {
			continue
		}
		if _, err := os.Stat(r.Schema); err != nil {
			return nil, fmt.Errorf("routes[%d].schema: %w", i, err)
		}
		s, err := CompileSchema(r.Schema)
		if err != nil {
			return nil, fmt.Errorf("routes[%d].schema: %w", i, err)
		}
		out[r.Name] = s
	}
	return out, nil
}
