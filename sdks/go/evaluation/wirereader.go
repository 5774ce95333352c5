package evaluation

import (
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"
)

// decodeValue decodes one JSON value as json.Unmarshal does into an interface{} (bool, float64,
// string, nil, []any, map[string]any). It reports false, for the caller to use encoding/json,
// for what decodeTyped would decline.
func decodeValue(data []byte) (any, bool) {
	r := wireReader{data: data}
	v := r.value()
	return v, r.whole()
}

// wireReader reads JSON from data. Every method does nothing once failed is set, so a decoder
// checks it once at the end.
type wireReader struct {
	data   []byte
	pos    int
	depth  int
	failed bool
}

// maxWireDepth bounds nesting (encoding/json allows 10,000; rulesets nest a few levels).
const maxWireDepth = 100

func (r *wireReader) fail() { r.failed = true }

// whole reports whether everything read so far was well-formed and nothing but space follows.
func (r *wireReader) whole() bool {
	r.space()
	return !r.failed && r.pos == len(r.data)
}

func (r *wireReader) space() {
	for r.pos < len(r.data) {
		switch r.data[r.pos] {
		case ' ', '\t', '\n', '\r':
			r.pos++
		default:
			return
		}
	}
}

// peek returns the next non-space byte (0 at the end or after a failure).
func (r *wireReader) peek() byte {
	r.space()
	if r.failed || r.pos >= len(r.data) {
		r.fail()
		return 0
	}
	return r.data[r.pos]
}

// literal consumes word (true, false, null) or fails.
func (r *wireReader) literal(word string) {
	if !r.failed && len(r.data)-r.pos >= len(word) && string(r.data[r.pos:r.pos+len(word)]) == word {
		r.pos += len(word)
		return
	}
	r.fail()
}

// null consumes a null if one is next and reports whether it did.
func (r *wireReader) null() bool {
	if r.peek() == 'n' {
		r.literal("null")
		return true
	}
	return false
}

// object reads an object, calling member for each key with the reader at the member's value;
// member must consume the value. seen and fields guard against keys encoding/json would treat
// differently: a key given twice (it merges) and a key that differs from a field's name only in
// case (it matches case-insensitively). A null reads as no object (encoding/json leaves the
// value unchanged). Unknown keys' values are skipped; with no fields, the whole object is.
func (r *wireReader) object(fields []string, member func(field int)) {
	if r.null() {
		return
	}
	if r.peek() != '{' {
		r.fail()
		return
	}
	r.pos++
	if r.depth++; r.depth > maxWireDepth {
		r.fail()
		return
	}
	var seen uint64
	for first := true; !r.failed; first = false {
		c := r.peek()
		if c == '}' && first {
			r.pos++
			break
		}
		if c != '"' {
			r.fail()
			return
		}
		var key []byte
		if fields == nil {
			r.skipString() // skipping: any key will do
		} else {
			key = r.key()
		}
		if r.peek() != ':' {
			r.fail()
			return
		}
		r.pos++
		field := slices.Index(fields, string(key))
		if field < 0 && slices.ContainsFunc(fields, func(name string) bool { return asciiEqualFold(key, name) }) {
			r.fail()
			return
		}
		if field < 0 {
			r.skip()
		} else {
			if seen&(1<<field) != 0 {
				r.fail()
				return
			}
			seen |= 1 << field
			member(field)
		}
		switch r.peek() {
		case ',':
			r.pos++
			continue
		case '}':
			r.pos++
		default:
			r.fail()
		}
		break
	}
	r.depth--
}

// asciiEqualFold reports whether key and name are equal under ASCII case folding.
func asciiEqualFold(key []byte, name string) bool {
	if len(key) != len(name) {
		return false
	}
	for i := range len(key) {
		a, b := key[i], name[i]
		if a != b && (a|0x20 != b|0x20 || a|0x20 < 'a' || a|0x20 > 'z') {
			return false
		}
	}
	return true
}

