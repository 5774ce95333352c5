package evaluation

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// Errors a context can carry. Evaluate reports them as ERROR results (TARGETING_KEY_MISSING and
// INVALID_CONTEXT); ParseContext returns them wrapped with the reason.
var (
	// ErrTargetingKeyMissing is returned when a context, or one kind of a multi-kind context, has
	// no key or an empty one.
	ErrTargetingKeyMissing = errors.New("context key missing")
	// ErrInvalidContext is returned for a context that is not a JSON object, names an invalid
	// kind, has a non-string key, or is a multi-kind context with no kinds or nested "multi".
	ErrInvalidContext = errors.New("invalid context")
)

// Context is what a flag is evaluated for: one or more kinds (user, device, organization, ...),
// each with a key and attributes. The zero Context has no kind and evaluates to an ERROR with
// TARGETING_KEY_MISSING. Contexts are immutable and safe to share between goroutines.
type Context struct {
	kinds []kindContext // sorted by kind
	err   error
}

type kindContext struct {
	kind  string
	key   string
	attrs []Attribute
}

// Attribute is one named attribute of a context.
type Attribute struct {
	Name  string
	Value Value
}

// Attr makes an attribute from a Go value; see ValueOf for the accepted types.
func Attr(name string, value any) Attribute {
	return Attribute{Name: name, Value: ValueOf(value)}
}

// NewContext returns a single-kind context of kind "user".
func NewContext(key string, attrs ...Attribute) Context {
	return NewKindContext(ruleset.DefaultContextKind, key, attrs...)
}

// NewKindContext returns a single-kind context of the given kind. Attributes named "key" or
// "kind" are ignored: the key is the context key and the kind is not an attribute.
func NewKindContext(kind, key string, attrs ...Attribute) Context {
	kc, err := newKindContext(kind, key, attrs)
	if err != nil {
		return Context{err: err}
	}
	return Context{kinds: []kindContext{kc}}
}

func newKindContext(kind, key string, attrs []Attribute) (kindContext, error) {
	if !ruleset.ValidContextKind(kind) {
		return kindContext{}, fmt.Errorf("%w: invalid kind %q", ErrInvalidContext, kind)
	}
	if key == "" {
		return kindContext{}, fmt.Errorf("%w: kind %q has no key", ErrTargetingKeyMissing, kind)
	}
	kc := kindContext{kind: kind, key: key}
	if len(attrs) > 0 {
		kc.attrs = make([]Attribute, 0, len(attrs))
		for _, a := range attrs {
			if a.Name == "key" || a.Name == "kind" || a.Name == "" {
				continue
			}
			// A later attribute of the same name replaces an earlier one.
			if i := slices.IndexFunc(kc.attrs, func(b Attribute) bool { return b.Name == a.Name }); i >= 0 {
				kc.attrs[i] = a
				continue
			}
			kc.attrs = append(kc.attrs, a)
		}
	}
	return kc, nil
}

// NewMultiContext combines single-kind contexts into one multi-kind context. Each kind may appear
// once; an invalid part makes the whole context invalid.
func NewMultiContext(parts ...Context) Context {
	var c Context
	for _, p := range parts {
		if p.err != nil {
			return Context{err: p.err}
		}
		for _, kc := range p.kinds {
			if c.kind(kc.kind) != nil {
				return Context{err: fmt.Errorf("%w: kind %q appears twice", ErrInvalidContext, kc.kind)}
			}
			c.kinds = append(c.kinds, kc)
		}
	}
	if len(c.kinds) == 0 {
		return Context{err: fmt.Errorf("%w: a multi-kind context needs at least one kind", ErrInvalidContext)}
	}
	slices.SortFunc(c.kinds, func(a, b kindContext) int { return strings.Compare(a.kind, b.kind) })
	return c
}

// Err returns why the context cannot be evaluated (wrapping ErrTargetingKeyMissing or
// ErrInvalidContext), or nil.
func (c Context) Err() error {
	if c.err == nil && len(c.kinds) == 0 {
		return fmt.Errorf("%w: empty context", ErrTargetingKeyMissing)
	}
	return c.err
}

// Kinds returns the context's kinds in sorted order.
func (c Context) Kinds() []string {
	out := make([]string, len(c.kinds))
	for i, kc := range c.kinds {
		out[i] = kc.kind
	}
	return out
}

// IsMulti reports whether the context has more than one kind.
func (c Context) IsMulti() bool { return len(c.kinds) > 1 }

// Key returns the key of the given kind, and whether the context has that kind.
func (c Context) Key(kind string) (string, bool) {
	if kc := c.kind(kind); kc != nil {
		return kc.key, true
	}
	return "", false
}

