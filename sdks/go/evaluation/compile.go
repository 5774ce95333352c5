package evaluation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/switchyard-io/switchyard/sdks/go/murmur3"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// Errors returned by CompileJSON and Compile. Problems confined to one flag or segment are not
// errors: they make that flag evaluate to ERROR/PARSE_ERROR and are listed by Problems.
var (
	// ErrMalformedRuleset is returned when the document is not a JSON object with "flags" and
	// "segments" arrays (or the ruleset given to Compile is nil).
	ErrMalformedRuleset = errors.New("malformed ruleset")
	// ErrUnsupportedSchema is returned when schema_version is not ruleset.SchemaVersion.
	ErrUnsupportedSchema = errors.New("unsupported ruleset schema version")
)

// Ruleset is a compiled ruleset: every flag and segment of one environment, with variation
// lookups resolved, salts prefixed, regular expressions compiled and target lists turned into
// sets, so that Evaluate neither allocates nor locks. A Ruleset is immutable and safe for
// concurrent use; to update, compile a new one and swap the pointer.
type Ruleset struct {
	version     int64
	env         ruleset.Environment
	generatedAt time.Time
	flags       map[string]*flag
	// over holds the flags patches changed, added (and, with a nil value, deleted) since flags was
	// built, which then stays shared with the ruleset patched: a patch copies this short map,
	// not every flag (see patchFlags). Read flags through flag(key).
	over     map[string]*flag
	keys     []string // sorted
	problems []Problem
	// The decoded flags and segments, in document order (only for rulesets compiled from JSON):
	// a patch replaces some of them and the rest are compiled again without being decoded again.
	flagSrc []*flagSource
	segSrc  []*segmentSource
	// srcOver holds, by position in flagSrc, the sources patches replaced since flagSrc was
	// built, which then stays shared with the ruleset patched: a patch copies this short map,
	// not every flag's source (see mergeFlagSources). Read the sources through flagSources.
	srcOver map[int]*flagSource
	// srcIndex finds a flag's position in flagSrc.
	srcIndex *sourceIndex
	// segments are the compiled segments the flags point at.
	segments map[string]*segment
	// prerequisites holds the keys other flags name as a prerequisite (nil when none do).
	prerequisites map[string]bool
	// patched lists, sorted, the flags a patch changed, added or deleted when every other flag
	// was carried over from the ruleset of version patchedFrom (0: not such a patch).
	patchedFrom int64
	patched     []string
}

// Problem is one flag or segment that could not be compiled; flags affected by it evaluate to
// ERROR with PARSE_ERROR while the rest of the ruleset evaluates normally.
type Problem struct {
	// Flag or Segment names what is malformed (exactly one is set).
	Flag    string
	Segment string
	// Index is the position in the ruleset's flags or segments array, or -1.
	Index   int
	Message string
}

func (p Problem) String() string {
	if p.Segment != "" {
		return fmt.Sprintf("segment %q: %s", p.Segment, p.Message)
	}
	return fmt.Sprintf("flag %q: %s", p.Flag, p.Message)
}

// Version returns the ruleset's version (monotonically increasing per environment).
func (r *Ruleset) Version() int64 { return r.version }

// Environment returns the environment the ruleset belongs to.
func (r *Ruleset) Environment() ruleset.Environment { return r.env }

// GeneratedAt returns when the flag service generated the ruleset (zero when absent).
func (r *Ruleset) GeneratedAt() time.Time { return r.generatedAt }

// Problems lists the malformed flags and segments, in document order.
func (r *Ruleset) Problems() []Problem { return slices.Clone(r.problems) }

// flag returns the compiled flag with the given key, or nil.
func (r *Ruleset) flag(key string) *flag {
	if r.over != nil {
		if f, ok := r.over[key]; ok {
			return f
		}
	}
	return r.flags[key]
}

// FlagKeys returns the keys of every flag, sorted.
func (r *Ruleset) FlagKeys() []string { return slices.Clone(r.keys) }

// ClientSideFlagKeys returns the keys of the flags marked client_side, sorted: the only flags a
// client (browser) key may evaluate.
func (r *Ruleset) ClientSideFlagKeys() []string {
	var out []string
	for _, k := range r.keys {
		if r.flag(k).clientSide {
			out = append(out, k)
		}
	}
	return out
}

