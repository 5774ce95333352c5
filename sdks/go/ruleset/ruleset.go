// Package ruleset defines the compiled ruleset of one environment: everything an SDK or a relay
// needs to evaluate every flag of that environment. It is the wire contract between the flag
// service (which compiles and publishes it), the relays (which serve it) and every SDK (which
// evaluate it); sdks/spec/ruleset.schema.json describes the same document for other languages.
//
// The package holds the types, their JSON form and their validation. It has no dependencies
// outside the standard library, so that the flag service can validate what users submit with
// exactly the rules the SDKs assume.
package ruleset

import (
	"encoding/json"
	"time"
)

// SchemaVersion is the version of the ruleset document this package reads and writes.
const SchemaVersion = 1

// Ruleset is the compiled configuration of one environment.
type Ruleset struct {
	SchemaVersion int         `json:"schema_version"`
	Environment   Environment `json:"environment"`
	// Version increases monotonically with every published change of the environment.
	Version     int64     `json:"version"`
	GeneratedAt time.Time `json:"generated_at"`
	// Flags holds every non-archived flag, sorted by key.
	Flags []Flag `json:"flags"`
	// Segments holds every segment of the environment, sorted by key.
	Segments []Segment `json:"segments"`
	// SDKKeys are the hashes of the environment's valid SDK keys; relays authenticate with them.
	SDKKeys []SDKKey `json:"sdk_keys,omitempty"`
}

// Environment identifies the environment a ruleset belongs to.
type Environment struct {
	ID         string `json:"id"`
	Key        string `json:"key"`
	Name       string `json:"name,omitempty"`
	ProjectID  string `json:"project_id"`
	ProjectKey string `json:"project_key"`
}

