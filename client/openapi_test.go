package client_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/client"
)

// TestTypesMatchOpenAPI: the client's types carry exactly the members of
// their schemas in the gateway's OpenAPI document (gateway/openapi.json,
// the source of truth), members the schema requires are never left out
// when empty, and each member's Go type fits the schema's type. A change
// to either side that the other does not follow fails here.
func TestTypesMatchOpenAPI(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", "gateway", "openapi.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]schema `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	schemas := doc.Components.Schemas
	for _, tc := range []struct {
		goType reflect.Type
		names  []string // the schemas whose members it carries, together
	}{
		{reflect.TypeFor[client.Job](), []string{"Job"}},
		{reflect.TypeFor[client.Result](), []string{"Result"}},
		{reflect.TypeFor[client.WebhookRef](), []string{"WebhookRef"}},
		{reflect.TypeFor[client.Accepted](), []string{"Accepted"}},
		{reflect.TypeFor[client.JobRequest](), []string{"SubmitRequest"}},
		{reflect.TypeFor[client.StreamToken](), []string{"StreamToken"}},
		{reflect.TypeFor[client.Error](), []string{"Problem"}},
		{reflect.TypeFor[client.FieldError](), []string{"BodyError", "ParameterError"}},
	} {
		props := map[string]schema{}
		var required []string
		for _, n := range tc.names {
			s, ok := schemas[n]
			if !ok {
				t.Fatalf("the document has no schema %s", n)
			}
			for k, v := range s.Properties {
				props[k] = v
			}
			if len(tc.names) == 1 {
				required = s.Required
			}
		}
		fields := jsonFields(tc.goType)
		for name, f := range fields {
			p, ok := props[name]
			if !ok {
				t.Errorf("%s.%s (json %q) is not a member of schema %s", tc.goType.Name(), f.Name, name, strings.Join(tc.names, "/"))
				continue
			}
			if want := schemaTypes(p, schemas); len(want) > 0 && !slices.Contains(want, goSchemaType(f.Type)) {
				t.Errorf("%s.%s is %s (%s), schema %s.%s is %v", tc.goType.Name(), f.Name, f.Type, goSchemaType(f.Type), tc.names[0], name, want)
			}
		}
		for name := range props {
			if _, ok := fields[name]; !ok {
				t.Errorf("schema %s member %q has no field in %s", strings.Join(tc.names, "/"), name, tc.goType.Name())
			}
		}
		for _, name := range required {
			if f, ok := fields[name]; ok && strings.Contains(f.Tag.Get("json"), ",omitempty") {
				t.Errorf("%s.%s is omitempty, but schema %s requires %q", tc.goType.Name(), f.Name, tc.names[0], name)
			}
		}
	}

	// The states are the schema's enum, in its order.
	var enum []string
	for _, v := range schemas["JobState"].Enum {
		enum = append(enum, v.(string))
	}
	var states []string
	for _, s := range client.States {
		states = append(states, string(s))
	}
	if !slices.Equal(enum, states) {
		t.Errorf("client.States %v, schema JobState %v", states, enum)
	}
}

type schema struct {
	Type       any               `json:"type"`
	Ref        string            `json:"$ref"`
	AnyOf      []schema          `json:"anyOf"`
	Properties map[string]schema `json:"properties"`
	Required   []string          `json:"required"`
	Enum       []any             `json:"enum"`
	Const      any               `json:"const"`
}

// schemaTypes lists the JSON types a schema allows other than null; none
// for a schema that allows anything.
func schemaTypes(s schema, all map[string]schema) []string {
	if s.Ref != "" {
		return schemaTypes(all[strings.TrimPrefix(s.Ref, "#/components/schemas/")], all)
	}
	var out []string
	switch v := s.Type.(type) {
	case string:
		out = append(out, v)
	case []any:
		for _, x := range v {
			out = append(out, x.(string))
		}
	}
	for _, sub := range s.AnyOf {
		out = append(out, schemaTypes(sub, all)...)
	}
	out = slices.DeleteFunc(out, func(s string) bool { return s == "null" })
	if slices.Contains(out, "integer") {
		out = append(out, "number")
	}
	return out
}

// goSchemaType is the JSON type a Go type encodes as; "" for any.
func goSchemaType(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == reflect.TypeFor[time.Time](), t == reflect.TypeFor[[]byte]():
		return "string"
	case t == reflect.TypeFor[json.RawMessage]():
		return ""
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "integer"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	}
	return ""
}

// jsonFields are the fields of a struct type by JSON name, without those
// tagged "-".
func jsonFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f
	}
	return out
}