// FlagInfo describes one flag of a compiled ruleset.
type FlagInfo struct {
	Key        string
	Kind       ruleset.FlagKind
	Version    int64
	ClientSide bool
	// Malformed flags evaluate to ERROR with PARSE_ERROR.
	Malformed bool
}

// Flag describes the flag with the given key.
func (r *Ruleset) Flag(key string) (FlagInfo, bool) {
	if r == nil {
		return FlagInfo{}, false
	}
	f := r.flag(key)
	if f == nil {
		return FlagInfo{}, false
	}
	return FlagInfo{Key: f.key, Kind: f.kind, Version: f.version, ClientSide: f.clientSide, Malformed: f.malformed}, true
}

type flagSource struct {
	key  string
	flag *ruleset.Flag // nil when it could not be decoded
	err  string
}

type segmentSource struct {
	key string
	seg *ruleset.Segment
	err string
}

// CompileJSON decodes and compiles a ruleset document (sdks/spec/ruleset.schema.json). It fails
// only when the document as a whole is unusable; a flag or segment that does not decode or
// validate is compiled as malformed and reported by Problems. Unknown fields are ignored, so that
// older SDKs can read rulesets from newer flag services.
func CompileJSON(data []byte) (*Ruleset, error) {
	d, err := decodeDocument(data)
	if err != nil {
		return nil, err
	}
	if err := checkSchema(d.schemaVersion); err != nil {
		return nil, err
	}
	if d.flags == nil || d.segments == nil {
		return nil, fmt.Errorf("%w: flags and segments are required", ErrMalformedRuleset)
	}
	r := &Ruleset{version: d.version, env: d.env, generatedAt: d.generatedAt}
	r.compile(*d.flags, *d.segments)
	r.flagSrc, r.segSrc = *d.flags, *d.segments // kept so that PatchJSON decodes only what changed
	r.srcIndex = &sourceIndex{src: r.flagSrc}
	return r, nil
}

func checkSchema(v *int) error {
	if v == nil || *v != ruleset.SchemaVersion {
		got := "none"
		if v != nil {
			got = fmt.Sprint(*v)
		}
		return fmt.Errorf("%w: %s (this SDK reads %d)", ErrUnsupportedSchema, got, ruleset.SchemaVersion)
	}
	return nil
}

// document is a decoded ruleset or patch (the patch fields are empty in a ruleset).
type document struct {
	schemaVersion   *int
	env             ruleset.Environment
	version         int64
	baseVersion     *int64
	generatedAt     time.Time
	flags           *[]*flagSource
	segments        *[]*segmentSource
	deletedFlags    []string
	deletedSegments []string
}

// wireDocument is a ruleset or patch document as it decodes: E, F and S are the types the
// environment, flags and segments decode into (their own, or json.RawMessage to decode them one
// by one).
type wireDocument[E, F, S any] struct {
	SchemaVersion   *int            `json:"schema_version"`
	Environment     E               `json:"environment"`
	Version         int64           `json:"version"`
	BaseVersion     *int64          `json:"base_version"`
	GeneratedAt     json.RawMessage `json:"generated_at"`
	Flags           *[]F            `json:"flags"`
	Segments        *[]S            `json:"segments"`
	DeletedFlags    []string        `json:"deleted_flags"`
	DeletedSegments []string        `json:"deleted_segments"`
}

// document is the fields of w that need no decoding of their own.
func (w *wireDocument[E, F, S]) document() document {
	return document{schemaVersion: w.SchemaVersion, version: w.Version, baseVersion: w.BaseVersion,
		generatedAt: generatedAt(w.GeneratedAt), deletedFlags: w.DeletedFlags, deletedSegments: w.DeletedSegments}
}

// sources makes one source of each item (nil for a nil list); source gets a pointer into items.
func sources[T, S any](items *[]T, source func(*T) S) *[]S {
	if items == nil {
		return nil
	}
	out := make([]S, len(*items))
	for i := range *items {
		out[i] = source(&(*items)[i])
	}
	return &out
}

func typedFlag(f *ruleset.Flag) *flagSource          { return &flagSource{key: f.Key, flag: f} }
func typedSegment(s *ruleset.Segment) *segmentSource { return &segmentSource{key: s.Key, seg: s} }

