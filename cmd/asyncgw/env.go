package main

// Configuration from the environment, in two ways:
//
//   - ${VAR} in a string value of the file is replaced by the variable's
//     value ($${ is a literal ${), so that secrets need not sit in the file;
//   - ASYNCGW_<KEY PATH> overrides a scalar key (ASYNCGW_WORKER_CONCURRENCY
//     sets worker.concurrency), so that one file serves several processes,
//     and a list of strings tagged env:"list" as values separated by
//     commas (ASYNCGW_REDIS_SENTINEL_ADDRS=a:26379,b:26379).
//
// Both walk fileConfig by reflection, naming keys by their yaml tags: a
// key added to fileConfig is covered without more code.

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// envPrefix starts the name of every variable that overrides a key.
const envPrefix = "ASYNCGW_"

// envKey is a scalar key that an ASYNCGW_ variable overrides.
type envKey struct {
	path  string // such as worker.breaker.open_timeout
	name  string // such as ASYNCGW_WORKER_BREAKER_OPEN_TIMEOUT
	index []int  // the field's index path from fileConfig
}

// envKeys lists the keys that ASYNCGW_ variables override: every string,
// boolean and number of fileConfig outside lists and mappings (routes,
// tenants, queues), whose entries are named by the user and not by asyncgw,
// and the lists of strings tagged env:"list".
func envKeys() []envKey {
	var out []envKey
	var walk func(t reflect.Type, at string, index []int)
	walk = func(t reflect.Type, at string, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			name := yamlName(f)
			if name == "" {
				continue
			}
			path := joinKey(at, name)
			idx := append(slices.Clone(index), i)
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch {
			case ft.Kind() == reflect.Struct:
				walk(ft, path, idx)
			case scalarKind(ft.Kind()), commaList(f):
				out = append(out, envKey{path: path, name: envName(path), index: idx})
			}
		}
	}
	walk(reflect.TypeFor[fileConfig](), "", nil)
	return out
}

// envName is the variable that overrides the key at path:
// worker.concurrency → ASYNCGW_WORKER_CONCURRENCY.
func envName(path string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// applyEnv sets the keys of fc whose ASYNCGW_ variables are set (an empty
// one counts as unset) and returns them, by key path. A value that is not
// of the key's type is an error naming the variable.
func applyEnv(fc *fileConfig, getenv func(string) string) (map[string]string, error) {
	set := map[string]string{}
	for _, k := range envKeys() {
		s := getenv(k.name)
		if s == "" {
			continue
		}
		if err := setScalar(fieldAlloc(reflect.ValueOf(fc).Elem(), k.index), s); err != nil {
			return nil, &envError{name: k.name, key: k.path, err: err}
		}
		set[k.path] = k.name
	}
	return set, nil
}

// envError is a bad value of the key key, set by the variable name.
type envError struct {
	name, key string
	err       error
}

func (e *envError) Error() string { return fmt.Sprintf("%s (%s): %v", e.name, e.key, e.err) }
func (e *envError) Unwrap() error { return e.err }

// nameEnv makes err, which resolve returned, name the variable that set
// the key it is about, if a variable did (set is what applyEnv returned).
func nameEnv(err error, set map[string]string) error {
	msg := err.Error()
	for key, name := range set {
		rest, ok := strings.CutPrefix(msg, key)
		if !ok {
			continue
		}
		// An entry of a list the variable set: redis.cluster.addrs[1]: ...
		if i, after, found := strings.Cut(rest, "]"); found && strings.HasPrefix(rest, "[") {
			key, rest = key+i+"]", after
		}
		if strings.HasPrefix(rest, ":") || strings.HasPrefix(rest, " ") {
			return &envError{name: name, key: key, err: errors.New(strings.TrimPrefix(strings.TrimPrefix(rest, ":"), " "))}
		}
	}
	return err
}

// commaList reports whether f is a list of strings that a variable sets
// as values separated by commas.
func commaList(f reflect.StructField) bool {
	return f.Type == reflect.TypeFor[[]string]() && f.Tag.Get("env") == "list"
}

// setScalar parses s into v, a string, boolean or number, or a list of
// strings separated by commas.
func setScalar(v reflect.Value, s string) error {
	switch k := v.Kind(); {
	case v.Type() == reflect.TypeFor[[]string]():
		var list []string
		for _, e := range strings.Split(s, ",") {
			if e = strings.TrimSpace(e); e != "" {
				list = append(list, e)
			}
		}
		v.Set(reflect.ValueOf(list))
	case k == reflect.String:
		v.SetString(s)
	case k == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("must be true or false, not %q", s)
		}
		v.SetBool(b)
	case v.CanInt():
		n, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("must be an integer, not %q", s)
		}
		v.SetInt(n)
	case v.CanUint():
		n, err := strconv.ParseUint(s, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("must be a positive integer, not %q", s)
		}
		v.SetUint(n)
	case v.CanFloat():
		f, err := strconv.ParseFloat(s, v.Type().Bits())
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("must be a number, not %q", s)
		}
		v.SetFloat(f)
	default:
		return fmt.Errorf("cannot be set from the environment (%s)", v.Type())
	}
	return nil
}

// scalarKind reports whether a key of kind k is a scalar that a variable
// can set.
func scalarKind(k reflect.Kind) bool {
	switch k {
	case reflect.String, reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// fieldAlloc is v.FieldByIndex(index), allocating the structs that nil
// pointers on the way stand for.
func fieldAlloc(v reflect.Value, index []int) reflect.Value {
	for _, i := range index {
		if v.Kind() == reflect.Pointer {
			if v.IsNil() {
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(i)
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		v = v.Elem()
	}
	return v
}

// yamlName is the key of the struct field f in the file ("" for none).
func yamlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	switch name {
	case "-":
		return ""
	case "":
		return strings.ToLower(f.Name) // as the YAML decoder names it
	}
	return name
}

// joinKey is the path of key under the path at.
func joinKey(at, key string) string {
	if at == "" {
		return key
	}
	return at + "." + key
}
