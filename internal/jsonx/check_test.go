package jsonx

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"
)

func TestCheckAccepts(t *testing.T) {
	t.Parallel()
	many := manyMembers(40, "")
	for _, doc := range []string{
		`{}`, `[]`, `""`, `0`, `-0.5e+10`, `true`, `false`, `null`, " \t\r\n[ ] \n",
		`{"a":[1,{"b":null}],"c":"caf\u00e9 \ud83d\ude00 \"q\" \\ \/ \b\f\n\r\t"}`,
		"{\"note\":\"café ☕ \U0001F600\"}",
		`{"a":1,"A":2,"a ":3,"\u0061b":4}`,
		`{"a":{"a":1},"b":{"a":2}}`,
		`[{"sku":"x"},{"sku":"x"}]`,
		`{"x":{"y":1,"z":{"y":2}},"y":3}`,
		`{"\ufffd":1,"\uFFFE":2}`,
		many,
		strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth),
	} {
		if err := Check([]byte(doc)); err != nil {
			t.Errorf("Check(%.60q) = %v, want nil", doc, err)
		}
	}
}

// manyMembers is an object of n members named m0, m1, … followed by
// extra (which starts with a comma when not empty).
func manyMembers(n int, extra string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"m%d":%d`, i, i)
	}
	b.WriteString(extra)
	b.WriteByte('}')
	return b.String()
}

func TestCheckRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  string
		want Error
	}{
		// Member names given twice, at any depth.
		{"duplicate", `{"quantity":5000,"quantity":1}`, Error{Kind: Duplicate, Offset: 17, Pointer: "/quantity"}},
		{"duplicate in an array", `{"items":[{"sku":"x"},{"sku":"y","sku":"z"}]}`, Error{Kind: Duplicate, Offset: 33, Pointer: "/items/1/sku"}},
		{"duplicate deep", `[0,[1,{"a":{"b":{"c":1,"c":2}}}]]`, Error{Kind: Duplicate, Offset: 23, Pointer: "/1/1/a/b/c"}},
		{"duplicate by escape", `{"a":1,"\u0061":2}`, Error{Kind: Duplicate, Offset: 7, Pointer: "/a"}},
		{"duplicate by escapes on both", `{"\u00e9":1,"\u00E9":2}`, Error{Kind: Duplicate, Offset: 12, Pointer: "/é"}},
		{"duplicate of raw and escaped UTF-8", "{\"é\":1,\"\\u00e9\":2}", Error{Kind: Duplicate, Offset: 8, Pointer: "/é"}},
		{"duplicate by a surrogate pair", "{\"\U0001F600\":1,\"\\ud83d\\ude00\":2}", Error{Kind: Duplicate, Offset: 10, Pointer: "/\U0001F600"}},
		{"duplicate pointer escaped", `{"a/b~":1,"a/b~":2}`, Error{Kind: Duplicate, Offset: 10, Pointer: "/a~1b~0"}},
		{"duplicate empty name", `{"":1,"":2}`, Error{Kind: Duplicate, Offset: 6, Pointer: "/"}},
		{"duplicate of an object member", `{"x":{"y":1},"x":2}`, Error{Kind: Duplicate, Offset: 13, Pointer: "/x"}},
		{"duplicate inside a member's value", `{"p":{"q":1,"q":2},"r":3}`, Error{Kind: Duplicate, Offset: 12, Pointer: "/p/q"}},
		{"duplicate in many members", manyMembers(40, `,"m7":0,"m3":0`), Error{Kind: Duplicate, Offset: 341, Pointer: "/m7"}},
		{"duplicate in many members, inside", `{"o":` + manyMembers(20, `,"m19":0`) + `}`, Error{Kind: Duplicate, Offset: 166, Pointer: "/o/m19"}},

		// Text that is not UTF-8, or escapes that are no character.
		{"invalid UTF-8 in a value", "{\"note\":\"caf\xe9\"}", Error{Kind: InvalidUTF8, Offset: 12, Pointer: "/note"}},
		{"invalid UTF-8 in a name", "{\"a\":1,\"n\xffe\":1}", Error{Kind: InvalidUTF8, Offset: 9, InName: true}},
		{"invalid UTF-8 in a nested name", "{\"a\":[{\"n\xffe\":1}]}", Error{Kind: InvalidUTF8, Offset: 9, Pointer: "/a/0", InName: true}},
		{"invalid UTF-8 in an array", "{\"a\":[1,\"\xc3\"]}", Error{Kind: InvalidUTF8, Offset: 9, Pointer: "/a/1"}},
		{"invalid UTF-8 at the top", "\"\xc0\xaf\"", Error{Kind: InvalidUTF8, Offset: 1}},
		{"UTF-8 of a surrogate", "[\"\xed\xa0\x80\"]", Error{Kind: InvalidUTF8, Offset: 2, Pointer: "/0"}},
		{"cut UTF-8", "[\"\xe2\x98\"]", Error{Kind: InvalidUTF8, Offset: 2, Pointer: "/0"}},
		{"lone high surrogate", `{"a":"x\ud800"}`, Error{Kind: Surrogate, Offset: 7, Pointer: "/a"}},
		{"lone low surrogate", `["\udc00"]`, Error{Kind: Surrogate, Offset: 2, Pointer: "/0"}},
		{"high surrogate then a letter", `["\ud800\u0041"]`, Error{Kind: Surrogate, Offset: 2, Pointer: "/0"}},
		{"two high surrogates", `["\ud800\ud800"]`, Error{Kind: Surrogate, Offset: 2, Pointer: "/0"}},
		{"surrogate in a name", `{"\udfff":1}`, Error{Kind: Surrogate, Offset: 2, InName: true}},

		// Not JSON.
		{"empty", ``, Error{Kind: Syntax, Offset: 0}},
		{"white space", " \n", Error{Kind: Syntax, Offset: 2}},
		{"trailing comma", `{"a":1,}`, Error{Kind: Syntax, Offset: 7}},
		{"trailing comma in an array", `[1,]`, Error{Kind: Syntax, Offset: 3}},
		{"missing colon", `{"a" 1}`, Error{Kind: Syntax, Offset: 5}},
		{"name not a string", `{a:1}`, Error{Kind: Syntax, Offset: 1}},
		{"leading zero", `01`, Error{Kind: Syntax, Offset: 1}},
		{"bare point", `1.`, Error{Kind: Syntax, Offset: 2}},
		{"bare minus", `-`, Error{Kind: Syntax, Offset: 1}},
		{"bare exponent", `1e+`, Error{Kind: Syntax, Offset: 3}},
		{"cut literal", `tru`, Error{Kind: Syntax, Offset: 3}},
		{"unterminated string", `"abc`, Error{Kind: Syntax, Offset: 4}},
		{"control character", "\"a\tb\"", Error{Kind: Syntax, Offset: 2}},
		{"bad escape", `"\x"`, Error{Kind: Syntax, Offset: 2}},
		{"bad unicode escape", `"\u12g4"`, Error{Kind: Syntax, Offset: 5}},
		{"two values", `{} {}`, Error{Kind: Syntax, Offset: 3}},
		{"mismatched close", `[1}`, Error{Kind: Syntax, Offset: 2}},
		{"unclosed", `[[1]`, Error{Kind: Syntax, Offset: 4}},
		{"byte order mark", "\ufeff{}", Error{Kind: Syntax, Offset: 0}},
		{"too deep", strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1), Error{Kind: Syntax, Offset: maxDepth}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check([]byte(tt.doc))
			var got *Error
			if !errors.As(err, &got) {
				t.Fatalf("Check(%q) = %v, want %+v", tt.doc, err, tt.want)
			}
			if *got != tt.want {
				t.Errorf("Check(%q) = %+v, want %+v", tt.doc, *got, tt.want)
			}
			if got.Error() == "" || strings.Contains(got.Error(), "\n") {
				t.Errorf("Error() = %q, want one line", got.Error())
			}
			if valid := json.Valid([]byte(tt.doc)); valid == (tt.want.Kind == Syntax) {
				t.Errorf("json.Valid(%q) = %v: the case is in the wrong group", tt.doc, valid)
			}
		})
	}
}