// decodeDocument decodes a ruleset or patch document. Well-formed documents (nearly all) are
// decoded in one pass, by decodeTyped or, for what it does not handle, encoding/json; when that
// fails, the flags and segments are decoded one by one, so that one that does not decode is
// isolated (compiled as malformed) instead of failing the document.
func decodeDocument(data []byte) (document, error) {
	var typed typedDocument
	ok := decodeTyped(data, &typed)
	if !ok {
		typed = typedDocument{} // decodeTyped may have stopped halfway
		ok = json.Unmarshal(data, &typed) == nil
	}
	if ok {
		d := typed.document()
		d.env = typed.Environment
		d.flags, d.segments = sources(typed.Flags, typedFlag), sources(typed.Segments, typedSegment)
		return d, nil
	}
	var w wireDocument[json.RawMessage, json.RawMessage, json.RawMessage]
	if err := json.Unmarshal(data, &w); err != nil {
		return document{}, fmt.Errorf("%w: %v", ErrMalformedRuleset, err)
	}
	d := w.document()
	if len(w.Environment) > 0 {
		if err := json.Unmarshal(w.Environment, &d.env); err != nil {
			return document{}, fmt.Errorf("%w: environment: %v", ErrMalformedRuleset, err)
		}
	}
	d.flags = sources(w.Flags, func(raw *json.RawMessage) *flagSource { return decodeFlag(*raw) })
	d.segments = sources(w.Segments, func(raw *json.RawMessage) *segmentSource { return decodeSegment(*raw) })
	return d, nil
}

// generatedAt reads the informational generation time; anything unreadable is the zero time.
func generatedAt(raw json.RawMessage) time.Time {
	var t time.Time
	// What json.Unmarshal does with a time.Time (the document was checked to be valid JSON).
	if len(raw) > 0 && !bytes.Equal(raw, []byte("null")) && t.UnmarshalJSON(raw) != nil {
		return time.Time{}
	}
	return t
}

// decodeFlag decodes one flag; one that does not decode keeps its key (if readable) and the error.
func decodeFlag(raw json.RawMessage) *flagSource {
	f := new(ruleset.Flag)
	if err := json.Unmarshal(raw, f); err != nil {
		return &flagSource{key: keyOf(raw), err: "does not decode: " + err.Error()}
	}
	return &flagSource{key: f.Key, flag: f}
}

// decodeSegment decodes one segment like decodeFlag.
func decodeSegment(raw json.RawMessage) *segmentSource {
	s := new(ruleset.Segment)
	if err := json.Unmarshal(raw, s); err != nil {
		return &segmentSource{key: keyOf(raw), err: "does not decode: " + err.Error()}
	}
	return &segmentSource{key: s.Key, seg: s}
}

// keyOf reads the "key" of a flag or segment that does not decode as a whole ("" if unreadable).
func keyOf(raw json.RawMessage) string {
	var k struct {
		Key string `json:"key"`
	}
	_ = json.Unmarshal(raw, &k)
	return k.Key
}

// Compile compiles a decoded ruleset. Like CompileJSON it only fails for an unusable ruleset
// (nil, or an unsupported schema version); malformed flags and segments are reported by Problems.
// The compiled ruleset does not keep references to rs.
func Compile(rs *ruleset.Ruleset) (*Ruleset, error) {
	if rs == nil {
		return nil, fmt.Errorf("%w: nil ruleset", ErrMalformedRuleset)
	}
	if rs.SchemaVersion != ruleset.SchemaVersion {
		return nil, fmt.Errorf("%w: %d (this SDK reads %d)", ErrUnsupportedSchema, rs.SchemaVersion, ruleset.SchemaVersion)
	}
	r := &Ruleset{version: rs.Version, env: rs.Environment, generatedAt: rs.GeneratedAt}
	r.compile(*sources(&rs.Flags, typedFlag), *sources(&rs.Segments, typedSegment))
	return r, nil
}

// --- compiled form ---

type flag struct {
	key        string
	kind       ruleset.FlagKind
	version    int64
	clientSide bool
	malformed  bool
	on         bool
	variations []Variation
	off        int // index of the off variation, or -1 for the caller's fallback
	prereqs    []prereq
	targets    []target
	rules      []rule
	fallback   serve // the fallthrough
	// segments fingerprints the versions of every segment the flag uses, directly or nested, so
	// ChangedFlags can tell that a segment edit changed the flag's behaviour.
	segments uint64
}

