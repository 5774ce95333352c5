package event

import (
	"fmt"
	"time"
	"unicode/utf8"
)

// Reason is why an event was rejected. Reasons are stable API: the collector reports counts per
// reason in its response and sets the reason on the event's dead-letter record.
type Reason string

// Reject reasons.
const (
	// ReasonMalformed: the element is not a JSON object, or a field has the wrong JSON type.
	ReasonMalformed Reason = "malformed"
	// ReasonMissingField: a required field of the event's type is absent or empty.
	ReasonMissingField Reason = "missing_field"
	// ReasonInvalidEventID: event_id is not a UUID (or is the nil UUID).
	ReasonInvalidEventID Reason = "invalid_event_id"
	// ReasonUnknownType: type is not exposure, track or summary.
	ReasonUnknownType Reason = "unknown_type"
	// ReasonInvalidTimestamp: timestamp (or a summary window) is not a positive ms epoch, or
	// the window ends before it starts.
	ReasonInvalidTimestamp Reason = "invalid_timestamp"
	// ReasonTooLong: a string is longer than its limit.
	ReasonTooLong Reason = "too_long"
	// ReasonInvalidValue: a number out of range (negative version, count < 1, non-finite
	// value), a property of a type other than string/number/bool, or text that is not UTF-8.
	ReasonInvalidValue Reason = "invalid_value"
	// ReasonTooManyProperties: a track event has more than MaxProperties properties.
	ReasonTooManyProperties Reason = "too_many_properties"
	// ReasonTooManyCounters: a summary has more than MaxCounters counters.
	ReasonTooManyCounters Reason = "too_many_counters"
	// ReasonEventTooLarge: the encoded event is larger than MaxEncodedEventLen.
	ReasonEventTooLarge Reason = "event_too_large"
	// ReasonUndecodable: (writer) a record on the events topic could not be decoded.
	ReasonUndecodable Reason = "undecodable"
)

// Reject describes why one event was rejected.
type Reject struct {
	Reason  Reason
	Field   string
	Message string
}

func (r *Reject) Error() string {
	if r.Field != "" {
		return fmt.Sprintf("%s: %s: %s", r.Reason, r.Field, r.Message)
	}
	return fmt.Sprintf("%s: %s", r.Reason, r.Message)
}

