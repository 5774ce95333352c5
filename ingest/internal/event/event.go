// Package event owns the SDK event model of the pipeline: the three event types of
// sdks/spec/events.schema.json (exposure, track, summary), their validation rules and reject
// reasons, the clock-skew clamp, and the compact binary form in which a validated event travels
// on the switchyard.events Kafka topic from the collector to the ClickHouse writer.
//
// It knows nothing of HTTP, Kafka clients or SQL: decoders (JSON here, Arrow in package
// arrowdec) produce Events, Validate checks them, and the Record codec turns them into bytes.
package event

import "math"

// Type is an event's type.
type Type uint8

// Event types, as on the wire ("exposure", "track", "summary").
const (
	TypeExposure Type = 1
	TypeTrack    Type = 2
	TypeSummary  Type = 3
)

func (t Type) String() string {
	switch t {
	case TypeExposure:
		return "exposure"
	case TypeTrack:
		return "track"
	case TypeSummary:
		return "summary"
	}
	return "unknown"
}

// ParseType maps a wire type name to a Type (0 when unknown).
func ParseType(s string) Type {
	switch s {
	case "exposure":
		return TypeExposure
	case "track":
		return TypeTrack
	case "summary":
		return TypeSummary
	}
	return 0
}

// Event is one SDK event, decoded from JSON or Arrow. Fields that do not belong to the event's
// type are empty.
type Event struct {
	ID   [16]byte
	Type Type
	// Timestamp is the event time in ms since the epoch; Normalize clamps it into the skew bound.
	Timestamp int64
	// ClientTimestamp is the timestamp as the SDK sent it (differs from Timestamp when Clamped).
	ClientTimestamp int64
	Clamped         bool

	ContextKind string
	ContextKey  string
	SDKName     string
	SDKVersion  string

	// exposure
	FlagKey       string
	VariationKey  string
	FlagVersion   int64
	Reason        string
	RuleID        string
	ExperimentKey string

	// track
	EventKey   string
	Value      float64
	HasValue   bool
	Properties []Property

	// summary
	Start    int64
	End      int64
	Counters []Counter
}

// PropertyKind is the JSON type of a track property value.
type PropertyKind uint8

// Property kinds.
const (
	PropString PropertyKind = 1
	PropNumber PropertyKind = 2
	PropBool   PropertyKind = 3
)

func (k PropertyKind) String() string {
	switch k {
	case PropString:
		return "string"
	case PropNumber:
		return "number"
	case PropBool:
		return "bool"
	}
	return "unknown"
}

// Property is one flat track property.
type Property struct {
	Key  string
	Kind PropertyKind
	Str  string
	Num  float64
	Bool bool
}

// Text is the property's value as ClickHouse stores it: the string itself, the shortest
// decimal form of a number, or "true"/"false".
func (p Property) Text() string {
	switch p.Kind {
	case PropNumber:
		return formatFloat(p.Num)
	case PropBool:
		if p.Bool {
			return "true"
		}
		return "false"
	}
	return p.Str
}

// Counter is one flag x variation evaluation count of a summary.
type Counter struct {
	FlagKey      string
	VariationKey string
	FlagVersion  int64
	Count        int64
}

// Limits of the wire format (events.schema.json). Lengths count Unicode code points, as JSON
// Schema's maxLength does.
const (
	MaxKeyLen          = 256 // context_key, flag_key, variation_key, event_key
	MaxContextKindLen  = 128
	MaxSDKFieldLen     = 64
	MaxReasonLen       = 64
	MaxRuleIDLen       = 128
	MaxExperimentLen   = 128
	MaxProperties      = 50
	MaxPropertyKeyLen  = 128
	MaxPropertyValLen  = 1024
	MaxCounters        = 10000
	MaxEncodedEventLen = 512 << 10 // one event's Kafka record; keeps records under the broker's 1 MiB default
)

func isFinite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