type prereq struct {
	key       string
	flag      *flag // nil when the ruleset has no such flag
	variation int   // index in flag.variations, or -1 when that flag has no such variation
}

type target struct {
	kind      string
	keys      keySet
	variation int
}

type rule struct {
	id      string
	clauses []clause
	serve   serve
}

type serve struct {
	variation int // -1 when rollout is set
	rollout   *rollout
}

type rollout struct {
	kind          string
	bucketBy      string         // "" means the context key
	prefix        murmur3.Prefix // the hash state after salt + "."
	experimentKey string
	cumulative    []int // running sums of the weights
	variations    []int // variation indices, parallel to cumulative
}

// opCode is an operator as a small integer, so matching switches on a jump table instead of
// comparing operator strings.
type opCode uint8

const (
	opIn opCode = iota
	opContains
	opStartsWith
	opEndsWith
	opMatches
	opLessThan
	opLessEqual
	opGreaterThan
	opGreaterEqual
	opSemverEqual
	opSemverLess
	opSemverGreat
	opBefore
	opAfter
	opSegmentMatch
)

var opCodes = map[ruleset.Operator]opCode{
	ruleset.OpIn: opIn, ruleset.OpContains: opContains, ruleset.OpStartsWith: opStartsWith, ruleset.OpEndsWith: opEndsWith,
	ruleset.OpMatches: opMatches, ruleset.OpLessThan: opLessThan, ruleset.OpLessEqual: opLessEqual,
	ruleset.OpGreaterThan: opGreaterThan, ruleset.OpGreaterEqual: opGreaterEqual, ruleset.OpSemverEqual: opSemverEqual,
	ruleset.OpSemverLess: opSemverLess, ruleset.OpSemverGreat: opSemverGreat, ruleset.OpBefore: opBefore,
	ruleset.OpAfter: opAfter, ruleset.OpSegmentMatch: opSegmentMatch,
}

type clause struct {
	kind     string
	attr     string
	isKey    bool // attr is "key": the context key
	code     opCode
	negate   bool
	strs     keySet   // in
	list     []string // contains, starts_with, ends_with
	nums     []float64
	hasTrue  bool
	hasFalse bool
	regexps  []*regexp.Regexp
	semvers  []ruleset.Semver
	instants []float64 // before/after: milliseconds since the epoch
	segments []*segment
}

type segment struct {
	key       string
	version   int64
	malformed bool
	included  []target // variation unused
	excluded  []target
	rules     [][]clause
}

// keySet is a set of strings: a slice while small (a scan beats hashing), a map when large.
type keySet struct {
	small []string
	large map[string]struct{}
}

const smallSet = 8

func newKeySet(values []string) keySet {
	if len(values) <= smallSet {
		return keySet{small: slices.Clone(values)}
	}
	m := make(map[string]struct{}, len(values))
	for _, v := range values {
		m[v] = struct{}{}
	}
	return keySet{large: m}
}

func (s *keySet) has(v string) bool {
	if s.large != nil {
		_, ok := s.large[v]
		return ok
	}
	for _, x := range s.small {
		if x == v {
			return true
		}
	}
	return false
}

func (r *Ruleset) problem(p Problem) { r.problems = append(r.problems, p) }

// newFlag compiles one decoded flag (without its prerequisites, which point at other compiled
// flags). A flag that is not well-formed comes back malformed, with the problem.
func newFlag(src *flagSource, segments map[string]*segment) (*flag, string) {
	f := &flag{key: src.key, off: -1}
	if src.flag == nil {
		f.malformed = true
		return f, src.err
	}
	f.kind, f.version, f.clientSide = src.flag.Kind, src.flag.Version, src.flag.ClientSide
	if errs := ruleset.ValidateFlag(src.flag); len(errs) > 0 {
		f.malformed = true
		return f, errs.Error()
	}
	if err := f.compile(src.flag, segments); err != nil {
		f.malformed = true
		return f, err.Error()
	}
	return f, ""
}

