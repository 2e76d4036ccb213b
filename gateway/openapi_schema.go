package gateway

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// schemaBundle gathers the JSON Schema files of the configured routes into
// components/schemas of the OpenAPI document, so that the document stands
// on its own and speaks one dialect, draft 2020-12 (OpenAPI 3.1's):
//
//   - a route's schema file becomes the component "route.<name>" (the first
//     route that names the file gives it its name); a file it refers to
//     becomes "schema.<file name>";
//   - every $ref that leads into those files, by file name, by $id, by
//     $anchor or within the same file ("#/$defs/item"), is rewritten to
//     point into components/schemas;
//   - $id and $anchor are then dropped, since the document is one
//     resource, and so is $schema: a schema written for an earlier draft
//     (4 to 2019-09) is rewritten in 2020-12 terms (definitions, tuple
//     items, dependencies, boolean exclusive bounds), as the gateway
//     validates it in its own draft.
//
// A $ref to anything else (a URL that is none of the files) is left as it is.
type schemaBundle struct {
	comps   *object            // component name → schema, in load order
	byFile  map[string]string  // file URL → component name
	drafts  map[string]draft   // component name → the draft it was written in
	where   map[string]*object // resource URI ($id or file URL) → its schema
	anchors map[string]*object // resource URI "#" anchor → its schema
	refs    []refSite
	used    map[string]bool // component names taken
	// files are schema files as the gateway's validator read them, by
	// absolute path; a file it did not read is read from disk.
	files map[string][]byte
}

// refSite is a schema with a $ref, the base URI the $ref is relative to,
// and, once resolved, the schema it leads to.
type refSite struct {
	schema *object
	base   *url.URL
	target *object
}

// draft is a JSON Schema dialect the gateway's validator knows.
type draft int

const (
	draft4 draft = iota
	draft6
	draft7
	draft2019
	draft2020
)

// draftOf reads a $schema value; ok is false for one it does not know.
func draftOf(s string) (draft, bool) {
	s = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://"), "#")
	switch s {
	case "json-schema.org/draft-04/schema":
		return draft4, true
	case "json-schema.org/draft-06/schema":
		return draft6, true
	case "json-schema.org/draft-07/schema":
		return draft7, true
	case "json-schema.org/draft/2019-09/schema":
		return draft2019, true
	case "json-schema.org/draft/2020-12/schema":
		return draft2020, true
	}
	return draft2020, false
}

func newSchemaBundle(files map[string][]byte) *schemaBundle {
	return &schemaBundle{
		files:   files,
		comps:   newObject(),
		byFile:  map[string]string{},
		drafts:  map[string]draft{},
		where:   map[string]*object{},
		anchors: map[string]*object{},
		used:    map[string]bool{},
	}
}

// addRoute loads a route's schema file and returns the name of its
// component.
func (b *schemaBundle) addRoute(route, file string) (string, error) {
	return b.load(file, "route."+route)
}

// load reads a schema file into a component named name (or, for "", after
// the file), unless it is loaded already, and returns the component's name.
func (b *schemaBundle) load(file, name string) (string, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return "", err
	}
	u := fileURL(abs)
	if c, ok := b.byFile[u.String()]; ok {
		return c, nil
	}
	raw, ok := b.files[abs]
	if !ok {
		if raw, err = os.ReadFile(abs); err != nil {
			return "", err
		}
	}
	v, err := parseJSON(raw)
	if err != nil {
		return "", fmt.Errorf("read schema %s: %w", file, err)
	}
	root := asSchemaObject(v)
	if name == "" {
		name = "schema." + componentName(strings.TrimSuffix(filepath.Base(abs), filepath.Ext(abs)))
	}
	name = b.unique(name)
	b.byFile[u.String()] = name
	b.comps.set(name, root)
	d, _ := draftOf(root.str("$schema"))
	b.drafts[name] = d
	b.where[u.String()] = root
	b.index(root, u, d)
	return name, nil
}

// asSchemaObject returns a schema as an object: true is {} and false is
// {"not": {}}, so that every schema can be the target of a $ref.
func asSchemaObject(v any) *object {
	switch v := v.(type) {
	case *object:
		return v
	case bool:
		if !v {
			return newObject().set("not", newObject())
		}
	}
	return newObject()
}

// unique returns name, or name with a number after it if it is taken.
func (b *schemaBundle) unique(name string) string {
	n := name
	for i := 2; b.used[n]; i++ {
		n = name + "-" + strconv.Itoa(i)
	}
	b.used[n] = true
	return n
}

