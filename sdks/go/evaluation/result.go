package evaluation

import (
	"encoding/json"

	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// Reason says why an evaluation served what it served. The names follow OpenFeature's resolution
// reasons, plus PREREQUISITE_FAILED (a custom reason, which OpenFeature allows).
type Reason string

// Reasons (sdks/spec/EVALUATION.md, "Reasons").
const (
	// ReasonDisabled: the flag is off; its off variation (or the fallback) was served.
	ReasonDisabled Reason = "DISABLED"
	// ReasonPrerequisiteFailed: a prerequisite was not met; the off variation (or the fallback)
	// was served.
	ReasonPrerequisiteFailed Reason = "PREREQUISITE_FAILED"
	// ReasonTargetingMatch: an individual target, or a rule serving a fixed variation, matched.
	ReasonTargetingMatch Reason = "TARGETING_MATCH"
	// ReasonSplit: a rollout (from a rule or the fallthrough) picked the variation.
	ReasonSplit Reason = "SPLIT"
	// ReasonDefault: no target or rule matched and the fallthrough serves a fixed variation.
	ReasonDefault Reason = "DEFAULT"
	// ReasonError: the evaluation failed; ErrorCode says why and the fallback was served.
	ReasonError Reason = "ERROR"
)

// ErrorCode qualifies an ERROR result. The names follow OpenFeature's error codes.
type ErrorCode string

// Error codes.
const (
	// ErrorFlagNotFound: no flag with that key in the ruleset (archived flags are absent too).
	ErrorFlagNotFound ErrorCode = "FLAG_NOT_FOUND"
	// ErrorTypeMismatch: the caller asked for a type other than the flag's kind.
	ErrorTypeMismatch ErrorCode = "TYPE_MISMATCH"
	// ErrorParse: the flag's configuration (or a segment it uses) is malformed.
	ErrorParse ErrorCode = "PARSE_ERROR"
	// ErrorTargetingKeyMissing: the context, or one of its kinds, has no key.
	ErrorTargetingKeyMissing ErrorCode = "TARGETING_KEY_MISSING"
	// ErrorInvalidContext: the context is not a valid context (bad kind, bad JSON, ...).
	ErrorInvalidContext ErrorCode = "INVALID_CONTEXT"
	// ErrorProviderNotReady: a client has no ruleset yet (never produced by this package).
	ErrorProviderNotReady ErrorCode = "PROVIDER_NOT_READY"
	// ErrorGeneral: anything else.
	ErrorGeneral ErrorCode = "GENERAL"
)

// Result is the outcome of evaluating one flag for one context. It is small and refers to the
// compiled ruleset's data, so evaluation does not allocate; treat it as read-only.
type Result struct {
	// Variation is the served variation, or nil when the caller's fallback value is to be served
	// (on any error, and when a flag is off or failed a prerequisite without an off variation).
	Variation *Variation
	Reason    Reason
	// ErrorCode is set when Reason is ERROR.
	ErrorCode ErrorCode
	// RuleIndex is the index of the matching rule, or -1 (targets, fallthrough, off, errors).
	RuleIndex int

	flag         *flag // nil when the flag was not found
	aux          int   // target index (individual target) or prerequisite index (PREREQUISITE_FAILED)
	inExperiment bool  // a rollout bucketed the context by its attribute
}

// FlagKey returns the evaluated flag's key; empty when the flag was not found.
func (r Result) FlagKey() string {
	if r.flag == nil {
		return ""
	}
	return r.flag.key
}

// FlagKind returns the flag's kind; empty when the flag was not found.
func (r Result) FlagKind() ruleset.FlagKind {
	if r.flag == nil {
		return ""
	}
	return r.flag.kind
}

// FlagVersion returns the flag's version; 0 when the flag was not found.
func (r Result) FlagVersion() int64 {
	if r.flag == nil {
		return 0
	}
	return r.flag.version
}

// RuleID returns the id of the matching rule, if a rule matched and has one.
func (r Result) RuleID() string {
	if r.flag == nil || r.RuleIndex < 0 {
		return ""
	}
	return r.flag.rules[r.RuleIndex].id
}

func (r Result) rollout() *rollout {
	if r.flag == nil || r.Reason != ReasonSplit {
		return nil
	}
	if r.RuleIndex >= 0 {
		return r.flag.rules[r.RuleIndex].serve.rollout
	}
	return r.flag.fallback.rollout
}

// ExperimentKey returns the serving rollout's experiment key, set only when the context could be
// bucketed by the rollout's attribute (so it belongs in the experiment's analysis).
func (r Result) ExperimentKey() string {
	if ro := r.rollout(); ro != nil && r.inExperiment {
		return ro.experimentKey
	}
	return ""
}

// ContextKind returns the context kind that decided the result: the rollout's kind for SPLIT, the
// target's kind for an individual target; empty otherwise. Exposure events are attributed to it.
func (r Result) ContextKind() string {
	if ro := r.rollout(); ro != nil {
		return ro.kind
	}
	if r.flag != nil && r.Reason == ReasonTargetingMatch && r.RuleIndex < 0 {
		return r.flag.targets[r.aux].kind
	}
	return ""
}

// PrerequisiteKey returns the key of the first prerequisite not met (PREREQUISITE_FAILED).
func (r Result) PrerequisiteKey() string {
	if r.flag == nil || r.Reason != ReasonPrerequisiteFailed {
		return ""
	}
	return r.flag.prereqs[r.aux].key
}

// VariationKey returns the served variation's key, or "" when the fallback is served.
func (r Result) VariationKey() string {
	if r.Variation == nil {
		return ""
	}
	return r.Variation.Key
}

// VariationIndex returns the served variation's index in the flag's variations, or -1.
func (r Result) VariationIndex() int {
	if r.Variation == nil {
		return -1
	}
	return r.Variation.Index
}

// Value returns the served variation's value as JSON, or nil when the fallback is served.
func (r Result) Value() json.RawMessage {
	if r.Variation == nil {
		return nil
	}
	return r.Variation.Value
}

// IsError reports whether the evaluation failed.
func (r Result) IsError() bool { return r.Reason == ReasonError }

// Variation is one compiled variation of a flag. The typed fields hold the decoded value for
// boolean, number and string flags, so typed evaluation needs no decoding.
type Variation struct {
	Index int
	Key   string
	// Value is the variation's value as compact JSON.
	Value  json.RawMessage
	Bool   bool
	Number float64
	String string
}

// Decode returns the value decoded as encoding/json would (a fresh copy on every call).
func (v *Variation) Decode() any {
	if out, ok := decodeValue(v.Value); ok {
		return out
	}
	var out any
	_ = json.Unmarshal(v.Value, &out) // compiled values are valid JSON
	return out
}

func errorResult(code ErrorCode) Result {
	return Result{Reason: ReasonError, ErrorCode: code, RuleIndex: -1}
}