func (r *Ruleset) compile(flagSrc []*flagSource, segSrc []*segmentSource) {
	segments := r.compileSegments(segSrc)
	r.segments = segments
	r.flags = make(map[string]*flag, len(flagSrc))
	dup := map[string]bool{}
	order := make([]*flag, 0, len(flagSrc))
	sources := map[*flag]*ruleset.Flag{}
	for i, src := range flagSrc {
		if !ruleset.ValidKey(src.key) {
			r.problem(Problem{Flag: src.key, Index: i, Message: "flag without a valid key is ignored"})
			continue
		}
		if _, seen := r.flags[src.key]; seen {
			dup[src.key] = true
			r.problem(Problem{Flag: src.key, Index: i, Message: "duplicate flag key"})
			continue
		}
		f, problem := newFlag(src, segments)
		r.flags[src.key] = f
		order = append(order, f)
		if problem != "" {
			r.problem(Problem{Flag: src.key, Index: i, Message: problem})
			continue
		}
		sources[f] = src.flag
	}
	for k := range dup {
		r.flags[k].malformed = true
	}
	// Prerequisites point at compiled flags; a flag on a prerequisite cycle is malformed.
	edges := map[string][]string{}
	for _, f := range order {
		src := sources[f]
		if src == nil {
			continue
		}
		for _, p := range src.Prerequisites {
			pf := r.flags[p.Flag]
			pr := prereq{key: p.Flag, flag: pf, variation: -1}
			if pf != nil {
				pr.variation = slices.IndexFunc(pf.variations, func(v Variation) bool { return v.Key == p.Variation })
			}
			f.prereqs = append(f.prereqs, pr)
			edges[f.key] = append(edges[f.key], p.Flag)
			if r.prerequisites == nil {
				r.prerequisites = map[string]bool{}
			}
			r.prerequisites[p.Flag] = true
		}
	}
	for _, k := range onCycles(edges) {
		if f := r.flags[k]; f != nil && !f.malformed {
			f.malformed = true
			r.problem(Problem{Flag: k, Index: -1, Message: "prerequisites form a cycle"})
		}
	}
	for _, f := range r.flags {
		f.segments = segmentFingerprint(f)
	}
	r.keys = make([]string, 0, len(r.flags))
	for k := range r.flags {
		r.keys = append(r.keys, k)
	}
	slices.Sort(r.keys)
}

func (r *Ruleset) compileSegments(src []*segmentSource) map[string]*segment {
	segments := make(map[string]*segment, len(src))
	sources := map[*segment]*ruleset.Segment{}
	for i, s := range src {
		if !ruleset.ValidKey(s.key) {
			r.problem(Problem{Segment: s.key, Index: i, Message: "segment without a valid key is ignored"})
			continue
		}
		if prev, seen := segments[s.key]; seen {
			prev.malformed = true
			r.problem(Problem{Segment: s.key, Index: i, Message: "duplicate segment key"})
			continue
		}
		seg := &segment{key: s.key}
		segments[s.key] = seg
		if s.seg != nil {
			seg.version = s.seg.Version
		}
		if s.seg == nil {
			seg.malformed = true
			r.problem(Problem{Segment: s.key, Index: i, Message: s.err})
			continue
		}
		if errs := ruleset.ValidateSegment(s.seg); len(errs) > 0 {
			seg.malformed = true
			r.problem(Problem{Segment: s.key, Index: i, Message: errs.Error()})
			continue
		}
		sources[seg] = s.seg
	}
	// Nested segments are resolved once every segment exists.
	edges := map[string][]string{}
	for _, s := range src {
		seg := segments[s.key]
		if seg == nil || sources[seg] != s.seg || s.seg == nil {
			continue
		}
		for _, sr := range s.seg.Rules {
			cls, err := compileClauses(sr.Clauses, segments, false)
			if err != nil {
				seg.malformed = true
				r.problem(Problem{Segment: s.key, Index: -1, Message: err.Error()})
				break
			}
			seg.rules = append(seg.rules, cls)
			for _, cl := range sr.Clauses {
				if cl.Op == ruleset.OpSegmentMatch {
					for _, v := range cl.Values {
						if k, ok := v.(string); ok {
							edges[s.key] = append(edges[s.key], k)
						}
					}
				}
			}
		}
		seg.included = segmentTargets(s.seg.Included)
		seg.excluded = segmentTargets(s.seg.Excluded)
	}
	for _, k := range onCycles(edges) {
		if seg := segments[k]; seg != nil && !seg.malformed {
			seg.malformed = true
			r.problem(Problem{Segment: k, Index: -1, Message: "nested segments form a cycle"})
		}
	}
	// A segment using a malformed segment is malformed too (no cycles remain among the others).
	var bad func(k string, seen map[string]bool) bool
	bad = func(k string, seen map[string]bool) bool {
		seg := segments[k]
		if seg == nil || seg.malformed {
			return true
		}
		if seen[k] {
			return false
		}
		seen[k] = true
		for _, n := range edges[k] {
			if bad(n, seen) {
				seg.malformed = true
				return true
			}
		}
		return false
	}
	for k := range segments {
		if bad(k, map[string]bool{}) && !segments[k].malformed {
			segments[k].malformed = true
		}
	}
	return segments
}