// index walks a schema: it records the resources ($id) and anchors it
// declares and the $refs to resolve.
func (b *schemaBundle) index(root *object, base *url.URL, d draft) {
	idKey := "$id"
	if d == draft4 {
		idKey = "id"
	}
	walkSchema(root, base, func(s *object, base *url.URL) *url.URL {
		if id := s.str(idKey); id != "" {
			if u, err := url.Parse(id); err == nil {
				if d < draft2019 && strings.HasPrefix(id, "#") {
					// An anchor, before drafts had $anchor.
					b.anchors[base.String()+id] = s
				} else {
					base = base.ResolveReference(u)
					base.Fragment, base.RawFragment = "", ""
					b.where[base.String()] = s
				}
			}
		}
		for _, k := range []string{"$anchor", "$dynamicAnchor"} {
			if a := s.str(k); a != "" {
				b.anchors[base.String()+"#"+a] = s
			}
		}
		if s.str("$ref") != "" {
			b.refs = append(b.refs, refSite{schema: s, base: base})
		}
		return base
	})
}

// resolve rewrites every $ref that leads into the bundle, loading the
// files they name, and rewrites the schemas in draft 2020-12 terms.
func (b *schemaBundle) resolve() error {
	for i := 0; i < len(b.refs); i++ { // loading a file adds refs
		site := &b.refs[i]
		raw := site.schema.str("$ref")
		ref, err := url.Parse(raw)
		if err != nil {
			continue // not a URI: left as it is
		}
		target := site.base.ResolveReference(ref)
		frag := target.Fragment
		target.Fragment, target.RawFragment = "", ""
		res, ok := b.where[target.String()]
		if !ok && target.Scheme == "file" {
			if _, err := b.load(filepath.FromSlash(target.Path), ""); err != nil {
				return fmt.Errorf("$ref %q: %w", raw, err)
			}
			res, ok = b.where[target.String()]
		}
		if !ok {
			continue
		}
		if frag == "" || strings.HasPrefix(frag, "/") {
			site.target, err = pointTo(res, frag)
			if err != nil {
				return fmt.Errorf("$ref %q: %w", raw, err)
			}
		} else if site.target = b.anchors[target.String()+"#"+frag]; site.target == nil {
			return fmt.Errorf("$ref %q: no anchor %q", raw, frag)
		}
	}
	for _, name := range b.comps.keys {
		upgradeSchema(b.comps.obj(name), b.drafts[name])
	}
	places := map[*object]string{}
	for _, name := range b.comps.keys {
		locate(b.comps.get(name), "/components/schemas/"+escapePointerToken(name), places)
	}
	for _, site := range b.refs {
		if site.target == nil {
			continue
		}
		place, ok := places[site.target]
		if !ok {
			return fmt.Errorf("$ref %q: its target is lost in the document", site.schema.str("$ref"))
		}
		u := url.URL{Fragment: place}
		site.schema.set("$ref", u.String())
	}
	return nil
}

// pointTo follows a JSON pointer from v to an object, turning a boolean
// schema it ends on into an object in place.
func pointTo(v *object, ptr string) (*object, error) {
	if ptr == "" {
		return v, nil
	}
	var cur any = v
	toks := strings.Split(ptr[1:], "/")
	for i, tok := range toks {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		last := i == len(toks)-1
		switch c := cur.(type) {
		case *object:
			if !c.has(tok) {
				return nil, fmt.Errorf("no %q at %s", tok, ptr)
			}
			if _, isBool := c.get(tok).(bool); isBool && last {
				c.set(tok, asSchemaObject(c.get(tok)))
			}
			cur = c.get(tok)
		case []any:
			n, err := strconv.Atoi(tok)
			if err != nil || n < 0 || n >= len(c) {
				return nil, fmt.Errorf("no %q at %s", tok, ptr)
			}
			if _, isBool := c[n].(bool); isBool && last {
				c[n] = asSchemaObject(c[n])
			}
			cur = c[n]
		default:
			return nil, fmt.Errorf("no %q at %s", tok, ptr)
		}
	}
	o, ok := cur.(*object)
	if !ok {
		return nil, fmt.Errorf("%s is not a schema", ptr)
	}
	return o, nil
}

