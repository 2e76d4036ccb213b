package redistest

import (
	"strconv"
	"strings"
)

// ParseMonitorLine reads a line of Redis' MONITOR feed,
// `<time> [<db> <client>] "arg" "arg" …` (a leading "+" and the line's
// ending are allowed),
// undoing Redis' escapes (\\, \", \n, \r, \t, \a, \b, \xHH); fromScript
// says a Lua script ran the command. ok is false for a line of another
// shape.
func ParseMonitorLine(l string) (args []string, fromScript, ok bool) {
	l = strings.TrimRight(strings.TrimPrefix(l, "+"), "\r\n")
	open := strings.IndexByte(l, '[')
	end := strings.IndexByte(l, ']')
	if open < 0 || end < open {
		return nil, false, false
	}
	fromScript = strings.HasSuffix(l[open:end], " lua")
	rest := l[end+1:]
	for {
		rest = strings.TrimLeft(rest, " ")
		if rest == "" {
			return args, fromScript, true
		}
		if rest[0] != '"' {
			return nil, false, false
		}
		var b strings.Builder
		i := 1
		for ; i < len(rest) && rest[i] != '"'; i++ {
			c := rest[i]
			if c != '\\' || i+1 >= len(rest) {
				b.WriteByte(c)
				continue
			}
			i++
			switch rest[i] {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'a':
				b.WriteByte('\a')
			case 'b':
				b.WriteByte('\b')
			case 'x':
				if i+2 < len(rest) {
					v, err := strconv.ParseUint(rest[i+1:i+3], 16, 8)
					if err == nil {
						b.WriteByte(byte(v))
						i += 2
						continue
					}
				}
				b.WriteByte('x')
			default:
				b.WriteByte(rest[i])
			}
		}
		args = append(args, b.String())
		if i >= len(rest) {
			return args, fromScript, true
		}
		rest = rest[i+1:]
	}
}