// SDKKey is one SDK key of the environment, by hash only.
type SDKKey struct {
	// Hash is "sha256:" followed by the lowercase hex SHA-256 of the key.
	Hash string  `json:"hash"`
	Kind KeyKind `json:"kind"`
	// ExpiresAt is set while a rotated key is in its grace period.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// KeyKind says what an SDK key may do.
type KeyKind string

// SDK key kinds.
const (
	// KeyServer is secret: it reads the whole ruleset (server-side SDKs).
	KeyServer KeyKind = "server"
	// KeyClient is public and safe in browsers: it may only ask for evaluations of client-side flags.
	KeyClient KeyKind = "client"
)

// FlagKind is the type of a flag's variation values.
type FlagKind string

// Flag kinds.
const (
	KindBoolean FlagKind = "boolean"
	KindString  FlagKind = "string"
	KindNumber  FlagKind = "number"
	KindJSON    FlagKind = "json"
)

// Flag is one flag's configuration in one environment.
type Flag struct {
	Key  string   `json:"key"`
	Kind FlagKind `json:"kind"`
	// Version of this flag's configuration in this environment.
	Version    int64       `json:"version"`
	Variations []Variation `json:"variations"`
	On         bool        `json:"on"`
	// OffVariation is served when the flag is off or a prerequisite fails; empty means the
	// caller's fallback value.
	OffVariation  string         `json:"off_variation,omitempty"`
	Prerequisites []Prerequisite `json:"prerequisites,omitempty"`
	Targets       []Target       `json:"targets,omitempty"`
	Rules         []Rule         `json:"rules,omitempty"`
	Fallthrough   Serve          `json:"fallthrough"`
	// Salt seeds bucketing; empty means the flag key.
	Salt string `json:"salt,omitempty"`
	// ClientSide flags may be evaluated with a client (browser) key.
	ClientSide bool `json:"client_side,omitempty"`
}

// Variation is one value a flag can serve.
type Variation struct {
	Key         string          `json:"key"`
	Value       json.RawMessage `json:"value"`
	Name        string          `json:"name,omitempty"`
	Description string          `json:"description,omitempty"`
}

// Prerequisite requires another flag to serve a given variation before this flag is evaluated.
type Prerequisite struct {
	Flag      string `json:"flag"`
	Variation string `json:"variation"`
}

// Target serves a variation to listed context keys of one context kind.
type Target struct {
	ContextKind string   `json:"context_kind"`
	Variation   string   `json:"variation"`
	Values      []string `json:"values"`
}

// Rule serves when all of its clauses match. Rules are evaluated in order; the first match wins.
type Rule struct {
	ID          string   `json:"id,omitempty"`
	Description string   `json:"description,omitempty"`
	Clauses     []Clause `json:"clauses"`
	Serve       Serve    `json:"serve"`
}

// Clause tests one attribute of one context kind.
type Clause struct {
	// ContextKind is the kind whose attribute is tested; empty means "user".
	ContextKind string   `json:"context_kind,omitempty"`
	Attribute   string   `json:"attribute,omitempty"`
	Op          Operator `json:"op"`
	Values      []any    `json:"values"`
	Negate      bool     `json:"negate,omitempty"`
}

// Operator is a clause's comparison.
type Operator string

// Clause operators. EVALUATION.md in sdks/spec defines their exact semantics.
const (
	OpIn           Operator = "in"
	OpContains     Operator = "contains"
	OpStartsWith   Operator = "starts_with"
	OpEndsWith     Operator = "ends_with"
	OpMatches      Operator = "matches"
	OpLessThan     Operator = "lt"
	OpLessEqual    Operator = "lte"
	OpGreaterThan  Operator = "gt"
	OpGreaterEqual Operator = "gte"
	OpSemverEqual  Operator = "semver_eq"
	OpSemverLess   Operator = "semver_lt"
	OpSemverGreat  Operator = "semver_gt"
	OpBefore       Operator = "before"
	OpAfter        Operator = "after"
	OpSegmentMatch Operator = "segment_match"
)

// Operators lists every operator, in the order of the spec.
var Operators = []Operator{
	OpIn, OpContains, OpStartsWith, OpEndsWith, OpMatches,
	OpLessThan, OpLessEqual, OpGreaterThan, OpGreaterEqual,
	OpSemverEqual, OpSemverLess, OpSemverGreat, OpBefore, OpAfter, OpSegmentMatch,
}

// Serve says what a rule or the fallthrough serves: exactly one of a variation or a rollout.
type Serve struct {
	Variation string   `json:"variation,omitempty"`
	Rollout   *Rollout `json:"rollout,omitempty"`
}

// WeightScale is the sum of a rollout's weights: weights are in units of 1/100000.
const WeightScale = 100000

// Rollout splits contexts between variations by a deterministic hash.
type Rollout struct {
	// ContextKind whose attribute is hashed; empty means "user".
	ContextKind string `json:"context_kind,omitempty"`
	// BucketBy is the attribute hashed; empty means the context key.
	BucketBy string `json:"bucket_by,omitempty"`
	// Salt overrides the flag's salt (experiments carry their own so assignments are independent).
	Salt       string              `json:"salt,omitempty"`
	Variations []WeightedVariation `json:"variations"`
	// ExperimentKey marks the rollout as an experiment's; exposures carry it.
	ExperimentKey string `json:"experiment_key,omitempty"`
}

// WeightedVariation is one variation's share of a rollout.
type WeightedVariation struct {
	Variation string `json:"variation"`
	Weight    int    `json:"weight"`
}

// Segment is a reusable set of contexts of one environment.
type Segment struct {
	Key     string `json:"key"`
	Version int64  `json:"version"`
	// Included and Excluded list context keys per kind. Excluded beats Included, and Included
	// beats Rules.
	Included []SegmentTarget `json:"included,omitempty"`
	Excluded []SegmentTarget `json:"excluded,omitempty"`
	Rules    []SegmentRule   `json:"rules,omitempty"`
}

// SegmentTarget lists context keys of one kind.
type SegmentTarget struct {
	ContextKind string   `json:"context_kind"`
	Values      []string `json:"values"`
}

// SegmentRule matches when all its clauses match. Clauses may use segment_match (nesting).
type SegmentRule struct {
	ID      string   `json:"id,omitempty"`
	Clauses []Clause `json:"clauses"`
}

// DefaultContextKind is the kind assumed where a clause, target or rollout names none.
const DefaultContextKind = "user"

// Flag returns the flag with the given key, or nil.
func (r *Ruleset) Flag(key string) *Flag {
	for i := range r.Flags {
		if r.Flags[i].Key == key {
			return &r.Flags[i]
		}
	}
	return nil
}

// Segment returns the segment with the given key, or nil.
func (r *Ruleset) Segment(key string) *Segment {
	for i := range r.Segments {
		if r.Segments[i].Key == key {
			return &r.Segments[i]
		}
	}
	return nil
}

// Variation returns the variation with the given key, or nil.
func (f *Flag) Variation(key string) *Variation {
	for i := range f.Variations {
		if f.Variations[i].Key == key {
			return &f.Variations[i]
		}
	}
	return nil
}

// EffectiveSalt is the salt bucketing uses for this flag.
func (f *Flag) EffectiveSalt() string {
	if f.Salt != "" {
		return f.Salt
	}
	return f.Key
}
