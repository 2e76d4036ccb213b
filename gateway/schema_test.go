package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeSchema(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "schema.json")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const orderSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "required": ["sku", "qty"],
  "additionalProperties": false,
  "properties": {
    "sku": {"type": "string", "minLength": 1},
    "qty": {"type": "integer", "minimum": 1},
    "email": {"type": "string", "format": "email"},
    "a/b": {"type": "string"}
  }
}`

func TestSchemaValidate(t *testing.T) {
	s, err := CompileSchema(writeSchema(t, orderSchema))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		body     string
		pointers []string
	}{
		{"valid", `{"sku":"x","qty":2}`, nil},
		{"missing both", `{}`, []string{""}},
		{"wrong types", `{"sku":1,"qty":"2"}`, []string{"/qty", "/sku"}},
		{"minimum", `{"sku":"x","qty":0}`, []string{"/qty"}},
		{"format asserted", `{"sku":"x","qty":1,"email":"not-an-email"}`, []string{"/email"}},
		{"extra field", `{"sku":"x","qty":1,"extra":true}`, []string{""}},
		{"pointer escaping", `{"sku":"x","qty":1,"a/b":1}`, []string{"/a~1b"}},
		{"not an object", `[1]`, []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := s.Validate([]byte(tt.body))
			var got []string
			for _, e := range errs {
				if e.Detail == "" {
					t.Errorf("violation at %q has no detail", e.Pointer)
				}
				got = append(got, e.Pointer)
			}
			if strings.Join(got, ",") != strings.Join(tt.pointers, ",") {
				t.Fatalf("pointers = %q; want %q (errors %+v)", got, tt.pointers, errs)
			}
		})
	}
}

func TestCompileSchemaBroken(t *testing.T) {
	for name, body := range map[string]string{
		"not json":     `{"type": `,
		"bad keyword":  `{"type": "strng"}`,
		"missing file": "",
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "missing.json")
			if body != "" {
				p = writeSchema(t, body)
			}
			_, err := loadSchemas([]Route{{Name: "r", Schema: p}})
			if err == nil || !strings.HasPrefix(err.Error(), "routes[0].schema: ") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("loadSchemas() = %v; want one line naming routes[0].schema", err)
			}
		})
	}
}
