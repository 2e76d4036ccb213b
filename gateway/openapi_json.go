package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// object is a JSON object that keeps the order of its members, so that the
// OpenAPI document the gateway generates reads in the order the fixed part
// and the operator's schemas were written. Its values are *object, []any,
// string, json.Number, bool or nil, as parseJSON makes them.
type object struct {
	keys []string
	vals map[string]any
}

func newObject() *object { return &object{vals: map[string]any{}} }

// get returns the member's value, nil when absent.
func (o *object) get(k string) any { return o.vals[k] }

// obj returns the member's value if it is an object, else nil.
func (o *object) obj(k string) *object {
	v, _ := o.vals[k].(*object)
	return v
}

// str returns the member's value if it is a string, else "".
func (o *object) str(k string) string {
	v, _ := o.vals[k].(string)
	return v
}

// has reports whether the member is present.
func (o *object) has(k string) bool {
	_, ok := o.vals[k]
	return ok
}

// set gives the member a value; a new member goes last.
func (o *object) set(k string, v any) *object {
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
	return o
}

// setBefore adds a new member just before the member before (last if it
// is absent); an existing member only gets the new value.
func (o *object) setBefore(before, k string, v any) {
	if o.has(k) {
		o.vals[k] = v
		return
	}
	o.vals[k] = v
	for i, key := range o.keys {
		if key == before {
			o.keys = append(o.keys[:i], append([]string{k}, o.keys[i:]...)...)
			return
		}
	}
	o.keys = append(o.keys, k)
}

// del removes the member.
func (o *object) del(k string) {
	if _, ok := o.vals[k]; !ok {
		return
	}
	delete(o.vals, k)
	for i, key := range o.keys {
		if key == k {
			o.keys = append(o.keys[:i], o.keys[i+1:]...)
			return
		}
	}
}

// clone copies a JSON value deeply.
func clone(v any) any {
	switch v := v.(type) {
	case *object:
		c := &object{keys: append([]string(nil), v.keys...), vals: make(map[string]any, len(v.vals))}
		for k, x := range v.vals {
			c.vals[k] = clone(x)
		}
		return c
	case []any:
		c := make([]any, len(v))
		for i, x := range v {
			c[i] = clone(x)
		}
		return c
	}
	return v
}

// MarshalJSON writes the members in order.
func (o *object) MarshalJSON() ([]byte, error) { return appendJSON(nil, o) }

// parseJSON reads one JSON value: objects as *object, numbers as
// json.Number. A member given twice keeps its first place and its last
// value.
func parseJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := parseValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("data after the JSON value at offset %d", dec.InputOffset())
	}
	return v, nil
}

func parseValue(dec *json.Decoder) (any, error) {
	t, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t {
	case json.Delim('{'):
		o := newObject()
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := parseValue(dec)
			if err != nil {
				return nil, err
			}
			o.set(k.(string), v)
		}
		_, err := dec.Token() // '}'
		return o, err
	case json.Delim('['):
		a := []any{}
		for dec.More() {
			v, err := parseValue(dec)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err := dec.Token() // ']'
		return a, err
	}
	return t, nil
}

// appendJSON writes v compactly, without escaping HTML characters (the
// document is JSON for tools, not HTML).
func appendJSON(b []byte, v any) ([]byte, error) {
	w := &jsonWriter{buf: bytes.NewBuffer(b)}
	w.enc = json.NewEncoder(w.buf)
	w.enc.SetEscapeHTML(false)
	if err := w.write(v); err != nil {
		return nil, err
	}
	return w.buf.Bytes(), nil
}

// jsonWriter writes JSON values with one encoder for all the scalars.
type jsonWriter struct {
	buf *bytes.Buffer
	enc *json.Encoder
}

func (w *jsonWriter) write(v any) error {
	switch v := v.(type) {
	case *object:
		w.buf.WriteByte('{')
		for i, k := range v.keys {
			if i > 0 {
				w.buf.WriteByte(',')
			}
			if err := w.write(k); err != nil {
				return err
			}
			w.buf.WriteByte(':')
			if err := w.write(v.vals[k]); err != nil {
				return err
			}
		}
		w.buf.WriteByte('}')
		return nil
	case []any:
		w.buf.WriteByte('[')
		for i, x := range v {
			if i > 0 {
				w.buf.WriteByte(',')
			}
			if err := w.write(x); err != nil {
				return err
			}
		}
		w.buf.WriteByte(']')
		return nil
	}
	if err := w.enc.Encode(v); err != nil {
		return err
	}
	w.buf.Truncate(w.buf.Len() - 1) // Encode ends each value with a newline
	return nil
}
