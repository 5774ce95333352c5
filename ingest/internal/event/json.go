package event

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/valyala/fastjson"
)

// ErrNotArray is returned by DecodeJSON when the body is valid JSON but not an array of events.
var ErrNotArray = errors.New("event batch must be a JSON array")

// ErrBatchTooLarge is returned by DecodeJSON when the batch holds more than the allowed number
// of events.
var ErrBatchTooLarge = errors.New("too many events in one batch")

// JSONDecoder decodes JSON event batches. It reuses its parser between calls and so is not safe
// for concurrent use; keep one per goroutine (or in a sync.Pool).
type JSONDecoder struct {
	p      fastjson.Parser
	buf    []byte
	intern Interner
}

// Decode parses body, a JSON array of events, and calls fn for every element in order with the
// decoded event, or with a Reject when the element is malformed (wrong JSON types) — it does
// not run Validate. raw is the element's JSON, valid only during the call. The returned error is
// for the whole batch: invalid JSON (a *fastjson error), ErrNotArray or ErrBatchTooLarge.
func (d *JSONDecoder) Decode(body []byte, maxEvents int, fn func(e *Event, rej *Reject, raw func() []byte)) error {
	v, err := d.p.ParseBytes(body)
	if err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	arr, err := v.Array()
	if err != nil {
		return ErrNotArray
	}
	if maxEvents > 0 && len(arr) > maxEvents {
		return fmt.Errorf("%w: %d events, at most %d", ErrBatchTooLarge, len(arr), maxEvents)
	}
	var e Event
	for _, item := range arr {
		e = Event{}
		rej := d.decodeObject(item, &e)
		fn(&e, rej, func() []byte {
			d.buf = item.MarshalTo(d.buf[:0])
			return d.buf
		})
	}
	return nil
}

func malformed(field, format string, args ...any) *Reject {
	return reject(ReasonMalformed, field, format, args...)
}

func (d *JSONDecoder) decodeObject(v *fastjson.Value, e *Event) (rej *Reject) {
	o, err := v.Object()
	if err != nil {
		return malformed("", "event must be a JSON object, got %s", v.Type())
	}
	var props, counters *fastjson.Value
	o.Visit(func(k []byte, f *fastjson.Value) {
		if rej != nil {
			return
		}
		switch string(k) {
		case "event_id":
			if f.Type() == fastjson.TypeNull {
				return
			}
			if f.Type() != fastjson.TypeString {
				rej = malformed("event_id", "expected a string, got %s", f.Type())
				return
			}
			id, ok := parseUUIDBytes(f.GetStringBytes())
			if !ok {
				rej = reject(ReasonInvalidEventID, "event_id", "not a UUID")
				return
			}
			e.ID = id
		case "type":
			if f.Type() != fastjson.TypeString {
				rej = malformed("type", "expected a string, got %s", f.Type())
				return
			}
			t := f.GetStringBytes()
			if e.Type = ParseType(string(t)); e.Type == 0 {
				rej = reject(ReasonUnknownType, "type", "must be exposure, track or summary, got %q", truncate(string(t), 32))
			}
		case "timestamp":
			e.Timestamp, rej = integer("timestamp", f)
		case "context_kind":
			e.ContextKind, rej = d.istr("context_kind", f)
		case "context_key":
			e.ContextKey, rej = str("context_key", f)
		case "sdk":
			rej = d.decodeSDK(f, e)
		case "flag_key":
			e.FlagKey, rej = d.istr("flag_key", f)
		case "variation_key":
			e.VariationKey, rej = d.istr("variation_key", f)
		case "flag_version":
			e.FlagVersion, rej = integer("flag_version", f)
		case "reason":
			e.Reason, rej = d.istr("reason", f)
		case "rule_id":
			e.RuleID, rej = d.istr("rule_id", f)
		case "experiment_key":
			e.ExperimentKey, rej = d.istr("experiment_key", f)
		case "event_key":
			e.EventKey, rej = d.istr("event_key", f)
		case "value":
			if f.Type() == fastjson.TypeNull {
				return
			}
			if f.Type() != fastjson.TypeNumber {
				rej = malformed("value", "expected a number, got %s", f.Type())
				return
			}
			e.Value, e.HasValue = f.GetFloat64(), true
		case "properties":
			props = f
		case "start":
			e.Start, rej = integer("start", f)
		case "end":
			e.End, rej = integer("end", f)
		case "counters":
			counters = f
		}
		// Unknown fields are ignored: newer SDKs may send fields an older collector does not know.
	})
	if rej != nil {
		return rej
	}
	if e.Type == 0 {
		return reject(ReasonMissingField, "type", "required")
	}
	if props != nil && e.Type == TypeTrack && props.Type() != fastjson.TypeNull {
		if rej = decodeProperties(props, e); rej != nil {
			return rej
		}
	}
	if e.Type == TypeSummary {
		if counters == nil || counters.Type() == fastjson.TypeNull {
			return MissingCounters()
		}
		if rej = decodeCounters(counters, e); rej != nil {
			return rej
		}
	}
	return nil
}