func segmentTargets(ts []ruleset.SegmentTarget) []target {
	out := make([]target, 0, len(ts))
	for _, t := range ts {
		out = append(out, target{kind: t.ContextKind, keys: newKeySet(t.Values)})
	}
	return out
}

// typedValue sets dst to a variation's value: the one decodeValue gave when it has dst's type
// (nearly always), else encoding/json's decoding of raw, for its error or its leniency (null
// decodes to the zero value).
func typedValue[T any](value any, decoded bool, raw []byte, dst *T) error {
	if v, ok := value.(T); decoded && ok {
		*dst = v
		return nil
	}
	return json.Unmarshal(raw, dst)
}

func (f *flag) compile(src *ruleset.Flag, segments map[string]*segment) error {
	f.on = src.On
	index := make(map[string]int, len(src.Variations))
	for i, v := range src.Variations {
		cv := Variation{Index: i, Key: v.Key}
		// A value decodeValue reads whole is valid JSON, and compact when it has no whitespace
		// at all (what the flag service publishes); anything else goes through json.Compact.
		value, decoded := decodeValue(v.Value)
		if decoded && !bytes.ContainsAny(v.Value, " \t\r\n") {
			cv.Value = bytes.Clone(v.Value)
		} else {
			var buf bytes.Buffer
			if err := json.Compact(&buf, v.Value); err != nil {
				return fmt.Errorf("variations[%d].value: %v", i, err)
			}
			cv.Value = buf.Bytes()
		}
		var err error
		switch f.kind {
		case ruleset.KindBoolean:
			err = typedValue(value, decoded, cv.Value, &cv.Bool)
		case ruleset.KindNumber:
			err = typedValue(value, decoded, cv.Value, &cv.Number)
		case ruleset.KindString:
			err = typedValue(value, decoded, cv.Value, &cv.String)
		}
		if err != nil {
			return fmt.Errorf("variations[%d].value: %v", i, err)
		}
		f.variations = append(f.variations, cv)
		index[v.Key] = i
	}
	if src.OffVariation != "" {
		f.off = index[src.OffVariation]
	}
	for _, t := range src.Targets {
		kind := t.ContextKind
		if kind == "" {
			kind = ruleset.DefaultContextKind
		}
		f.targets = append(f.targets, target{kind: kind, keys: newKeySet(t.Values), variation: index[t.Variation]})
	}
	salt := src.EffectiveSalt()
	for i, ru := range src.Rules {
		cls, err := compileClauses(ru.Clauses, segments, true)
		if err != nil {
			return fmt.Errorf("rules[%d]: %w", i, err)
		}
		f.rules = append(f.rules, rule{id: ru.ID, clauses: cls, serve: compileServe(ru.Serve, index, salt)})
	}
	f.fallback = compileServe(src.Fallthrough, index, salt)
	return nil
}

func compileServe(s ruleset.Serve, index map[string]int, salt string) serve {
	if s.Rollout == nil {
		return serve{variation: index[s.Variation]}
	}
	ro := &rollout{
		kind:          s.Rollout.ContextKind,
		bucketBy:      s.Rollout.BucketBy,
		experimentKey: s.Rollout.ExperimentKey,
	}
	if ro.kind == "" {
		ro.kind = ruleset.DefaultContextKind
	}
	if ro.bucketBy == "key" {
		ro.bucketBy = ""
	}
	if s.Rollout.Salt != "" {
		salt = s.Rollout.Salt
	}
	ro.prefix = murmur3.NewPrefix(salt+".", 0)
	sum := 0
	for _, wv := range s.Rollout.Variations {
		if wv.Weight == 0 {
			continue // can never be served; skipping keeps "first cumulative weight > bucket" exact
		}
		sum += wv.Weight
		ro.cumulative = append(ro.cumulative, sum)
		ro.variations = append(ro.variations, index[wv.Variation])
	}
	return serve{variation: -1, rollout: ro}
}

