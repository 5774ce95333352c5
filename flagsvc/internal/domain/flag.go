package domain

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/switchyard-io/switchyard/platform/errs"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// Limits on flag metadata.
const (
	MaxNameLength        = 256
	MaxDescriptionLength = 64 * 1024
	MaxTags              = 50
	MaxTagLength         = 64
)

// ValidateFlag checks a flag definition (not its per-environment configuration).
func ValidateFlag(f *Flag) error {
	if !ruleset.ValidKey(f.Key) {
		return errs.Invalid("key", "must be 1-%d characters of letters, digits, '.', '_' or '-', starting with a letter or digit", ruleset.MaxKeyLength)
	}
	if strings.TrimSpace(f.Name) == "" || len(f.Name) > MaxNameLength {
		return errs.Invalid("name", "is required (at most %d characters)", MaxNameLength)
	}
	if len(f.Description) > MaxDescriptionLength {
		return errs.Invalid("description", "at most %d characters", MaxDescriptionLength)
	}
	if len(f.Tags) > MaxTags {
		return errs.Invalid("tags", "at most %d tags", MaxTags)
	}
	seen := map[string]bool{}
	for i, t := range f.Tags {
		if t == "" || len(t) > MaxTagLength || strings.ContainsAny(t, ", \t\n") {
			return errs.Invalid(fmt.Sprintf("tags[%d]", i), "tags are 1-%d characters without spaces or commas", MaxTagLength)
		}
		if seen[t] {
			return errs.Invalid(fmt.Sprintf("tags[%d]", i), "duplicate tag %q", t)
		}
		seen[t] = true
	}
	switch f.Lifecycle {
	case LifecycleActive, LifecycleDeprecated, LifecycleArchived:
	default:
		return errs.Invalid("lifecycle", "must be active, deprecated or archived")
	}
	if f.RemovalDate != "" {
		if _, err := time.Parse(time.DateOnly, f.RemovalDate); err != nil {
			return errs.Invalid("removal_date", "must be a date YYYY-MM-DD")
		}
		if !f.Temporary {
			return errs.Invalid("removal_date", "only temporary flags have a planned removal date")
		}
	}
	// The kind and variations are checked by the ruleset rules the SDKs rely on.
	probe := ruleset.Flag{Key: f.Key, Kind: f.Kind, Variations: f.Variations, Fallthrough: ruleset.Serve{Variation: firstKey(f.Variations)}}
	if e := ruleset.ValidateFlag(&probe); len(e) > 0 {
		return errs.Invalid(e[0].Field, "%s", e[0].Message)
	}
	return nil
}

func firstKey(vs []ruleset.Variation) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0].Key
}

// DefaultConfig is the configuration a flag gets in a new environment: off, serving the last
// variation when off and the first when on (for booleans conventionally true, false).
func DefaultConfig(f *Flag) FlagConfig {
	c := FlagConfig{Prerequisites: []ruleset.Prerequisite{}, Targets: []ruleset.Target{}, Rules: []ruleset.Rule{}}
	if n := len(f.Variations); n > 0 {
		c.OffVariation = f.Variations[n-1].Key
		c.Fallthrough = ruleset.Serve{Variation: f.Variations[0].Key}
	}
	return c
}

// RulesetFlag combines a flag definition and its configuration in one environment into the
// form SDKs evaluate.
func RulesetFlag(f *Flag, c *FlagConfig, version int64) ruleset.Flag {
	return ruleset.Flag{
		Key:           f.Key,
		Kind:          f.Kind,
		Version:       version,
		Variations:    f.Variations,
		On:            c.On,
		OffVariation:  c.OffVariation,
		Prerequisites: c.Prerequisites,
		Targets:       c.Targets,
		Rules:         c.Rules,
		Fallthrough:   c.Fallthrough,
		Salt:          c.Salt,
		ClientSide:    f.ClientSide,
	}
}

// Normalize fills defaults in a configuration before validation: empty lists instead of nil,
// the default context kind on targets, and generated ids on rules that have none.
func (c *FlagConfig) Normalize() {
	if c.Prerequisites == nil {
		c.Prerequisites = []ruleset.Prerequisite{}
	}
	if c.Targets == nil {
		c.Targets = []ruleset.Target{}
	}
	if c.Rules == nil {
		c.Rules = []ruleset.Rule{}
	}
	for i := range c.Targets {
		if c.Targets[i].ContextKind == "" {
			c.Targets[i].ContextKind = ruleset.DefaultContextKind
		}
	}
	for i := range c.Rules {
		if c.Rules[i].ID == "" {
			c.Rules[i].ID = NewRuleID()
		}
		if c.Rules[i].Clauses == nil {
			c.Rules[i].Clauses = []ruleset.Clause{}
		}
	}
}

// ValidateConfig checks a configuration against its flag's variations with the SDKs' rules.
// References to other flags and segments are checked against the environment by the caller.
func ValidateConfig(f *Flag, c *FlagConfig) error {
	rf := RulesetFlag(f, c, 0)
	if e := ruleset.ValidateFlag(&rf); len(e) > 0 {
		return errs.Invalid(e[0].Field, "%s", e[0].Message)
	}
	return nil
}

// NewRuleID returns a short random rule id.
func NewRuleID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "r_" + string(b)
}

// ConfigJSON marshals a configuration for storage and diffs.
func ConfigJSON(c *FlagConfig) []byte {
	b, err := json.Marshal(c)
	if err != nil {
		panic(fmt.Sprintf("domain: marshal config: %v", err)) // only plain data inside
	}
	return b
}

// Variation returns the flag's variation with the key, or nil.
func (f *Flag) Variation(key string) *ruleset.Variation {
	for i := range f.Variations {
		if f.Variations[i].Key == key {
			return &f.Variations[i]
		}
	}
	return nil
}