func (d *JSONDecoder) decodeSDK(v *fastjson.Value, e *Event) (rej *Reject) {
	if v.Type() == fastjson.TypeNull {
		return nil
	}
	o, err := v.Object()
	if err != nil {
		return malformed("sdk", "expected an object, got %s", v.Type())
	}
	o.Visit(func(k []byte, f *fastjson.Value) {
		if rej != nil {
			return
		}
		switch string(k) {
		case "name":
			e.SDKName, rej = d.istr("sdk.name", f)
		case "version":
			e.SDKVersion, rej = d.istr("sdk.version", f)
		}
	})
	return rej
}

func decodeProperties(v *fastjson.Value, e *Event) (rej *Reject) {
	o, err := v.Object()
	if err != nil {
		return malformed("properties", "expected an object, got %s", v.Type())
	}
	if o.Len() > MaxProperties {
		return reject(ReasonTooManyProperties, "properties", "%d properties, at most %d", o.Len(), MaxProperties)
	}
	e.Properties = make([]Property, 0, o.Len())
	o.Visit(func(k []byte, f *fastjson.Value) {
		if rej != nil {
			return
		}
		p := Property{Key: string(k)}
		switch f.Type() {
		case fastjson.TypeString:
			p.Kind, p.Str = PropString, string(f.GetStringBytes())
		case fastjson.TypeNumber:
			p.Kind, p.Num = PropNumber, f.GetFloat64()
		case fastjson.TypeTrue:
			p.Kind, p.Bool = PropBool, true
		case fastjson.TypeFalse:
			p.Kind = PropBool
		default:
			rej = reject(ReasonInvalidValue, "properties."+truncate(p.Key, 64), "must be a string, number or boolean, got %s", f.Type())
			return
		}
		e.Properties = append(e.Properties, p)
	})
	if rej == nil {
		// Deterministic order (JSON objects are unordered); duplicates keep the last value.
		sort.SliceStable(e.Properties, func(i, j int) bool { return e.Properties[i].Key < e.Properties[j].Key })
		out := e.Properties[:0]
		for i, p := range e.Properties {
			if i+1 < len(e.Properties) && e.Properties[i+1].Key == p.Key {
				continue
			}
			out = append(out, p)
		}
		e.Properties = out
	}
	return rej
}

func decodeCounters(v *fastjson.Value, e *Event) *Reject {
	arr, err := v.Array()
	if err != nil {
		return malformed("counters", "expected an array, got %s", v.Type())
	}
	if len(arr) > MaxCounters {
		return reject(ReasonTooManyCounters, "counters", "%d counters, at most %d", len(arr), MaxCounters)
	}
	e.Counters = make([]Counter, 0, len(arr))
	for i, item := range arr {
		o, err := item.Object()
		if err != nil {
			return malformed(fmt.Sprintf("counters[%d]", i), "expected an object, got %s", item.Type())
		}
		var c Counter
		var rej *Reject
		o.Visit(func(k []byte, f *fastjson.Value) {
			if rej != nil {
				return
			}
			switch string(k) {
			case "flag_key":
				c.FlagKey, rej = str("counters.flag_key", f)
			case "variation_key":
				c.VariationKey, rej = str("counters.variation_key", f)
			case "flag_version":
				c.FlagVersion, rej = integer("counters.flag_version", f)
			case "count":
				c.Count, rej = integer("counters.count", f)
			}
		})
		if rej != nil {
			return rej
		}
		e.Counters = append(e.Counters, c)
	}
	return nil
}

// istr is str for low-cardinality fields (flag keys, variations, kinds): the string is
// interned, so a batch of a thousand exposures of one flag allocates its key once.
func (d *JSONDecoder) istr(field string, v *fastjson.Value) (string, *Reject) {
	switch v.Type() {
	case fastjson.TypeString:
		return d.intern.Bytes(v.GetStringBytes()), nil
	case fastjson.TypeNull:
		return "", nil
	}
	return "", malformed(field, "expected a string, got %s", v.Type())
}

func str(field string, v *fastjson.Value) (string, *Reject) {
	switch v.Type() {
	case fastjson.TypeString:
		return string(v.GetStringBytes()), nil
	case fastjson.TypeNull:
		return "", nil
	}
	return "", malformed(field, "expected a string, got %s", v.Type())
}