// Get returns an attribute of one kind ("key" is the context key).
func (c Context) Get(kind, name string) (Value, bool) {
	kc := c.kind(kind)
	if kc == nil {
		return Value{}, false
	}
	if name == "key" {
		return Value{t: TypeString, s: kc.key}, true
	}
	if v := kc.attr(name); v != nil {
		return *v, true
	}
	return Value{}, false
}

// Primary returns the kind and key events are attributed to when nothing more specific applies:
// the "user" kind when present, otherwise the first kind in sorted order.
func (c Context) Primary() (kind, key string) {
	if kc := c.kind(ruleset.DefaultContextKind); kc != nil {
		return kc.kind, kc.key
	}
	if len(c.kinds) > 0 {
		return c.kinds[0].kind, c.kinds[0].key
	}
	return "", ""
}

func (c *Context) kind(kind string) *kindContext {
	for i := range c.kinds {
		if c.kinds[i].kind == kind {
			return &c.kinds[i]
		}
	}
	return nil
}

// attr returns the named attribute (not the key), or nil.
func (kc *kindContext) attr(name string) *Value {
	for i := range kc.attrs {
		if kc.attrs[i].Name == name {
			return &kc.attrs[i].Value
		}
	}
	return nil
}

// ParseContext reads a context in its JSON form: single kind {"kind":"user","key":"alice",
// "country":"US"} (kind defaults to "user"), or multi kind {"kind":"multi","user":{"key":"alice"},
// "device":{"key":"d1","os":"ios"}}. On error the returned Context carries the error too, so it can
// still be passed to Evaluate, which reports it as an ERROR result.
func ParseContext(data []byte) (Context, error) {
	c, err := parseContext(data)
	if err != nil {
		return Context{err: err}, err
	}
	return c, nil
}

// ContextFromObject is ParseContext for a context already decoded by encoding/json into a
// map (numbers as float64), so a server that decodes a request once need not parse its
// context twice.
func ContextFromObject(obj map[string]any) (Context, error) {
	c, err := contextFromObject(obj)
	if err != nil {
		return Context{err: err}, err
	}
	return c, nil
}

func parseContext(data []byte) (Context, error) {
	// decodeValue decodes as encoding/json does (a null or a non-object is then no object); what
	// it declines goes to encoding/json, for its verdict.
	v, decoded := decodeValue(data)
	obj, _ := v.(map[string]any)
	if !decoded {
		if err := json.Unmarshal(data, &obj); err != nil {
			return Context{}, fmt.Errorf("%w: not a JSON object", ErrInvalidContext)
		}
	}
	return contextFromObject(obj)
}

func contextFromObject(obj map[string]any) (Context, error) {
	if obj == nil {
		return Context{}, fmt.Errorf("%w: not a JSON object", ErrInvalidContext)
	}
	kind := ruleset.DefaultContextKind
	if v := obj["kind"]; v != nil { // null is the same as absent
		s, ok := v.(string)
		if !ok {
			return Context{}, fmt.Errorf("%w: kind must be a string", ErrInvalidContext)
		}
		kind = s
	}
	if kind != "multi" {
		kc, err := parseKind(kind, obj)
		if err != nil {
			return Context{}, err
		}
		return Context{kinds: []kindContext{kc}}, nil
	}
	// Kinds in name order, and INVALID_CONTEXT before TARGETING_KEY_MISSING whichever kind has
	// which (EVALUATION.md section 1): the error must not depend on map order.
	var c Context
	var missing error
	for _, name := range slices.Sorted(maps.Keys(obj)) {
		if name == "kind" {
			continue
		}
		part, ok := obj[name].(map[string]any)
		if !ok {
			return Context{}, fmt.Errorf("%w: kind %q of a multi-kind context must be an object", ErrInvalidContext, name)
		}
		if inner, ok := part["kind"]; ok {
			if k, _ := inner.(string); k != name {
				return Context{}, fmt.Errorf("%w: kind %q of a multi-kind context names another kind", ErrInvalidContext, name)
			}
		}
		kc, err := parseKind(name, part)
		switch {
		case errors.Is(err, ErrTargetingKeyMissing):
			if missing == nil {
				missing = err
			}
			continue
		case err != nil:
			return Context{}, err
		}
		c.kinds = append(c.kinds, kc)
	}
	if missing != nil {
		return Context{}, missing
	}
	if len(c.kinds) == 0 {
		return Context{}, fmt.Errorf("%w: a multi-kind context needs at least one kind", ErrInvalidContext)
	}
	slices.SortFunc(c.kinds, func(a, b kindContext) int { return strings.Compare(a.kind, b.kind) })
	return c, nil
}