// compileClauses compiles the clauses of a rule. Segment references must exist; when
// rejectMalformed is set (flags, compiled after every segment's state is final) they must also
// name well-formed segments.
func compileClauses(src []ruleset.Clause, segments map[string]*segment, rejectMalformed bool) ([]clause, error) {
	out := make([]clause, 0, len(src))
	for j, c := range src {
		code, known := opCodes[c.Op]
		if !known {
			return nil, fmt.Errorf("clauses[%d].op: unknown operator %q", j, c.Op)
		}
		cl := clause{kind: c.ContextKind, attr: c.Attribute, isKey: c.Attribute == "key", code: code, negate: c.Negate}
		if cl.kind == "" {
			cl.kind = ruleset.DefaultContextKind
		}
		var strs []string
		for k, v := range c.Values {
			if msg := ruleset.CheckClauseValue(c.Op, v); msg != "" {
				return nil, fmt.Errorf("clauses[%d].values[%d]: %s", j, k, msg)
			}
			switch c.Op {
			case ruleset.OpIn:
				switch x := v.(type) {
				case string:
					strs = append(strs, x)
				case bool:
					if x {
						cl.hasTrue = true
					} else {
						cl.hasFalse = true
					}
				default:
					n, _ := ruleset.AsNumber(v)
					cl.nums = append(cl.nums, n)
				}
			case ruleset.OpContains, ruleset.OpStartsWith, ruleset.OpEndsWith:
				cl.list = append(cl.list, v.(string))
			case ruleset.OpMatches:
				re, err := regexp.Compile(v.(string))
				if err != nil {
					return nil, fmt.Errorf("clauses[%d].values[%d]: %v", j, k, err)
				}
				cl.regexps = append(cl.regexps, re)
			case ruleset.OpLessThan, ruleset.OpLessEqual, ruleset.OpGreaterThan, ruleset.OpGreaterEqual:
				n, _ := ruleset.AsNumber(v)
				cl.nums = append(cl.nums, n)
			case ruleset.OpSemverEqual, ruleset.OpSemverLess, ruleset.OpSemverGreat:
				sv, _ := ruleset.ParseSemver(v.(string))
				cl.semvers = append(cl.semvers, sv)
			case ruleset.OpBefore, ruleset.OpAfter:
				ms, _ := ruleset.AsInstant(v)
				cl.instants = append(cl.instants, ms)
			case ruleset.OpSegmentMatch:
				seg := segments[v.(string)]
				if seg == nil {
					return nil, fmt.Errorf("clauses[%d].values[%d]: unknown segment %q", j, k, v)
				}
				if rejectMalformed && seg.malformed {
					return nil, fmt.Errorf("clauses[%d].values[%d]: segment %q is malformed", j, k, v)
				}
				cl.segments = append(cl.segments, seg)
			default:
				return nil, fmt.Errorf("clauses[%d].op: unknown operator %q", j, c.Op)
			}
		}
		cl.strs = newKeySet(strs)
		out = append(out, cl)
	}
	return out, nil
}

// onCycles returns every node that lies on a cycle of the directed graph (strongly connected
// components with more than one node, or with a self-loop), sorted. Tarjan's algorithm.
func onCycles(edges map[string][]string) []string {
	index := map[string]int{}
	low := map[string]int{}
	onStack := map[string]bool{}
	var stack, out []string
	next := 0
	var visit func(v string)
	visit = func(v string) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		onStack[v] = true
		for _, w := range edges[v] {
			if _, seen := index[w]; !seen {
				visit(w)
				low[v] = min(low[v], low[w])
			} else if onStack[w] {
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] == index[v] {
			var comp []string
			for {
				w := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[w] = false
				comp = append(comp, w)
				if w == v {
					break
				}
			}
			if len(comp) > 1 || slices.Contains(edges[v], v) {
				out = append(out, comp...)
			}
		}
	}
	nodes := make([]string, 0, len(edges))
	for n := range edges {
		nodes = append(nodes, n)
	}
	slices.Sort(nodes)
	for _, n := range nodes {
		if _, seen := index[n]; !seen {
			visit(n)
		}
	}
	slices.Sort(out)
	return out
}