// integer accepts JSON integers (also in exponent form such as 1.7e12, when integral).
func integer(field string, v *fastjson.Value) (int64, *Reject) {
	switch v.Type() {
	case fastjson.TypeNumber:
	case fastjson.TypeNull:
		return 0, nil
	default:
		return 0, malformed(field, "expected an integer, got %s", v.Type())
	}
	if n, err := v.Int64(); err == nil {
		return n, nil
	}
	f, err := v.Float64()
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, malformed(field, "expected an integer, got %s", truncate(v.String(), 32))
	}
	return int64(f), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// ParseUUID parses the canonical 8-4-4-4-12 hex form (either case). The nil UUID is rejected.
func ParseUUID(s string) (id [16]byte, ok bool) { return parseUUIDBytes([]byte(s)) }

func parseUUIDBytes(s []byte) (id [16]byte, ok bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return id, false
	}
	j := 0
	for i := 0; i < 36; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i++
			continue
		}
		hi, ok1 := fromHex(s[i])
		lo, ok2 := fromHex(s[i+1])
		if !ok1 || !ok2 {
			return id, false
		}
		id[j] = hi<<4 | lo
		j++
		i += 2
	}
	return id, id != [16]byte{}
}

func fromHex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// FormatUUID renders id in the canonical lowercase form.
func FormatUUID(id [16]byte) string {
	const hexdigits = "0123456789abcdef"
	var b [36]byte
	j := 0
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[j] = '-'
			j++
		}
		b[j], b[j+1] = hexdigits[c>>4], hexdigits[c&15]
		j += 2
	}
	return string(b[:])
}

// ParseProperties parses a JSON object text of flat properties (the Arrow stream's properties
// column) into e.Properties.
func ParseProperties(p *fastjson.Parser, js []byte, e *Event) *Reject {
	v, err := p.ParseBytes(js)
	if err != nil {
		return malformed("properties", "invalid JSON object text: %v", err)
	}
	if v.Type() == fastjson.TypeNull {
		return nil
	}
	return decodeProperties(v, e)
}

// AppendJSON appends the wire (events.schema.json) form of e to b; the collector uses it for
// dead-letter records of events that did not arrive as JSON.
func AppendJSON(b []byte, e *Event) []byte {
	var a fastjson.Arena
	o := a.NewObject()
	set := func(k, v string) {
		if v != "" {
			o.Set(k, a.NewString(v))
		}
	}
	if e.ID != ([16]byte{}) {
		set("event_id", FormatUUID(e.ID))
	}
	if e.Type != 0 {
		set("type", e.Type.String())
	}
	o.Set("timestamp", a.NewNumberString(strconv.FormatInt(e.Timestamp, 10)))
	set("context_kind", e.ContextKind)
	set("context_key", e.ContextKey)
	if e.SDKName != "" || e.SDKVersion != "" {
		sdk := a.NewObject()
		sdk.Set("name", a.NewString(e.SDKName))
		sdk.Set("version", a.NewString(e.SDKVersion))
		o.Set("sdk", sdk)
	}
	switch e.Type {
	case TypeExposure:
		set("flag_key", e.FlagKey)
		set("variation_key", e.VariationKey)
		o.Set("flag_version", a.NewNumberString(strconv.FormatInt(e.FlagVersion, 10)))
		set("reason", e.Reason)
		set("rule_id", e.RuleID)
		set("experiment_key", e.ExperimentKey)
	case TypeTrack:
		set("event_key", e.EventKey)
		if e.HasValue && isFinite(e.Value) {
			o.Set("value", a.NewNumberFloat64(e.Value))
		}
		if len(e.Properties) > 0 {
			props := a.NewObject()
			for _, p := range e.Properties {
				switch p.Kind {
				case PropNumber:
					if isFinite(p.Num) {
						props.Set(p.Key, a.NewNumberFloat64(p.Num))
					}
				case PropBool:
					if p.Bool {
						props.Set(p.Key, a.NewTrue())
					} else {
						props.Set(p.Key, a.NewFalse())
					}
				default:
					props.Set(p.Key, a.NewString(p.Str))
				}
			}
			o.Set("properties", props)
		}
	case TypeSummary:
		o.Set("start", a.NewNumberString(strconv.FormatInt(e.Start, 10)))
		o.Set("end", a.NewNumberString(strconv.FormatInt(e.End, 10)))
		cs := a.NewArray()
		for i, c := range e.Counters {
			co := a.NewObject()
			co.Set("flag_key", a.NewString(c.FlagKey))
			co.Set("variation_key", a.NewString(c.VariationKey))
			co.Set("flag_version", a.NewNumberString(strconv.FormatInt(c.FlagVersion, 10)))
			co.Set("count", a.NewNumberString(strconv.FormatInt(c.Count, 10)))
			cs.SetArrayItem(i, co)
		}
		o.Set("counters", cs)
	}
	return o.MarshalTo(b)
}