func parseKind(kind string, obj map[string]any) (kindContext, error) {
	if !ruleset.ValidContextKind(kind) {
		return kindContext{}, fmt.Errorf("%w: invalid kind %q", ErrInvalidContext, kind)
	}
	v := obj["key"]
	if v == nil {
		return kindContext{}, fmt.Errorf("%w: kind %q has no key", ErrTargetingKeyMissing, kind)
	}
	key, ok := v.(string)
	if !ok {
		return kindContext{}, fmt.Errorf("%w: the key of kind %q must be a string", ErrInvalidContext, kind)
	}
	if key == "" {
		return kindContext{}, fmt.Errorf("%w: kind %q has an empty key", ErrTargetingKeyMissing, kind)
	}
	kc := kindContext{kind: kind, key: key, attrs: make([]Attribute, 0, len(obj))}
	for name, v := range obj {
		if name != "key" && name != "kind" {
			kc.attrs = append(kc.attrs, Attribute{Name: name, Value: ValueOf(v)})
		}
	}
	// Deterministic attribute order (map iteration is not).
	slices.SortFunc(kc.attrs, func(a, b Attribute) int { return strings.Compare(a.Name, b.Name) })
	return kc, nil
}

// MarshalJSON writes the context in its JSON form (single or multi kind).
func (c Context) MarshalJSON() ([]byte, error) {
	if len(c.kinds) == 0 {
		return []byte("null"), nil
	}
	single := func(kc kindContext, withKind bool) map[string]any {
		m := make(map[string]any, len(kc.attrs)+2)
		for _, a := range kc.attrs {
			m[a.Name] = a.Value.Any()
		}
		m["key"] = kc.key
		if withKind {
			m["kind"] = kc.kind
		}
		return m
	}
	if len(c.kinds) == 1 {
		return json.Marshal(single(c.kinds[0], true))
	}
	m := map[string]any{"kind": "multi"}
	for _, kc := range c.kinds {
		m[kc.kind] = single(kc, false)
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads the JSON form; see ParseContext.
func (c *Context) UnmarshalJSON(data []byte) error {
	parsed, err := parseContext(data)
	if err != nil {
		return err
	}
	*c = parsed
	return nil
}

// ValueType is the JSON type of a context attribute value.
type ValueType uint8

// Value types.
const (
	TypeNull ValueType = iota
	TypeBool
	TypeNumber
	TypeString
	TypeArray
	TypeObject
)

// Value is a context attribute value: null, bool, number, string, array or object.
type Value struct {
	t ValueType
	b bool
	n float64
	s string
	a []Value
	o map[string]Value
}

// ValueOf converts a Go value to a Value: nil, bool, string, every integer and float type,
// json.Number, []string, []any, map[string]any and Value itself; anything else is converted
// through its JSON encoding.
func ValueOf(v any) Value {
	switch x := v.(type) {
	case nil:
		return Value{}
	case Value:
		return x
	case bool:
		return Value{t: TypeBool, b: x}
	case string:
		return Value{t: TypeString, s: x}
	case float64:
		return number(x)
	case float32:
		return number(float64(x))
	case int:
		return number(float64(x))
	case int8:
		return number(float64(x))
	case int16:
		return number(float64(x))
	case int32:
		return number(float64(x))
	case int64:
		return number(float64(x))
	case uint:
		return number(float64(x))
	case uint8:
		return number(float64(x))
	case uint16:
		return number(float64(x))
	case uint32:
		return number(float64(x))
	case uint64:
		return number(float64(x))
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return Value{t: TypeString, s: string(x)}
		}
		return number(f)
	case []string:
		a := make([]Value, len(x))
		for i, s := range x {
			a[i] = Value{t: TypeString, s: s}
		}
		return Value{t: TypeArray, a: a}
	case []any:
		a := make([]Value, len(x))
		for i, e := range x {
			a[i] = ValueOf(e)
		}
		return Value{t: TypeArray, a: a}
	case map[string]any:
		o := make(map[string]Value, len(x))
		for k, e := range x {
			o[k] = ValueOf(e)
		}
		return Value{t: TypeObject, o: o}
	}
	data, err := json.Marshal(v)
	if err != nil {
		return Value{}
	}
	var generic any
	if json.Unmarshal(data, &generic) != nil {
		return Value{}
	}
	return ValueOf(generic)
}

func number(f float64) Value {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return Value{} // not representable in JSON: treated as null (missing)
	}
	return Value{t: TypeNumber, n: f}
}

// Type returns the value's JSON type.
func (v Value) Type() ValueType { return v.t }

// Any returns the value as the Go value encoding/json would decode it into.
func (v Value) Any() any {
	switch v.t {
	case TypeBool:
		return v.b
	case TypeNumber:
		return v.n
	case TypeString:
		return v.s
	case TypeArray:
		out := make([]any, len(v.a))
		for i, e := range v.a {
			out[i] = e.Any()
		}
		return out
	case TypeObject:
		out := make(map[string]any, len(v.o))
		for k, e := range v.o {
			out[k] = e.Any()
		}
		return out
	}
	return nil
}