// locate records the JSON pointer of every object within v.
func locate(v any, ptr string, places map[*object]string) {
	switch v := v.(type) {
	case *object:
		if _, seen := places[v]; !seen {
			places[v] = ptr
		}
		for _, k := range v.keys {
			locate(v.get(k), ptr+"/"+escapePointerToken(k), places)
		}
	case []any:
		for i, x := range v {
			locate(x, ptr+"/"+strconv.Itoa(i), places)
		}
	}
}

// upgradeSchema rewrites a schema written in draft d in draft 2020-12
// terms, with the same meaning, and drops the keywords that only made
// sense in its own file. One difference is left: up to draft 7 the
// keywords beside a $ref are ignored, and in the document they apply.
func upgradeSchema(root *object, d draft) {
	walkSchema(root, struct{}{}, func(s *object, _ struct{}) struct{} {
		if d <= draft2019 {
			if items, ok := s.get("items").([]any); ok {
				s.del("items")
				s.set("prefixItems", items)
				if s.has("additionalItems") {
					s.set("items", s.get("additionalItems"))
				}
			}
			s.del("additionalItems")
		}
		if d <= draft7 {
			if defs := s.obj("definitions"); defs != nil {
				s.del("definitions")
				if s.obj("$defs") == nil {
					s.set("$defs", newObject())
				}
				for _, k := range defs.keys {
					if !s.obj("$defs").has(k) {
						s.obj("$defs").set(k, defs.get(k))
					}
				}
			}
			if deps := s.obj("dependencies"); deps != nil {
				s.del("dependencies")
				for _, k := range deps.keys {
					kw := "dependentSchemas"
					if _, names := deps.get(k).([]any); names {
						kw = "dependentRequired"
					}
					if s.obj(kw) == nil {
						s.set(kw, newObject())
					}
					s.obj(kw).set(k, deps.get(k))
				}
			}
		}
		if d == draft4 {
			for _, bound := range []string{"minimum", "maximum"} {
				ex := "exclusive" + strings.ToUpper(bound[:1]) + bound[1:]
				if on, ok := s.get(ex).(bool); ok {
					s.del(ex)
					if on && s.has(bound) {
						s.set(ex, s.get(bound))
						s.del(bound)
					}
				}
			}
			if id, ok := s.get("id").(string); ok && id != "" {
				s.del("id")
			}
		}
		s.del("$id")
		s.del("$anchor")
		if _, known := draftOf(s.str("$schema")); known {
			s.del("$schema")
		}
		return struct{}{}
	})
}

func escapePointerToken(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

// componentName makes s a valid component name: letters, digits, '.',
// '-' and '_'.
func componentName(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
	if s == "" {
		return "_"
	}
	return s
}

// fileURL is the file: URL of an absolute path.
func fileURL(abs string) *url.URL {
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows drive letter
	}
	return &url.URL{Scheme: "file", Path: p}
}

// Keywords whose values are schemas, arrays of schemas, or objects whose
// member values are schemas (drafts 4 to 2020-12). Other keywords hold
// data (enum, const, default, examples) that is never rewritten.
var (
	schemaKeywords = []string{
		"items", "additionalItems", "additionalProperties", "not", "if", "then", "else",
		"contains", "propertyNames", "unevaluatedItems", "unevaluatedProperties", "contentSchema",
	}
	schemaArrayKeywords = []string{"allOf", "anyOf", "oneOf", "prefixItems", "items"}
	schemaMapKeywords   = []string{"properties", "patternProperties", "$defs", "definitions", "dependentSchemas", "dependencies"}
)

// walkSchema calls visit on every schema object within s, parents first,
// with the context its parent's visit returned (ctx for s); visit returns
// the context of the schema's own subschemas. Subschemas are listed before
// visit runs, so that visit may move them.
func walkSchema[C any](s *object, ctx C, visit func(s *object, ctx C) C) {
	var subs []*object
	for _, k := range schemaKeywords {
		if x := s.obj(k); x != nil {
			subs = append(subs, x)
		}
	}
	for _, k := range schemaArrayKeywords {
		if a, ok := s.get(k).([]any); ok {
			for _, x := range a {
				if o, ok := x.(*object); ok {
					subs = append(subs, o)
				}
			}
		}
	}
	for _, k := range schemaMapKeywords {
		if m := s.obj(k); m != nil {
			for _, name := range m.keys {
				if o := m.obj(name); o != nil {
					subs = append(subs, o)
				}
			}
		}
	}
	ctx = visit(s, ctx)
	for _, sub := range subs {
		walkSchema(sub, ctx, visit)
	}
}