// TestCheckAllocates: a document Check accepts costs no allocation, and
// neither does one with many members or deep nesting once the checker's
// stacks have grown.
func TestCheckAllocates(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops checkers at random")
	}
	for _, doc := range [][]byte{benchOrder, benchLarge(), []byte(manyMembers(200, "")), []byte(`{"\u00e9":{"a":[{"\u00e8":1}]}}`)} {
		if err := Check(doc); err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(100, func() { _ = Check(doc) }); n != 0 {
			t.Errorf("Check(%.40q…) allocates %v times, want 0", doc, n)
		}
	}
}

// FuzzCheck compares Check with json.Valid, which decides what is
// well-formed, and with a plain recursive reader that lists what makes a
// well-formed document mean two things.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		`{"quantity":5000,"quantity":1}`, `{"a":{"b":[1,{"c":"d","c":"e"}]}}`, `{"a":1,"\u0061":2}`,
		"{\"note\":\"caf\xe9\"}", "{\"n\xffe\":1}", `["\ud800"]`, `["\ud83d\ude00"]`, `["\udc00\ud800"]`,
		`{"a":[1,2,{"x":null,"y":true,"z":false}],"b":-1.5e3}`, manyMembers(20, `,"m3":1`), `[1,]`, `{"a" 1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		err := Check(doc)
		var e *Error
		if err != nil && !errors.As(err, &e) {
			t.Fatalf("Check(%q) = %v, not an *Error", doc, err)
		}
		if e != nil && (e.Offset < 0 || e.Offset > len(doc)) {
			t.Fatalf("Check(%q): offset %d outside the document", doc, e.Offset)
		}
		if !json.Valid(doc) {
			if err == nil {
				t.Fatalf("Check(%q) = nil, but json.Valid refuses it", doc)
			}
			return
		}
		o := &oracle{doc: doc}
		if !o.read() {
			t.Fatalf("the oracle cannot read %q, which json.Valid accepts", doc)
		}
		switch {
		case e == nil && (o.invalidUTF8 || o.surrogate || o.duplicate):
			t.Fatalf("Check(%q) = nil, want a refusal (UTF-8 %v, surrogate %v, duplicate %v)", doc, o.invalidUTF8, o.surrogate, o.duplicate)
		case e == nil:
		case e.Kind == Syntax:
			t.Fatalf("Check(%q) = %v, but json.Valid accepts it", doc, e)
		case e.Kind == InvalidUTF8 && !o.invalidUTF8, e.Kind == Surrogate && !o.surrogate, e.Kind == Duplicate && !o.duplicate:
			t.Fatalf("Check(%q) = %v, which the oracle does not see", doc, e)
		}
	})
}

// oracle reads a well-formed document the simplest way, decoding every
// string and keeping each object's names in a map, and notes what Check
// must refuse.
type oracle struct {
	doc                               []byte
	i, depth                          int
	invalidUTF8, surrogate, duplicate bool
}

func (o *oracle) read() bool {
	o.space()
	if !o.value() {
		return false
	}
	o.space()
	return o.i == len(o.doc)
}

func (o *oracle) space() {
	for o.i < len(o.doc) && strings.IndexByte(" \t\r\n", o.doc[o.i]) >= 0 {
		o.i++
	}
}

func (o *oracle) value() bool {
	if o.i >= len(o.doc) {
		return false
	}
	switch o.doc[o.i] {
	case '{':
		o.i++
		names := map[string]bool{}
		o.space()
		if o.i < len(o.doc) && o.doc[o.i] == '}' {
			o.i++
			return true
		}
		for {
			o.space()
			s, ok := o.str()
			if !ok {
				return false
			}
			if names[s] {
				o.duplicate = true
			}
			names[s] = true
			o.space()
			if o.i >= len(o.doc) || o.doc[o.i] != ':' {
				return false
			}
			o.i++
			o.space()
			if !o.value() {
				return false
			}
			o.space()
			if o.i < len(o.doc) && o.doc[o.i] == ',' {
				o.i++
				continue
			}
			if o.i < len(o.doc) && o.doc[o.i] == '}' {
				o.i++
				return true
			}
			return false
		}
	case '[':
		o.i++
		o.space()
		if o.i < len(o.doc) && o.doc[o.i] == ']' {
			o.i++
			return true
		}
		for {
			o.space()
			if !o.value() {
				return false
			}
			o.space()
			if o.i < len(o.doc) && o.doc[o.i] == ',' {
				o.i++
				continue
			}
			if o.i < len(o.doc) && o.doc[o.i] == ']' {
				o.i++
				return true
			}
			return false
		}
	case '"':
		_, ok := o.str()
		return ok
	}
	// A number or a literal: json.Valid has judged it; skip to the next
	// delimiter.
	for o.i < len(o.doc) && strings.IndexByte(",]} \t\r\n", o.doc[o.i]) < 0 {
		o.i++
	}
	return true
}

// str decodes a string, noting bytes that are not UTF-8 and unpaired
// surrogates (decoded as U+FFFD).
func (o *oracle) str() (string, bool) {
	if o.i >= len(o.doc) || o.doc[o.i] != '"' {
		return "", false
	}
	o.i++
	var units []uint16
	var out []rune
	flush := func() {
		for k := 0; k < len(units); k++ {
			r := rune(units[k])
			if r >= 0xd800 && r <= 0xdbff && k+1 < len(units) && units[k+1] >= 0xdc00 && units[k+1] <= 0xdfff {
				k++
				continue
			}
			o.surrogate = o.surrogate || utf16.IsSurrogate(r)
		}
		out = append(out, utf16.Decode(units)...)
		units = nil
	}
	for o.i < len(o.doc) {
		ch := o.doc[o.i]
		switch {
		case ch == '"':
			o.i++
			flush()
			return string(out), true
		case ch == '\\' && o.i+1 < len(o.doc) && o.doc[o.i+1] == 'u' && o.i+6 <= len(o.doc):
			n, err := strconv.ParseUint(string(o.doc[o.i+2:o.i+6]), 16, 16)
			if err != nil {
				return "", false
			}
			units = append(units, uint16(n))
			o.i += 6
		case ch == '\\' && o.i+1 < len(o.doc):
			flush()
			out = append(out, map[byte]rune{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}[o.doc[o.i+1]])
			o.i += 2
		default:
			flush()
			r, size := utf8.DecodeRune(o.doc[o.i:])
			if r == utf8.RuneError && size == 1 {
				o.invalidUTF8 = true
			}
			out = append(out, r)
			o.i += size
		}
	}
	return "", false
}

// benchOrder is a typical small request body.
var benchOrder = []byte(`{"sku":"A-1042","quantity":3,"note":"leave at the door"}`)

// benchLarge is a 4 KB body of nested objects and arrays, some text
// outside ASCII and some escapes.
func benchLarge() []byte {
	var b strings.Builder
	b.WriteString(`{"customer":{"id":"c-42","name":"Zoë Ünal","email":"zoe@example.com"},"items":[`)
	for i := range 24 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"sku":"A-%04d","quantity":%d,"price":%d.99,"note":"gift \u2014 wrap \"nicely\"","tags":["x","y"]}`, i, i+1, i*3)
	}
	b.WriteString(`],"total":1234.5}`)
	return []byte(b.String())
}

// BenchmarkCheck measures Check against json.Valid, its baseline, on the
// same documents in the same run:
//
//	go test -run '^$' -bench 'BenchmarkCheck' -benchmem ./internal/jsonx
func BenchmarkCheck(b *testing.B) {
	for _, doc := range []struct {
		name string
		body []byte
	}{{"order", benchOrder}, {"4KB", benchLarge()}} {
		b.Run(doc.name+"/json.Valid", func(b *testing.B) {
			b.SetBytes(int64(len(doc.body)))
			b.ReportAllocs()
			for b.Loop() {
				if !json.Valid(doc.body) {
					b.Fatal("invalid")
				}
			}
		})
		b.Run(doc.name+"/Check", func(b *testing.B) {
			b.SetBytes(int64(len(doc.body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := Check(doc.body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