// segmentFingerprint hashes (FNV-1a) the keys and versions of the segments a flag uses,
// transitively, in a deterministic order.
func segmentFingerprint(f *flag) uint64 {
	seen := map[*segment]bool{}
	var walk func(cls []clause)
	walk = func(cls []clause) {
		for i := range cls {
			for _, s := range cls[i].segments {
				if !seen[s] {
					seen[s] = true
					for _, rc := range s.rules {
						walk(rc)
					}
				}
			}
		}
	}
	for i := range f.rules {
		walk(f.rules[i].clauses)
	}
	if len(seen) == 0 {
		return 0
	}
	parts := make([]string, 0, len(seen))
	for s := range seen {
		parts = append(parts, fmt.Sprintf("%s\x00%d", s.key, s.version))
	}
	slices.Sort(parts)
	h := uint64(14695981039346656037)
	for _, p := range parts {
		for i := 0; i < len(p); i++ {
			h ^= uint64(p[i])
			h *= 1099511628211
		}
		h ^= 0xff
		h *= 1099511628211
	}
	return h
}

// PatchedFlags returns, sorted, the only flags that can evaluate differently in r than in old,
// when r was patched from old's version of the same environment and the patch left every other
// flag as it was; ok is false otherwise (then any flag may differ).
func (r *Ruleset) PatchedFlags(old *Ruleset) (keys []string, ok bool) {
	if r == nil || old == nil || r.patchedFrom == 0 || r.patchedFrom != old.version || r.env.ID != old.env.ID {
		return nil, false
	}
	return slices.Clone(r.patched), true
}

// ChangedFlags returns, sorted, the keys of the flags whose configuration differs between old and
// r: added, removed, a new flag version, a change of kind or well-formedness, a new version of a
// segment the flag uses, or a change of any of these to one of its prerequisites, directly or
// through other prerequisites (its value can change with them). A nil old ruleset means every
// flag is new.
func (r *Ruleset) ChangedFlags(old *Ruleset) []string {
	if keys, ok := r.PatchedFlags(old); ok {
		return keys
	}
	var out []string
	get := func(rs *Ruleset, k string) *flag {
		if rs == nil {
			return nil
		}
		return rs.flag(k)
	}
	seen := map[string]bool{}
	for _, rs := range []*Ruleset{old, r} {
		if rs == nil {
			continue
		}
		for _, k := range rs.keys {
			if seen[k] {
				continue
			}
			seen[k] = true
			a, b := get(old, k), get(r, k)
			if a == nil || b == nil || a.version != b.version || a.kind != b.kind || a.malformed != b.malformed || a.segments != b.segments {
				out = append(out, k)
			}
		}
	}
	out = withDependents(out, old, r)
	slices.Sort(out)
	return out
}

// withDependents adds to changed every flag of old or r that names a changed flag as a
// prerequisite, transitively. (A patch that touches a prerequisite is compiled whole, so
// PatchedFlags never needs this.)
func withDependents(changed []string, old, r *Ruleset) []string {
	if (old == nil || old.prerequisites == nil) && (r == nil || r.prerequisites == nil) {
		return changed
	}
	in := make(map[string]bool, len(changed))
	for _, k := range changed {
		in[k] = true
	}
	dependsOnChanged := func(rs *Ruleset, k string) bool {
		if rs == nil {
			return false
		}
		f := rs.flag(k)
		if f == nil {
			return false
		}
		for _, p := range f.prereqs {
			if in[p.key] {
				return true
			}
		}
		return false
	}
	// Prerequisite chains are short; repeat until no flag is added (cycles end too: a flag is
	// added once).
	for grew := true; grew; {
		grew = false
		for _, rs := range []*Ruleset{old, r} {
			if rs == nil {
				continue
			}
			for _, k := range rs.keys {
				if !in[k] && (dependsOnChanged(old, k) || dependsOnChanged(r, k)) {
					in[k] = true
					changed = append(changed, k)
					grew = true
				}
			}
		}
	}
	return changed
}
