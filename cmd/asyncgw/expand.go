package main

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// expanded is a string value of the file that took a variable's value.
type expanded struct {
	key      string // such as routes[0].headers.Authorization
	original string // as written, such as "Bearer ${ORDERS_TOKEN}"
	value    string // with the variables' values
}

// expandEnv replaces ${VAR} in every string value of fc (not in keys) by
// the variable's value, from getenv, and $${ by a literal ${. Keys in skip
// (set by an ASYNCGW_ variable) are left as they are. A variable that is
// not set, or empty, is an error naming it and the key.
func expandEnv(fc *fileConfig, getenv func(string) string, skip map[string]string) ([]expanded, error) {
	var out []expanded
	var walk func(v reflect.Value, at string) error
	walk = func(v reflect.Value, at string) error {
		switch v.Kind() {
		case reflect.Pointer:
			if !v.IsNil() {
				return walk(v.Elem(), at)
			}
		case reflect.Struct:
			for i := range v.NumField() {
				if name := yamlName(v.Type().Field(i)); name != "" {
					if err := walk(v.Field(i), joinKey(at, name)); err != nil {
						return err
					}
				}
			}
		case reflect.Slice:
			for i := range v.Len() {
				if err := walk(v.Index(i), fmt.Sprintf("%s[%d]", at, i)); err != nil {
					return err
				}
			}
		case reflect.Map:
			if v.Type().Key().Kind() != reflect.String {
				return nil
			}
			keys := v.MapKeys()
			slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
			for _, k := range keys {
				// Map values cannot be set in place: work on a copy.
				e := reflect.New(v.Type().Elem()).Elem()
				e.Set(v.MapIndex(k))
				if err := walk(e, joinKey(at, k.String())); err != nil {
					return err
				}
				v.SetMapIndex(k, e)
			}
		case reflect.String:
			if _, ok := skip[at]; ok {
				return nil
			}
			s, err := expandString(v.String(), getenv)
			if err != nil {
				return fmt.Errorf("%s: %w", at, err)
			}
			if s != v.String() {
				out = append(out, expanded{key: at, original: v.String(), value: s})
				v.SetString(s)
			}
		}
		return nil
	}
	if err := walk(reflect.ValueOf(fc).Elem(), ""); err != nil {
		return nil, err
	}
	return out, nil
}

// expandString replaces ${NAME} in s by getenv(NAME), and $${ by ${.
// Any other $ is kept.
func expandString(s string, getenv func(string) string) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return "", errors.New("${ without a closing }: write ${NAME}, or $${ for a literal ${")
			}
			name := s[i+2 : i+end]
			if !varName(name) {
				return "", fmt.Errorf("%q is not a variable reference: write ${NAME} (letters, digits and _), or $${ for a literal ${", s[i:i+end+1])
			}
			v := getenv(name)
			if v == "" {
				return "", fmt.Errorf("environment variable %s is not set", name)
			}
			b.WriteString(v)
			i += end + 1
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String(), nil
}

// varName reports whether s is an environment variable's name: a letter
// or _, then letters, digits and _.
func varName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, c := range []byte(s) {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// redact returns err without the values of ex: where a message quotes a
// value that took a variable's value, it quotes the value as written, so
// that a secret never reaches a log. (The error it returns does not wrap
// err, which still holds the values.)
func redact(err error, ex []expanded) error {
	msg := err.Error()
	for _, x := range ex {
		msg = strings.ReplaceAll(msg, strconv.Quote(x.value), strconv.Quote(x.original))
	}
	if msg == err.Error() {
		return err
	}
	return errors.New(msg)
}