// key reads an object key. A key that is not ASCII fails: it could fold to a field name under
// encoding/json's Unicode case folding.
func (r *wireReader) key() []byte {
	start := r.pos + 1
	for i := start; i < len(r.data); i++ {
		switch c := r.data[i]; {
		case c == '"':
			r.pos = i + 1
			return r.data[start:i]
		case c == '\\':
			k := r.escapedString(start)
			for j := range len(k) {
				if k[j] >= utf8.RuneSelf {
					r.fail()
				}
			}
			return []byte(k)
		case c < 0x20 || c >= utf8.RuneSelf:
			r.fail()
			return nil
		}
	}
	r.fail()
	return nil
}

// array reads an array, calling elem with the reader at each element (elem must consume it).
// It reports whether there was an array rather than a null.
func (r *wireReader) array(elem func()) (present bool) {
	if r.null() {
		return false
	}
	if r.peek() != '[' {
		r.fail()
		return false
	}
	r.pos++
	if r.depth++; r.depth > maxWireDepth {
		r.fail()
		return false
	}
	for first := true; !r.failed; first = false {
		if r.peek() == ']' && first {
			r.pos++
			break
		}
		elem()
		switch r.peek() {
		case ',':
			r.pos++
			continue
		case ']':
			r.pos++
		default:
			r.fail()
		}
		break
	}
	r.depth--
	return true
}

// str reads a string into dst (a null leaves dst alone, as encoding/json does).
func (r *wireReader) str(dst *string) {
	if r.null() {
		return
	}
	if r.peek() != '"' {
		r.fail()
		return
	}
	*dst = r.stringValue()
}