func reject(reason Reason, field, format string, args ...any) *Reject {
	return &Reject{Reason: reason, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Skew bounds how far an event's timestamp may be from the collector's clock before it is
// clamped to the time of receipt (and flagged): SDKs buffer events while offline, so the past
// bound is generous; a future timestamp is a wrong clock.
//
// Before that, a batch that says when it was sent (by the sender's clock) has its events'
// times corrected for the sender's clock error: shifted by the difference between the time of
// receipt and the time of sending, when that exceeds Correct (below it, the difference is the
// network's time, not a wrong clock). A phone whose clock is an hour ahead then reports its
// events — buffered offline ones too — at their true times instead of all at the time of
// receipt. The correction is the same, to the network's jitter, when the batch is sent again,
// so a retried event keeps its time (and day): clamping to the time of receipt does not.
type Skew struct {
	Past    time.Duration
	Future  time.Duration
	Correct time.Duration
}

// DefaultSkew is the collector's default skew bound.
var DefaultSkew = Skew{Past: 7 * 24 * time.Hour, Future: 5 * time.Minute, Correct: time.Minute}

// ClockOffset is the correction for the events of a batch sent at sentAt by the sender's clock
// and received at now (both ms since the epoch): how far the sender's clock is behind the
// collector's (negative: ahead), or 0 when the batch does not say when it was sent (sentAt 0)
// or the difference is within s.Correct.
func ClockOffset(now, sentAt int64, s Skew) int64 {
	if sentAt <= 0 {
		return 0
	}
	d := now - sentAt
	if d <= s.Correct.Milliseconds() && -d <= s.Correct.Milliseconds() {
		return 0
	}
	return d
}

// Validate checks e against the wire format's rules. It does not change e.
func Validate(e *Event) *Reject {
	if e.ID == ([16]byte{}) {
		return reject(ReasonInvalidEventID, "event_id", "missing or nil UUID")
	}
	if e.Timestamp <= 0 {
		return reject(ReasonInvalidTimestamp, "timestamp", "must be a positive number of ms since the epoch")
	}
	if r := checkStr("sdk.name", e.SDKName, MaxSDKFieldLen, false); r != nil {
		return r
	}
	if r := checkStr("sdk.version", e.SDKVersion, MaxSDKFieldLen, false); r != nil {
		return r
	}
	switch e.Type {
	case TypeExposure:
		if r := checkContext(e); r != nil {
			return r
		}
		for _, f := range [...]struct {
			name     string
			v        string
			max      int
			required bool
		}{
			{"flag_key", e.FlagKey, MaxKeyLen, true},
			{"variation_key", e.VariationKey, MaxKeyLen, true},
			{"reason", e.Reason, MaxReasonLen, false},
			{"rule_id", e.RuleID, MaxRuleIDLen, false},
			{"experiment_key", e.ExperimentKey, MaxExperimentLen, false},
		} {
			if r := checkStr(f.name, f.v, f.max, f.required); r != nil {
				return r
			}
		}
		if e.FlagVersion < 0 {
			return reject(ReasonInvalidValue, "flag_version", "must be >= 0")
		}
	case TypeTrack:
		if r := checkContext(e); r != nil {
			return r
		}
		if r := checkStr("event_key", e.EventKey, MaxKeyLen, true); r != nil {
			return r
		}
		if e.HasValue && !isFinite(e.Value) {
			return reject(ReasonInvalidValue, "value", "must be a finite number")
		}
		if len(e.Properties) > MaxProperties {
			return reject(ReasonTooManyProperties, "properties", "%d properties, at most %d", len(e.Properties), MaxProperties)
		}
		for i := range e.Properties {
			p := &e.Properties[i]
			if r := checkStr("properties", p.Key, MaxPropertyKeyLen, true); r != nil {
				r.Field = "properties"
				if r.Reason == ReasonMissingField {
					r.Reason, r.Message = ReasonInvalidValue, "empty property name"
				}
				return r
			}
			switch p.Kind {
			case PropString:
				if r := checkStr("properties."+p.Key, p.Str, MaxPropertyValLen, false); r != nil {
					return r
				}
			case PropNumber:
				if !isFinite(p.Num) {
					return reject(ReasonInvalidValue, "properties."+p.Key, "must be a finite number")
				}
			case PropBool:
			default:
				return reject(ReasonInvalidValue, "properties."+p.Key, "must be a string, number or boolean")
			}
		}
	case TypeSummary:
		if e.Start <= 0 {
			return reject(ReasonInvalidTimestamp, "start", "must be a positive number of ms since the epoch")
		}
		if e.End < e.Start {
			return reject(ReasonInvalidTimestamp, "end", "window ends before it starts")
		}
		if len(e.Counters) > MaxCounters {
			return reject(ReasonTooManyCounters, "counters", "%d counters, at most %d", len(e.Counters), MaxCounters)
		}
		if r := checkStr("context_kind", e.ContextKind, MaxContextKindLen, false); r != nil {
			return r
		}
		if r := checkStr("context_key", e.ContextKey, MaxKeyLen, false); r != nil {
			return r
		}
		for i := range e.Counters {
			c := &e.Counters[i]
			if r := checkStr("counters.flag_key", c.FlagKey, MaxKeyLen, true); r != nil {
				return r
			}
			if r := checkStr("counters.variation_key", c.VariationKey, MaxKeyLen, false); r != nil {
				return r
			}
			if c.FlagVersion < 0 {
				return reject(ReasonInvalidValue, "counters.flag_version", "must be >= 0")
			}
			if c.Count < 1 {
				return reject(ReasonInvalidValue, "counters.count", "must be >= 1")
			}
		}
	default:
		return reject(ReasonUnknownType, "type", "must be exposure, track or summary")
	}
	return nil
}

// MissingCounters is the rejection of a summary without counters (absent or null). The
// decoders check it, since only they see the difference between absent and empty: the schema
// requires the field but allows an empty array (a window without evaluations, accepted with
// nothing to store), and the Kafka record does not keep that difference.
func MissingCounters() *Reject {
	return reject(ReasonMissingField, "counters", "required for a summary (an empty array if nothing was evaluated)")
}

func checkContext(e *Event) *Reject {
	if r := checkStr("context_kind", e.ContextKind, MaxContextKindLen, true); r != nil {
		return r
	}
	return checkStr("context_key", e.ContextKey, MaxKeyLen, true)
}

// checkStr enforces presence, a length limit in code points, and UTF-8.
func checkStr(field, s string, max int, required bool) *Reject {
	if s == "" {
		if required {
			return reject(ReasonMissingField, field, "required")
		}
		return nil
	}
	if !utf8.ValidString(s) {
		return reject(ReasonInvalidValue, field, "not valid UTF-8")
	}
	if len(s) > max && utf8.RuneCountInString(s) > max {
		return reject(ReasonTooLong, field, "longer than %d characters", max)
	}
	return nil
}

// Normalize shifts e's times by offset (the batch's ClockOffset; ClientTimestamp keeps the
// time as sent), then clamps them into the skew bound around now (ms since the epoch): an
// event time outside it becomes now and Clamped is set; a summary window outside it is shifted
// to end at now, keeping its length, and a window starting before the bound starts at the bound
// (Clamped too): window_start is a partition key, and windows starting in any month of the past
// would make one writer batch span more monthly partitions than ClickHouse takes in one INSERT
// (max_partitions_per_insert_block, 100 by default on current releases). It also merges a summary's duplicate counters (same flag,
// variation and version), so that one summary holds one row per counter key.
func Normalize(e *Event, now, offset int64, skew Skew) {
	lo, hi := now-skew.Past.Milliseconds(), now+skew.Future.Milliseconds()
	e.ClientTimestamp = e.Timestamp
	if offset != 0 {
		e.Timestamp += offset
		if e.Type == TypeSummary {
			e.Start, e.End = e.Start+offset, e.End+offset
		}
	}
	if e.Timestamp < lo || e.Timestamp > hi {
		e.Timestamp = now
		e.Clamped = true
	}
	if e.Type != TypeSummary {
		return
	}
	if e.End < lo || e.End > hi {
		d := e.End - e.Start
		e.End, e.Start = now, now-d
		e.Clamped = true
	}
	if e.Start < lo {
		e.Start = max(lo, 1)
		e.Clamped = true
	}
	if len(e.Counters) > 1 {
		e.Counters = mergeCounters(e.Counters)
	}
}

type counterKey struct {
	flag, variation string
	version         int64
}

func mergeCounters(cs []Counter) []Counter {
	if len(cs) < 16 {
		// Quadratic but allocation-free for the common small summary.
		out := cs[:0]
	outer:
		for _, c := range cs {
			for j := range out {
				if out[j].FlagKey == c.FlagKey && out[j].VariationKey == c.VariationKey && out[j].FlagVersion == c.FlagVersion {
					out[j].Count += c.Count
					continue outer
				}
			}
			out = append(out, c)
		}
		return out
	}
	idx := make(map[counterKey]int, len(cs))
	out := cs[:0]
	for _, c := range cs {
		k := counterKey{c.FlagKey, c.VariationKey, c.FlagVersion}
		if j, ok := idx[k]; ok {
			out[j].Count += c.Count
			continue
		}
		idx[k] = len(out)
		out = append(out, c)
	}
	return out
}
