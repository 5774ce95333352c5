package rulesets

import (
	"encoding/json"
	"strings"
)

// outline reads a ruleset document's header (the top-level fields the relay needs, with the flags
// and segments as the byte ranges of their elements) in one pass that also checks the whole
// document is valid JSON. encoding/json took ~3 ms for a 190 KB document of 1,000 flags, on the
// path of every change to every client (BenchmarkApplyToggle): it validates the document in one
// pass and decodes it in a second, and copies every flag into a RawMessage of its own. The
// ranges returned here share the document's bytes, which are never modified.
//
// ok is false when the document is not valid JSON or is not written the way the flag service
// writes it — a field name escaped, given twice or spelled in another case (encoding/json
// matches names case-insensitively and keeps the last of duplicates), a version that is not a
// plain integer, flags or segments neither a list nor null, nesting deeper than maxDepth: the
// caller then decodes the document with encoding/json, which decides and words the error.
// When ok, h is exactly what json.Unmarshal(raw, &h) gives (FuzzOutline checks it).
func outline(raw []byte) (h header, ok bool) {
	r := outlineReader{b: raw}
	r.space()
	if !r.byte('{') {
		return h, false
	}
	var seen [len(headerFields)]bool
	r.space()
	if r.byte('}') {
		return h, r.end()
	}
	for {
		r.space()
		name, plain := r.name()
		if !plain {
			return h, false
		}
		r.space()
		if !r.byte(':') {
			return h, false
		}
		r.space()
		field := -1
		for i, f := range headerFields {
			if name == f {
				field = i
			} else if strings.EqualFold(name, f) {
				return h, false // encoding/json would take it for f
			}
		}
		if field >= 0 {
			if seen[field] {
				return h, false
			}
			seen[field] = true
		}
		start := r.i
		switch field {
		case fieldSchemaVersion:
			v, okv := r.integer()
			if !okv || v != int64(int(v)) {
				return h, false
			}
			h.SchemaVersion = int(v)
		case fieldVersion:
			v, okv := r.integer()
			if !okv {
				return h, false
			}
			h.Version = v
		case fieldFlags, fieldSegments:
			items, okl := r.list()
			if !okl {
				return h, false
			}
			if field == fieldFlags {
				h.Flags = items
			} else {
				h.Segments = items
			}
		default:
			if !r.value(0) {
				return h, false
			}
			switch field {
			case fieldEnvironment:
				h.Environment = raw[start:r.i:r.i]
			case fieldGeneratedAt:
				h.GeneratedAt = raw[start:r.i:r.i]
			case fieldSDKKeys:
				// A few keys: encoding/json, on an element already known to be valid.
				if json.Unmarshal(raw[start:r.i], &h.SDKKeys) != nil {
					return h, false
				}
			}
		}
		r.space()
		if r.byte('}') {
			return h, r.end()
		}
		if !r.byte(',') {
			return h, false
		}
	}
}

// headerFields are the JSON names of header's fields, in the order of the field constants.
var headerFields = [...]string{"schema_version", "environment", "version", "generated_at", "sdk_keys", "flags", "segments"}

const (
	fieldSchemaVersion = iota
	fieldEnvironment
	fieldVersion
	fieldGeneratedAt
	fieldSDKKeys
	fieldFlags
	fieldSegments
)

// maxDepth bounds the nesting outline reads (encoding/json's own limit is 10,000); deeper
// documents go to encoding/json.
const maxDepth = 512

// outlineReader is a strict JSON reader (RFC 8259, as encoding/json accepts it: bytes of
// strings are not checked to be UTF-8) over a document held in memory.
type outlineReader struct {
	b []byte
	i int
}

func (r *outlineReader) space() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

func (r *outlineReader) byte(c byte) bool {
	if r.i < len(r.b) && r.b[r.i] == c {
		r.i++
		return true
	}
	return false
}

// end reports whether only white space follows.
func (r *outlineReader) end() bool {
	r.space()
	return r.i == len(r.b)
}

// name reads an object member's name; plain is false when it is not a valid string or has
// escapes (which outline leaves to encoding/json).
func (r *outlineReader) name() (name string, plain bool) {
	if !r.byte('"') {
		return "", false
	}
	start := r.i
	for r.i < len(r.b) {
		c := r.b[r.i]
		switch {
		case c == '"':
			name = string(r.b[start:r.i])
			r.i++
			return name, true
		case c == '\\' || c < 0x20:
			return "", false
		}
		r.i++
	}
	return "", false
}

