package ruleset

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// FieldError is one validation failure, naming the field by its path from the validated value,
// for example "rules[2].clauses[0].values[1]".
type FieldError struct {
	Field   string
	Message string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Message }

// Errors is a list of validation failures; a nil Errors means valid.
type Errors []FieldError

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// Err returns es as an error, or nil when es is empty.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// Limits that protect evaluators (and the flag service) from pathological configurations.
const (
	MaxKeyLength       = 128
	MaxClauseValues    = 10000
	MaxRegexLength     = 1024
	MaxRulesPerFlag    = 500
	MaxClausesPerRule  = 50
	MaxVariations      = 100
	MaxPrerequisites   = 20
	MaxSaltLength      = 128
	MaxAttributeLength = 256
)

// ValidKey reports whether s may be used as a flag, segment, variation or rule key: 1 to
// MaxKeyLength of [A-Za-z0-9._-], starting with a letter or digit. (A loop, not a regexp: it
// runs for every flag an SDK or relay compiles: 7% of applying a one-flag patch with the regexp.)
func ValidKey(s string) bool {
	if len(s) == 0 || len(s) > MaxKeyLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// ValidContextKind reports whether s may be used as a context kind ("multi" is reserved).
func ValidContextKind(s string) bool {
	return ValidKey(s) && s != "multi" && s != "kind"
}

type collector struct{ errs Errors }

func (c *collector) add(field, format string, args ...any) {
	c.errs = append(c.errs, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// elem is the field name of a list's i-th element, such as "rules[2]".
func elem(list string, i int) string { return list + "[" + strconv.Itoa(i) + "]" }

func join(prefix, field string) string {
	if prefix == "" {
		return field
	}
	if strings.HasPrefix(field, "[") {
		return prefix + field
	}
	return prefix + "." + field
}

// ValidateFlag checks one flag on its own: keys, variation values against the kind, references
// to its own variations, clauses and operators, rollout weights. References to other flags and
// to segments are checked by Ruleset.Validate.
func ValidateFlag(f *Flag) Errors {
	var c collector
	c.flag("", f)
	return c.errs
}

func (c *collector) flag(p string, f *Flag) {
	if !ValidKey(f.Key) {
		c.add(join(p, "key"), "must be 1-%d characters of letters, digits, '.', '_' or '-', starting with a letter or digit", MaxKeyLength)
	}
	switch f.Kind {
	case KindBoolean, KindString, KindNumber, KindJSON:
	default:
		c.add(join(p, "kind"), "must be one of boolean, string, number, json")
	}
	if len(f.Variations) < 2 {
		c.add(join(p, "variations"), "a flag needs at least 2 variations")
	}
	if len(f.Variations) > MaxVariations {
		c.add(join(p, "variations"), "at most %d variations", MaxVariations)
	}
	seen := make(map[string]bool, len(f.Variations))
	for i, v := range f.Variations {
		vp := join(p, elem("variations", i))
		if !ValidKey(v.Key) {
			c.add(join(vp, "key"), "must be 1-%d characters of letters, digits, '.', '_' or '-'", MaxKeyLength)
		} else if seen[v.Key] {
			c.add(join(vp, "key"), "duplicate variation key %q", v.Key)
		}
		seen[v.Key] = true
		if err := CheckValue(f.Kind, v.Value); err != "" {
			c.add(join(vp, "value"), "%s", err)
		}
	}
	variation := func(field, key string, optional bool) {
		if key == "" {
			if !optional {
				c.add(field, "is required")
			}
			return
		}
		if !seen[key] {
			c.add(field, "unknown variation %q", key)
		}
	}
	variation(join(p, "off_variation"), f.OffVariation, true)
	if len(f.Salt) > MaxSaltLength {
		c.add(join(p, "salt"), "at most %d characters", MaxSaltLength)
	}
	if len(f.Prerequisites) > MaxPrerequisites {
		c.add(join(p, "prerequisites"), "at most %d prerequisites", MaxPrerequisites)
	}
	prereqs := map[string]bool{}
	for i, pr := range f.Prerequisites {
		pp := join(p, elem("prerequisites", i))
		switch {
		case !ValidKey(pr.Flag):
			c.add(join(pp, "flag"), "must be a flag key")
		case pr.Flag == f.Key:
			c.add(join(pp, "flag"), "a flag cannot be its own prerequisite")
		case prereqs[pr.Flag]:
			c.add(join(pp, "flag"), "duplicate prerequisite %q", pr.Flag)
		}
		prereqs[pr.Flag] = true
		if !ValidKey(pr.Variation) {
			c.add(join(pp, "variation"), "must be a variation key")
		}
	}
	targeted := map[string]string{}
	for i, t := range f.Targets {
		tp := join(p, elem("targets", i))
		kind := t.ContextKind
		if kind == "" {
			kind = DefaultContextKind
		}
		if !ValidContextKind(kind) {
			c.add(join(tp, "context_kind"), "invalid context kind %q", t.ContextKind)
		}
		variation(join(tp, "variation"), t.Variation, false)
		if len(t.Values) > MaxClauseValues*10 {
			c.add(join(tp, "values"), "at most %d keys per target", MaxClauseValues*10)
		}
		for j, k := range t.Values {
			if k == "" {
				c.add(join(tp, elem("values", j)), "context keys cannot be empty")
				continue
			}
			id := kind + "\x00" + k
			if prev, ok := targeted[id]; ok && prev != t.Variation {
				c.add(join(tp, elem("values", j)), "context %q is already targeted to variation %q", k, prev)
			}
			targeted[id] = t.Variation
		}
	}
	if len(f.Rules) > MaxRulesPerFlag {
		c.add(join(p, "rules"), "at most %d rules", MaxRulesPerFlag)
	}
	ruleIDs := map[string]bool{}
	for i, r := range f.Rules {
		rp := join(p, elem("rules", i))
		if r.ID != "" {
			if !ValidKey(r.ID) {
				c.add(join(rp, "id"), "must be 1-%d characters of letters, digits, '.', '_' or '-'", MaxKeyLength)
			} else if ruleIDs[r.ID] {
				c.add(join(rp, "id"), "duplicate rule id %q", r.ID)
			}
			ruleIDs[r.ID] = true
		}
		c.clauses(rp, r.Clauses)
		c.serve(join(rp, "serve"), r.Serve, seen)
	}
	c.serve(join(p, "fallthrough"), f.Fallthrough, seen)
}

func (c *collector) clauses(p string, clauses []Clause) {
	if len(clauses) == 0 {
		c.add(join(p, "clauses"), "a rule needs at least one clause")
	}
	if len(clauses) > MaxClausesPerRule {
		c.add(join(p, "clauses"), "at most %d clauses per rule", MaxClausesPerRule)
	}
	for j := range clauses {
		c.clause(join(p, elem("clauses", j)), &clauses[j])
	}
}

func (c *collector) serve(p string, s Serve, variations map[string]bool) {
	switch {
	case s.Variation != "" && s.Rollout != nil:
		c.add(p, "serve either a variation or a rollout, not both")
	case s.Variation == "" && s.Rollout == nil:
		c.add(p, "must serve a variation or a rollout")
	case s.Variation != "":
		if !variations[s.Variation] {
			c.add(join(p, "variation"), "unknown variation %q", s.Variation)
		}
	default:
		c.rollout(join(p, "rollout"), s.Rollout, variations)
	}
}

func (c *collector) rollout(p string, r *Rollout, variations map[string]bool) {
	if r.ContextKind != "" && !ValidContextKind(r.ContextKind) {
		c.add(join(p, "context_kind"), "invalid context kind %q", r.ContextKind)
	}
	if len(r.BucketBy) > MaxAttributeLength {
		c.add(join(p, "bucket_by"), "at most %d characters", MaxAttributeLength)
	}
	if len(r.Salt) > MaxSaltLength {
		c.add(join(p, "salt"), "at most %d characters", MaxSaltLength)
	}
	if r.ExperimentKey != "" && !ValidKey(r.ExperimentKey) {
		c.add(join(p, "experiment_key"), "must be a key")
	}
	if len(r.Variations) == 0 {
		c.add(join(p, "variations"), "a rollout needs at least one variation")
		return
	}
	sum := 0
	seen := map[string]bool{}
	for i, wv := range r.Variations {
		wp := join(p, elem("variations", i))
		if !variations[wv.Variation] {
			c.add(join(wp, "variation"), "unknown variation %q", wv.Variation)
		} else if seen[wv.Variation] {
			c.add(join(wp, "variation"), "variation %q appears twice", wv.Variation)
		}
		seen[wv.Variation] = true
		if wv.Weight < 0 || wv.Weight > WeightScale {
			c.add(join(wp, "weight"), "must be between 0 and %d", WeightScale)
		}
		sum += wv.Weight
	}
	if sum != WeightScale {
		c.add(join(p, "variations"), "weights must sum to %d (units of 1/100000), got %d", WeightScale, sum)
	}
}

func (c *collector) clause(p string, cl *Clause) {
	if cl.ContextKind != "" && !ValidContextKind(cl.ContextKind) {
		c.add(join(p, "context_kind"), "invalid context kind %q", cl.ContextKind)
	}
	if cl.Op != OpSegmentMatch && (cl.Attribute == "" || len(cl.Attribute) > MaxAttributeLength) {
		c.add(join(p, "attribute"), "must be 1-%d characters", MaxAttributeLength)
	}
	known := false
	for _, op := range Operators {
		if op == cl.Op {
			known = true
		}
	}
	if !known {
		names := make([]string, len(Operators))
		for i, op := range Operators {
			names[i] = string(op)
		}
		c.add(join(p, "op"), "unknown operator %q (one of %s)", cl.Op, strings.Join(names, ", "))
		return
	}
	if len(cl.Values) == 0 {
		c.add(join(p, "values"), "at least one value is required")
	}
	if len(cl.Values) > MaxClauseValues {
		c.add(join(p, "values"), "at most %d values", MaxClauseValues)
	}
	for i, v := range cl.Values {
		vp := join(p, elem("values", i))
		if msg := CheckClauseValue(cl.Op, v); msg != "" {
			c.add(vp, "%s", msg)
		}
	}
}

// CheckClauseValue returns why v cannot be a value of a clause with operator op, or "".
func CheckClauseValue(op Operator, v any) string {
	switch op {
	case OpIn:
		switch v.(type) {
		case string, float64, bool, json.Number, int, int64:
			return ""
		}
		return "must be a string, number or boolean"
	case OpContains, OpStartsWith, OpEndsWith:
		if _, ok := v.(string); !ok {
			return "must be a string"
		}
	case OpMatches:
		s, ok := v.(string)
		if !ok {
			return "must be a string (an RE2 regular expression)"
		}
		if utf8.RuneCountInString(s) > MaxRegexLength {
			return fmt.Sprintf("regular expressions are limited to %d characters", MaxRegexLength)
		}
		if _, err := regexp.Compile(s); err != nil {
			return "invalid regular expression: " + err.Error()
		}
	case OpLessThan, OpLessEqual, OpGreaterThan, OpGreaterEqual:
		if _, ok := AsNumber(v); !ok {
			return "must be a number"
		}
	case OpSemverEqual, OpSemverLess, OpSemverGreat:
		s, ok := v.(string)
		if !ok {
			return "must be a semantic version string"
		}
		if _, ok := ParseSemver(s); !ok {
			return fmt.Sprintf("%q is not a semantic version", s)
		}
	case OpBefore, OpAfter:
		if _, ok := AsInstant(v); !ok {
			return "must be an RFC 3339 timestamp or a number of milliseconds since the epoch"
		}
	case OpSegmentMatch:
		s, ok := v.(string)
		if !ok || !ValidKey(s) {
			return "must be a segment key"
		}
	}
	return ""
}

// AsNumber converts a JSON number (never a numeric string) to float64.
func AsNumber(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, !math.IsNaN(n) && !math.IsInf(n, 0)
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

// AsInstant converts an RFC 3339 string or a number of milliseconds since the epoch to
// milliseconds since the epoch (fractional, as a float64: any finite number is an instant, so
// no conversion overflows). Strings are strict RFC 3339: Go also accepts a comma before the
// fractional seconds, which RFC 3339 (and other SDKs) do not.
func AsInstant(v any) (float64, bool) {
	if s, ok := v.(string); ok {
		if strings.IndexByte(s, ',') >= 0 {
			return 0, false
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return 0, false
		}
		return float64(t.Unix())*1000 + float64(t.Nanosecond())/1e6, true
	}
	if n, ok := AsNumber(v); ok && !math.IsInf(n, 0) && !math.IsNaN(n) {
		return math.Trunc(n), true // a fractional millisecond is dropped
	}
	return 0, false
}

// CheckValue returns why raw cannot be a variation value of a flag of the given kind, or "".
func CheckValue(kind FlagKind, raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "is required"
	}
	if !json.Valid(raw) {
		return "is not valid JSON"
	}
	switch kind {
	case KindBoolean:
		if s := string(raw); s != "true" && s != "false" {
			return "must be true or false for a boolean flag"
		}
	case KindString:
		if raw[0] != '"' {
			return "must be a string for a string flag"
		}
	case KindNumber:
		if _, err := strconv.ParseFloat(string(raw), 64); err != nil || raw[0] == '"' {
			return "must be a number for a number flag"
		}
	case KindJSON:
		if string(raw) == "null" {
			return "cannot be null"
		}
	}
	return ""
}

// ValidateSegment checks one segment on its own; segment references are checked by
// Ruleset.Validate.
func ValidateSegment(s *Segment) Errors {
	var c collector
	c.segment("", s)
	return c.errs
}

func (c *collector) segment(p string, s *Segment) {
	if !ValidKey(s.Key) {
		c.add(join(p, "key"), "must be 1-%d characters of letters, digits, '.', '_' or '-'", MaxKeyLength)
	}
	for name, list := range map[string][]SegmentTarget{"included": s.Included, "excluded": s.Excluded} {
		for i, t := range list {
			tp := join(p, elem(name, i))
			if !ValidContextKind(t.ContextKind) {
				c.add(join(tp, "context_kind"), "invalid context kind %q", t.ContextKind)
			}
			for j, k := range t.Values {
				if k == "" {
					c.add(join(tp, elem("values", j)), "context keys cannot be empty")
					break
				}
			}
		}
	}
	ids := map[string]bool{}
	for i, r := range s.Rules {
		rp := join(p, elem("rules", i))
		if r.ID != "" {
			if ids[r.ID] {
				c.add(join(rp, "id"), "duplicate rule id %q", r.ID)
			}
			ids[r.ID] = true
		}
		c.clauses(rp, r.Clauses)
	}
}

// Validate checks the whole ruleset: every flag and segment, prerequisites naming existing
// flags and variations, segment_match naming existing segments, and the absence of cycles
// through prerequisites or nested segments.
func (r *Ruleset) Validate() Errors {
	var c collector
	if r.SchemaVersion != SchemaVersion {
		c.add("schema_version", "unsupported schema version %d (this SDK reads %d)", r.SchemaVersion, SchemaVersion)
	}
	flagIdx := map[string]int{}
	for i := range r.Flags {
		fp := elem("flags", i)
		c.flag(fp, &r.Flags[i])
		if _, dup := flagIdx[r.Flags[i].Key]; dup {
			c.add(join(fp, "key"), "duplicate flag key %q", r.Flags[i].Key)
		}
		flagIdx[r.Flags[i].Key] = i
	}
	segIdx := map[string]int{}
	for i := range r.Segments {
		sp := elem("segments", i)
		c.segment(sp, &r.Segments[i])
		if _, dup := segIdx[r.Segments[i].Key]; dup {
			c.add(join(sp, "key"), "duplicate segment key %q", r.Segments[i].Key)
		}
		segIdx[r.Segments[i].Key] = i
	}
	checkSegmentRefs := func(p string, clauses []Clause) {
		for j, cl := range clauses {
			if cl.Op != OpSegmentMatch {
				continue
			}
			for k, v := range cl.Values {
				if s, ok := v.(string); ok {
					if _, found := segIdx[s]; !found {
						c.add(fmt.Sprintf("%s.clauses[%d].values[%d]", p, j, k), "unknown segment %q", s)
					}
				}
			}
		}
	}
	for i := range r.Flags {
		f := &r.Flags[i]
		for j, pr := range f.Prerequisites {
			pp := fmt.Sprintf("flags[%d].prerequisites[%d]", i, j)
			pi, ok := flagIdx[pr.Flag]
			if !ok {
				c.add(pp+".flag", "unknown flag %q", pr.Flag)
				continue
			}
			if r.Flags[pi].Variation(pr.Variation) == nil {
				c.add(pp+".variation", "flag %q has no variation %q", pr.Flag, pr.Variation)
			}
		}
		for j := range f.Rules {
			checkSegmentRefs(fmt.Sprintf("flags[%d].rules[%d]", i, j), f.Rules[j].Clauses)
		}
	}
	for i := range r.Segments {
		for j := range r.Segments[i].Rules {
			checkSegmentRefs(fmt.Sprintf("segments[%d].rules[%d]", i, j), r.Segments[i].Rules[j].Clauses)
		}
	}
	if cycle := PrerequisiteCycle(r.Flags); cycle != nil {
		c.add(fmt.Sprintf("flags[%d].prerequisites", flagIdx[cycle[0]]), "prerequisites form a cycle: %s", strings.Join(cycle, " -> "))
	}
	if cycle := SegmentCycle(r.Segments); cycle != nil {
		c.add(fmt.Sprintf("segments[%d].rules", segIdx[cycle[0]]), "segments form a cycle: %s", strings.Join(cycle, " -> "))
	}
	for i, k := range r.SDKKeys {
		kp := elem("sdk_keys", i)
		if !strings.HasPrefix(k.Hash, "sha256:") || len(k.Hash) != len("sha256:")+64 {
			c.add(kp+".hash", "must be sha256: followed by 64 hex digits")
		}
		if k.Kind != KeyServer && k.Kind != KeyClient {
			c.add(kp+".kind", "must be server or client")
		}
	}
	return c.errs
}

// PrerequisiteCycle returns a cycle through prerequisites (first key repeated at the end), or nil.
func PrerequisiteCycle(flags []Flag) []string {
	edges := make(map[string][]string, len(flags))
	for _, f := range flags {
		for _, p := range f.Prerequisites {
			edges[f.Key] = append(edges[f.Key], p.Flag)
		}
	}
	return FindCycle(edges)
}

// SegmentCycle returns a cycle through nested segment_match clauses, or nil.
func SegmentCycle(segments []Segment) []string {
	edges := make(map[string][]string, len(segments))
	for _, s := range segments {
		for _, r := range s.Rules {
			for _, cl := range r.Clauses {
				if cl.Op != OpSegmentMatch {
					continue
				}
				for _, v := range cl.Values {
					if k, ok := v.(string); ok {
						edges[s.Key] = append(edges[s.Key], k)
					}
				}
			}
		}
	}
	return FindCycle(edges)
}

// FindCycle returns one cycle of the directed graph (its first node repeated at the end), or
// nil. Nodes are visited in sorted order, so the answer is deterministic.
func FindCycle(edges map[string][]string) []string {
	const (
		unvisited = iota
		inProgress
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(n string) []string
	visit = func(n string) []string {
		state[n] = inProgress
		stack = append(stack, n)
		for _, m := range edges[n] {
			switch state[m] {
			case inProgress:
				for i, s := range stack {
					if s == m {
						return append(append([]string{}, stack[i:]...), m)
					}
				}
			case unvisited:
				if c := visit(m); c != nil {
					return c
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
		return nil
	}
	nodes := make([]string, 0, len(edges))
	for n := range edges {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	for _, n := range nodes {
		if state[n] == unvisited {
			if c := visit(n); c != nil {
				return c
			}
		}
	}
	return nil
}