// stringValue reads the string at pos. Escapes are decoded; an escaped surrogate and invalid
// UTF-8 fail (encoding/json replaces the invalid ones with U+FFFD; they do not occur in
// published rulesets).
func (r *wireReader) stringValue() string {
	start := r.pos + 1
	ascii := true
	for i := start; i < len(r.data); i++ {
		switch c := r.data[i]; {
		case c == '"':
			r.pos = i + 1
			s := r.data[start:i]
			if !ascii && !utf8.Valid(s) {
				r.fail()
				return ""
			}
			return string(s)
		case c == '\\':
			return r.escapedString(start)
		case c < 0x20:
			r.fail()
			return ""
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	r.fail()
	return ""
}

// escapedString decodes a string that starts at start and contains escapes.
func (r *wireReader) escapedString(start int) string {
	out := make([]byte, 0, 32)
	i := start
	for i < len(r.data) {
		c := r.data[i]
		switch {
		case c == '"':
			r.pos = i + 1
			if !utf8.Valid(out) {
				r.fail()
				return ""
			}
			return string(out)
		case c < 0x20:
			r.fail()
			return ""
		case c != '\\':
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(r.data) {
			break
		}
		switch e := r.data[i+1]; e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			if i+6 > len(r.data) {
				r.fail()
				return ""
			}
			v, err := strconv.ParseUint(string(r.data[i+2:i+6]), 16, 16)
			if err != nil || (v >= 0xD800 && v < 0xE000) {
				r.fail()
				return ""
			}
			out = utf8.AppendRune(out, rune(v))
			i += 6
			continue
		default:
			r.fail()
			return ""
		}
		i += 2
	}
	r.fail()
	return ""
}

// number reads a number literal, checked against JSON's grammar.
func (r *wireReader) number() []byte {
	r.space()
	start, i, n := r.pos, r.pos, len(r.data)
	digits := func() bool {
		from := i
		for i < n && r.data[i] >= '0' && r.data[i] <= '9' {
			i++
		}
		return i > from
	}
	if i < n && r.data[i] == '-' {
		i++
	}
	switch {
	case i < n && r.data[i] == '0':
		i++
	case !digits():
		r.fail()
		return nil
	}
	if i < n && r.data[i] == '.' {
		i++
		if !digits() {
			r.fail()
			return nil
		}
	}
	if i < n && (r.data[i] == 'e' || r.data[i] == 'E') {
		i++
		if i < n && (r.data[i] == '+' || r.data[i] == '-') {
			i++
		}
		if !digits() {
			r.fail()
			return nil
		}
	}
	r.pos = i
	return r.data[start:i]
}

// int reads an integer into dst (null leaves it alone); a fraction, an exponent or an overflow
// fails, as encoding/json fails to decode them into an integer.
func (r *wireReader) int(dst *int64) {
	if r.null() || r.failed {
		return
	}
	lit := r.number()
	if r.failed {
		return
	}
	neg := lit[0] == '-'
	if neg {
		lit = lit[1:]
	}
	var v uint64
	for _, c := range lit {
		if c < '0' || c > '9' || v > (1<<63)/10 {
			r.fail()
			return
		}
		v = v*10 + uint64(c-'0')
	}
	switch {
	case neg && v <= 1<<63:
		*dst = int64(-v)
	case !neg && v < 1<<63:
		*dst = int64(v)
	default:
		r.fail()
	}
}

func (r *wireReader) bool(dst *bool) {
	switch r.peek() {
	case 't':
		r.literal("true")
		*dst = true
	case 'f':
		r.literal("false")
		*dst = false
	case 'n':
		r.literal("null")
	default:
		r.fail()
	}
}

// raw reads any value and returns a copy of its bytes (as json.RawMessage decodes).
func (r *wireReader) raw() json.RawMessage {
	r.space()
	start := r.pos
	r.skip()
	if r.failed {
		return nil
	}
	return append(json.RawMessage(nil), r.data[start:r.pos]...)
}

// skip reads and discards any value, checking its syntax.
func (r *wireReader) skip() {
	switch c := r.peek(); {
	case c == '{':
		r.object(nil, nil) // every key is unknown, so skipped
	case c == '[':
		r.array(r.skip)
	case c == '"':
		r.skipString()
	case c == 't':
		r.literal("true")
	case c == 'f':
		r.literal("false")
	case c == 'n':
		r.literal("null")
	default:
		r.number()
	}
}

// skipString checks a string's syntax without decoding it (encoding/json accepts invalid UTF-8
// in a value it ignores).
func (r *wireReader) skipString() {
	for i := r.pos + 1; i < len(r.data); i++ {
		switch c := r.data[i]; {
		case c == '"':
			r.pos = i + 1
			return
		case c < 0x20:
			r.fail()
			return
		case c == '\\':
			i++
			if i >= len(r.data) {
				break
			}
			switch r.data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(r.data) {
					r.fail()
					return
				}
				if _, err := strconv.ParseUint(string(r.data[i+1:i+5]), 16, 16); err != nil {
					r.fail()
					return
				}
				i += 4
			default:
				r.fail()
				return
			}
		}
	}
	r.fail()
}

// value reads any value as encoding/json decodes into an interface{}: bool, float64, string,
// nil, []any, map[string]any.
func (r *wireReader) value() any {
	switch c := r.peek(); {
	case c == '"':
		return r.stringValue()
	case c == '{':
		m := map[string]any{}
		if r.depth++; r.depth > maxWireDepth {
			r.fail()
			return nil
		}
		r.pos++
		for first := true; !r.failed; first = false {
			if r.peek() == '}' && first {
				r.pos++
				break
			}
			if r.peek() != '"' {
				r.fail()
				break
			}
			k := r.stringValue()
			if r.peek() != ':' {
				r.fail()
				break
			}
			r.pos++
			m[k] = r.value() // the last of a key given twice wins, as in encoding/json
			if r.peek() == ',' {
				r.pos++
				continue
			}
			if r.peek() == '}' {
				r.pos++
			} else {
				r.fail()
			}
			break
		}
		r.depth--
		return m
	case c == '[':
		out := []any{}
		r.array(func() { out = append(out, r.value()) })
		return out
	case c == 't' || c == 'f':
		var b bool
		r.bool(&b)
		return b
	case c == 'n':
		r.literal("null")
		return nil
	default:
		lit := r.number()
		if r.failed {
			return nil
		}
		f, err := strconv.ParseFloat(string(lit), 64)
		if err != nil {
			r.fail()
		}
		return f
	}
}

// list reads an array of T, each element by elem (null: nil).
func list[T any](r *wireReader, dst *[]T, elem func(*T)) {
	out := []T{}
	if r.array(func() {
		out = append(out, *new(T))
		elem(&out[len(out)-1])
	}) {
		*dst = out
	} else {
		*dst = nil
	}
}
