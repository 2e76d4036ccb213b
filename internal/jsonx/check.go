package jsonx

import (
	"bytes"
	"hash/maphash"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// maxDepth is how deeply arrays and objects may nest: encoding/json's own
// limit, so that Check and json.Valid agree on what is well-formed.
const maxDepth = 10000

// Kind says what Check found wrong with a document.
type Kind uint8

// What Check refuses.
const (
	// Syntax: the document is not one well-formed JSON value.
	Syntax Kind = iota + 1
	// InvalidUTF8: a string or member name holds bytes that are not
	// UTF-8 (encoding/json would read U+FFFD in their place, other parsers
	// the bytes as they are, or nothing at all).
	InvalidUTF8
	// Surrogate: a \u escape of one half of a UTF-16 surrogate pair
	// without the other half, which stands for no character.
	Surrogate
	// Duplicate: an object names a member twice (some parsers keep the
	// first value, others the last).
	Duplicate
)

// Error is why Check refused a document.
type Error struct {
	Kind Kind
	// Offset is where the fault starts, counted in bytes from 0: the
	// first bad byte (Syntax, InvalidUTF8), the backslash of the escape
	// (Surrogate), or the opening quote of the second name (Duplicate).
	Offset int
	// Pointer is the RFC 6901 JSON pointer of what holds the fault: the
	// member given twice (Duplicate); the string value (InvalidUTF8,
	// Surrogate), or, when InName, the object whose member name it is.
	// Empty for Syntax.
	Pointer string
	// InName reports that the fault is in a member name.
	InName bool
}

// Error describes the fault in one line.
func (e *Error) Error() string {
	var what string
	switch e.Kind {
	case Syntax:
		return "json: syntax error at offset " + strconv.Itoa(e.Offset)
	case InvalidUTF8:
		what = "invalid UTF-8"
	case Surrogate:
		what = "unpaired surrogate escape"
	case Duplicate:
		return "json: member " + strconv.Quote(e.Pointer) + " given more than once (offset " + strconv.Itoa(e.Offset) + ")"
	}
	if e.InName {
		what += " in a member name"
	}
	return "json: " + what + " at offset " + strconv.Itoa(e.Offset) + " (" + strconv.Quote(e.Pointer) + ")"
}

// Check reports whether doc is exactly one JSON value (RFC 8259, with
// white space around it) that every parser reads the same way: all its
// strings and member names are UTF-8 without unpaired surrogate escapes,
// and no object names a member twice (names are compared after their
// escapes are decoded, so "a" and "\u0061" are the same name). These are
// the rules of I-JSON (RFC 7493) that matter for meaning. It returns nil
// or an *Error.
//
// Check reads doc once and allocates nothing unless it fails; it is meant
// for every request body.
func Check(doc []byte) error {
	c := checkers.Get().(*checker)
	e := c.check(doc)
	c.release()
	if e != nil {
		return e
	}
	return nil
}

// checkers keeps checkers, with their stacks, between calls.
var checkers = sync.Pool{New: func() any { return new(checker) }}

// seed keys the hash of member names; it differs from process to
// process, so that no one can choose names that collide.
var seed = maphash.MakeSeed()

// checker is the state of one Check.
type checker struct {
	doc []byte
	// open are the arrays and objects being read, outermost first.
	open []container
	// names are the member names of the open objects, each object's
	// together, in the order of open.
	names []name
	// bufA and bufB hold decoded names while they are compared.
	bufA, bufB []byte
}

// container is an open array or object.
type container struct {
	object bool
	// first is the index in names of the object's first member name (for
	// an array, len(names) when it opened).
	first int
	// index is the position of the current element of an array.
	index int
}

// name is a member name of an open object.
type name struct {
	// start and end delimit the name between its quotes.
	start, end int
	hash       uint64
	// escaped names hold a backslash escape.
	escaped bool
}

// release readies c for the next Check, letting go of stacks grown by an
// unusual document.
func (c *checker) release() {
	c.doc = nil
	if cap(c.open) > 256 {
		c.open = nil
	}
	if cap(c.names) > 4096 {
		c.names = nil
	}
	if cap(c.bufA) > 4096 || cap(c.bufB) > 4096 {
		c.bufA, c.bufB = nil, nil
	}
	c.open, c.names = c.open[:0], c.names[:0]
	checkers.Put(c)
}

// What the reader expects next.
const (
	wantValue = iota
	wantName
	wantMore // a comma or the end of the container, or of the document
)

func (c *checker) check(doc []byte) *Error {
	c.doc = doc
	i := skipSpace(doc, 0)
	state := wantValue
	for {
		switch state {
		case wantValue:
			if i >= len(doc) {
				return syntaxAt(i)
			}
			switch ch := doc[i]; {
			case ch == '{' || ch == '[':
				if len(c.open) >= maxDepth {
					return syntaxAt(i)
				}
				c.open = append(c.open, container{object: ch == '{', first: len(c.names)})
				i = skipSpace(doc, i+1)
				switch {
				case i < len(doc) && (ch == '{' && doc[i] == '}' || ch == '[' && doc[i] == ']'):
					c.open = c.open[:len(c.open)-1]
					i++
					state = wantMore
				case ch == '{':
					state = wantName
				}
			case ch == '"':
				end, _, kind, at := scanString(doc, i)
				if kind != 0 {
					return c.fault(kind, at, false)
				}
				i, state = end, wantMore
			case ch == '-' || ch >= '0' && ch <= '9':
				end, ok := scanNumber(doc, i)
				if !ok {
					return syntaxAt(end)
				}
				i, state = end, wantMore
			default:
				end, ok := scanLiteral(doc, i)
				if !ok {
					return syntaxAt(end)
				}
				i, state = end, wantMore
			}
		case wantName:
			if i >= len(doc) || doc[i] != '"' {
				return syntaxAt(i)
			}
			end, escaped, kind, at := scanString(doc, i)
			if kind != 0 {
				return c.fault(kind, at, true)
			}
			n := name{start: i + 1, end: end - 1, escaped: escaped}
			n.hash = maphash.Bytes(seed, c.decoded(&c.bufA, n))
			c.names = append(c.names, n)
			i = skipSpace(doc, end)
			if i >= len(doc) || doc[i] != ':' {
				return syntaxAt(i)
			}
			i, state = skipSpace(doc, i+1), wantValue
		case wantMore:
			i = skipSpace(doc, i)
			if len(c.open) == 0 {
				if i != len(doc) {
					return syntaxAt(i)
				}
				return nil
			}
			if i >= len(doc) {
				return syntaxAt(i)
			}
			top := &c.open[len(c.open)-1]
			switch doc[i] {
			case ',':
				i = skipSpace(doc, i+1)
				if top.object {
					state = wantName
				} else {
					top.index++
					state = wantValue
				}
			case '}':
				if !top.object {
					return syntaxAt(i)
				}
				if e := c.closeObject(); e != nil {
					return e
				}
				c.open = c.open[:len(c.open)-1]
				i++
			case ']':
				if top.object {
					return syntaxAt(i)
				}
				c.open = c.open[:len(c.open)-1]
				i++
			default:
				return syntaxAt(i)
			}
		}
	}
}

func syntaxAt(i int) *Error { return &Error{Kind: Syntax, Offset: i} }

// fault reports a bad string at offset at: a member name of the innermost
// object (inName), or the value being read.
func (c *checker) fault(kind Kind, at int, inName bool) *Error {
	if kind == Syntax {
		return syntaxAt(at)
	}
	return &Error{Kind: kind, Offset: at, Pointer: c.pointer(len(c.open), !inName, nil), InName: inName}
}

// closeObject checks that the innermost object, whose last member has
// been read, names no member twice, and forgets its names.
func (c *checker) closeObject() *Error {
	top := c.open[len(c.open)-1]
	names := c.names[top.first:]
	var dup *name
	if len(names) <= 16 {
		// Few names: compare each with those before it.
		for j := 1; j < len(names) && dup == nil; j++ {
			for k := range j {
				if names[k].hash == names[j].hash && c.same(names[k], names[j]) {
					dup = &names[j]
					break
				}
			}
		}
	} else {
		// Many names: sort them by hash, so that equal names are next to
		// each other, and keep the repeat that comes first in the document.
		slices.SortFunc(names, func(a, b name) int {
			if a.hash != b.hash {
				if a.hash < b.hash {
					return -1
				}
				return 1
			}
			return a.start - b.start
		})
		for j := 1; j < len(names); j++ {
			for k := j - 1; k >= 0 && names[k].hash == names[j].hash; k-- {
				if c.same(names[k], names[j]) {
					if dup == nil || names[j].start < dup.start {
						dup = &names[j]
					}
					break
				}
			}
		}
	}
	var e *Error
	if dup != nil {
		e = &Error{Kind: Duplicate, Offset: dup.start - 1, Pointer: c.pointer(len(c.open)-1, false, dup)}
	}
	c.names = c.names[:top.first]
	return e
}

// same reports whether two member names are equal once decoded.
func (c *checker) same(a, b name) bool {
	if !a.escaped && !b.escaped {
		return bytes.Equal(c.doc[a.start:a.end], c.doc[b.start:b.end])
	}
	return bytes.Equal(c.decoded(&c.bufA, a), c.decoded(&c.bufB, b))
}

// decoded returns the text of a name: its bytes in the document, or, when
// it has escapes, the name decoded into *buf.
func (c *checker) decoded(buf *[]byte, n name) []byte {
	raw := c.doc[n.start:n.end]
	if !n.escaped {
		return raw
	}
	*buf = appendUnescaped((*buf)[:0], raw)
	return *buf
}

// pointer builds the JSON pointer of the current value of the first depth
// open containers (leaving out the innermost object's current member
// unless withMember), followed by last when it is not nil.
func (c *checker) pointer(depth int, withMember bool, last *name) string {
	var b strings.Builder
	for k := range depth {
		o := c.open[k]
		if !o.object {
			b.WriteByte('/')
			b.WriteString(strconv.Itoa(o.index))
			continue
		}
		if k == len(c.open)-1 && !withMember {
			break
		}
		// The object's current member is the last name read before the
		// next container opened.
		next := len(c.names)
		if k+1 < len(c.open) {
			next = c.open[k+1].first
		}
		if next > o.first {
			c.writeSegment(&b, c.names[next-1])
		}
	}
	if last != nil {
		c.writeSegment(&b, *last)
	}
	return b.String()
}

// writeSegment writes "/" and a member name escaped for a JSON pointer.
func (c *checker) writeSegment(b *strings.Builder, n name) {
	b.WriteByte('/')
	for _, ch := range c.decoded(&c.bufA, n) {
		switch ch {
		case '~':
			b.WriteString("~0")
		case '/':
			b.WriteString("~1")
		default:
			b.WriteByte(ch)
		}
	}
}

func skipSpace(doc []byte, i int) int {
	for i < len(doc) {
		switch doc[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// plain marks the bytes a string holds as they are: printable ASCII but
// the quote and the backslash.
var plain = func() (t [256]bool) {
	for ch := 0x20; ch < 0x80; ch++ {
		t[ch] = ch != '"' && ch != '\\'
	}
	return t
}()

// scanString reads the string whose opening quote is at doc[i]. It
// returns the offset after the closing quote and whether the string has
// escapes, or what is wrong (kind) and where (at).
func scanString(doc []byte, i int) (end int, escaped bool, kind Kind, at int) {
	j := i + 1
	for {
		for j < len(doc) && plain[doc[j]] {
			j++
		}
		if j >= len(doc) {
			return 0, false, Syntax, j
		}
		switch ch := doc[j]; {
		case ch == '"':
			return j + 1, escaped, 0, 0
		case ch == '\\':
			escaped = true
			if j+1 >= len(doc) {
				return 0, false, Syntax, j + 1
			}
			switch doc[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				r, bad := hex4(doc, j+2)
				if bad >= 0 {
					return 0, false, Syntax, bad
				}
				switch {
				case r >= 0xdc00 && r <= 0xdfff:
					return 0, false, Surrogate, j
				case r >= 0xd800 && r <= 0xdbff:
					// A high half must be followed by an escaped low half.
					if j+7 >= len(doc) || doc[j+6] != '\\' || doc[j+7] != 'u' {
						return 0, false, Surrogate, j
					}
					lo, bad := hex4(doc, j+8)
					if bad >= 0 {
						return 0, false, Syntax, bad
					}
					if lo < 0xdc00 || lo > 0xdfff {
						return 0, false, Surrogate, j
					}
					j += 12
				default:
					j += 6
				}
			default:
				return 0, false, Syntax, j + 1
			}
		case ch < 0x20:
			return 0, false, Syntax, j
		default:
			r, size := utf8.DecodeRune(doc[j:])
			if r == utf8.RuneError && size == 1 {
				return 0, false, InvalidUTF8, j
			}
			j += size
		}
	}
}

// hex4 reads the four hexadecimal digits at doc[i:], returning their
// value, or the offset of the first that is missing or not a digit.
func hex4(doc []byte, i int) (r rune, bad int) {
	for k := i; k < i+4; k++ {
		if k >= len(doc) {
			return 0, k
		}
		var v byte
		switch ch := doc[k]; {
		case ch >= '0' && ch <= '9':
			v = ch - '0'
		case ch >= 'a' && ch <= 'f':
			v = ch - 'a' + 10
		case ch >= 'A' && ch <= 'F':
			v = ch - 'A' + 10
		default:
			return 0, k
		}
		r = r<<4 | rune(v)
	}
	return r, -1
}

// scanNumber reads the number that starts at doc[i]: it returns the offset
// after it, or of the first byte that does not belong.
func scanNumber(doc []byte, i int) (int, bool) {
	if doc[i] == '-' {
		i++
	}
	switch {
	case i < len(doc) && doc[i] == '0':
		i++
	case i < len(doc) && doc[i] >= '1' && doc[i] <= '9':
		i = digits(doc, i)
	default:
		return i, false
	}
	if i < len(doc) && doc[i] == '.' {
		j := digits(doc, i+1)
		if j == i+1 {
			return j, false
		}
		i = j
	}
	if i < len(doc) && (doc[i] == 'e' || doc[i] == 'E') {
		i++
		if i < len(doc) && (doc[i] == '+' || doc[i] == '-') {
			i++
		}
		j := digits(doc, i)
		if j == i {
			return j, false
		}
		i = j
	}
	return i, true
}

func digits(doc []byte, i int) int {
	for i < len(doc) && doc[i] >= '0' && doc[i] <= '9' {
		i++
	}
	return i
}

// scanLiteral reads true, false or null at doc[i].
func scanLiteral(doc []byte, i int) (int, bool) {
	var lit string
	switch doc[i] {
	case 't':
		lit = "true"
	case 'f':
		lit = "false"
	case 'n':
		lit = "null"
	default:
		return i, false
	}
	for k := 0; k < len(lit); k++ {
		if i+k >= len(doc) || doc[i+k] != lit[k] {
			return i + k, false
		}
	}
	return i + len(lit), true
}

// appendUnescaped appends the text of a string's content that Check has
// read (well-formed, valid UTF-8, surrogates paired), escapes decoded.
func appendUnescaped(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		ch := raw[i]
		if ch != '\\' {
			dst = append(dst, ch)
			i++
			continue
		}
		switch raw[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, _ := hex4(raw, i+2)
			if r >= 0xd800 && r <= 0xdbff {
				lo, _ := hex4(raw, i+8)
				r = 0x10000 + (r-0xd800)<<10 + (lo - 0xdc00)
				i += 6
			}
			dst = utf8.AppendRune(dst, r)
			i += 6
			continue
		default: // '"', '\\', '/'
			dst = append(dst, raw[i+1])
		}
		i += 2
	}
	return dst
}