// integer reads a number that is a plain integer fitting an int64 (what decoding into an int64
// field accepts without error; a fraction or an exponent makes it fail there, so it goes to
// encoding/json here).
func (r *outlineReader) integer() (int64, bool) {
	neg := r.byte('-')
	start := r.i
	var v uint64
	for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
		d := uint64(r.b[r.i] - '0')
		if v > (1<<63-1+1)/10 { // past what any int64 can be after one more digit
			return 0, false
		}
		v = v*10 + d
		r.i++
	}
	n := r.i - start
	if n == 0 || (n > 1 && r.b[start] == '0') {
		return 0, false
	}
	if r.i < len(r.b) {
		switch r.b[r.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	if neg {
		if v > 1<<63 {
			return 0, false
		}
		return -int64(v), true // 1<<63 wraps to math.MinInt64, as intended
	}
	if v > 1<<63-1 {
		return 0, false
	}
	return int64(v), true
}

// list reads a list's elements as ranges of the document, or null as a nil list.
func (r *outlineReader) list() ([]json.RawMessage, bool) {
	if r.literal("null") {
		return nil, true
	}
	if !r.byte('[') {
		return nil, false
	}
	items := make([]json.RawMessage, 0, 16)
	r.space()
	if r.byte(']') {
		return items, true
	}
	for {
		r.space()
		start := r.i
		if !r.value(1) {
			return nil, false
		}
		items = append(items, r.b[start:r.i:r.i])
		r.space()
		if r.byte(']') {
			return items, true
		}
		if !r.byte(',') {
			return nil, false
		}
	}
}

// value checks one JSON value and moves past it.
func (r *outlineReader) value(depth int) bool {
	if r.i >= len(r.b) {
		return false
	}
	switch c := r.b[r.i]; {
	case c == '{':
		if depth >= maxDepth {
			return false
		}
		r.i++
		r.space()
		if r.byte('}') {
			return true
		}
		for {
			r.space()
			if !r.str() {
				return false
			}
			r.space()
			if !r.byte(':') {
				return false
			}
			r.space()
			if !r.value(depth + 1) {
				return false
			}
			r.space()
			if r.byte('}') {
				return true
			}
			if !r.byte(',') {
				return false
			}
		}
	case c == '[':
		if depth >= maxDepth {
			return false
		}
		r.i++
		r.space()
		if r.byte(']') {
			return true
		}
		for {
			r.space()
			if !r.value(depth + 1) {
				return false
			}
			r.space()
			if r.byte(']') {
				return true
			}
			if !r.byte(',') {
				return false
			}
		}
	case c == '"':
		return r.str()
	case c == '-' || (c >= '0' && c <= '9'):
		return r.number()
	case c == 't':
		return r.literal("true")
	case c == 'f':
		return r.literal("false")
	case c == 'n':
		return r.literal("null")
	}
	return false
}

func (r *outlineReader) literal(s string) bool {
	if len(r.b)-r.i >= len(s) && string(r.b[r.i:r.i+len(s)]) == s {
		r.i += len(s)
		return true
	}
	return false
}

// str checks a string: no control characters, only JSON's escapes.
func (r *outlineReader) str() bool {
	if !r.byte('"') {
		return false
	}
	for r.i < len(r.b) {
		c := r.b[r.i]
		r.i++
		switch {
		case c == '"':
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if r.i >= len(r.b) {
				return false
			}
			e := r.b[r.i]
			r.i++
			switch e {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(r.b)-r.i < 4 {
					return false
				}
				for _, h := range r.b[r.i : r.i+4] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return false
					}
				}
				r.i += 4
			default:
				return false
			}
		}
	}
	return false
}

// number checks -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (r *outlineReader) number() bool {
	r.byte('-')
	switch {
	case r.byte('0'):
	case r.i < len(r.b) && r.b[r.i] >= '1' && r.b[r.i] <= '9':
		r.digits()
	default:
		return false
	}
	if r.byte('.') && !r.digits() {
		return false
	}
	if r.byte('e') || r.byte('E') {
		if !r.byte('+') {
			r.byte('-')
		}
		if !r.digits() {
			return false
		}
	}
	return true
}

// digits moves past one or more digits, reporting whether there was one.
func (r *outlineReader) digits() bool {
	start := r.i
	for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
		r.i++
	}
	return r.i > start
}
