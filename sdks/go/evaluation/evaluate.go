package evaluation

import (
	"math"
	"strconv"
	"strings"

	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// Evaluate evaluates one flag for one context, following sdks/spec/EVALUATION.md. It never
// panics, allocates nothing on success paths and may be called on a nil Ruleset (every flag is
// then FLAG_NOT_FOUND).
func (r *Ruleset) Evaluate(flagKey string, ctx Context) Result {
	return r.EvaluateKind(flagKey, ctx, "")
}

// EvaluateKind is Evaluate for a caller that expects a flag of the given kind (the typed SDK
// methods): a flag of another kind gives ERROR with TYPE_MISMATCH. An empty kind accepts any.
// Errors are checked in this order: FLAG_NOT_FOUND, PARSE_ERROR, TYPE_MISMATCH, then the
// context's own errors (TARGETING_KEY_MISSING, INVALID_CONTEXT).
func (r *Ruleset) EvaluateKind(flagKey string, ctx Context, want ruleset.FlagKind) (res Result) {
	if r == nil {
		return errorResult(ErrorFlagNotFound)
	}
	f := r.flag(flagKey)
	if f == nil {
		return errorResult(ErrorFlagNotFound)
	}
	if f.malformed {
		return f.errorResult(ErrorParse)
	}
	if want != "" && want != f.kind {
		return f.errorResult(ErrorTypeMismatch)
	}
	if ctx.err != nil || len(ctx.kinds) == 0 {
		code := ErrorTargetingKeyMissing
		if ctx.err != nil && !isTargetingKeyMissing(ctx.err) {
			code = ErrorInvalidContext
		}
		return f.errorResult(code)
	}
	f.evaluate(&res, &ctx)
	return res
}

// EvaluateJSON evaluates a flag for a context given in its JSON form (see ParseContext); a
// context that does not parse gives an ERROR result.
func (r *Ruleset) EvaluateJSON(flagKey string, contextJSON []byte) Result {
	ctx, _ := ParseContext(contextJSON)
	return r.Evaluate(flagKey, ctx)
}

// EvaluateAll evaluates every flag (or, with clientSideOnly, every client-side flag) for one
// context, in flag key order.
func (r *Ruleset) EvaluateAll(ctx Context, clientSideOnly bool) []Result {
	if r == nil {
		return nil
	}
	out := make([]Result, 0, len(r.keys))
	for _, k := range r.keys {
		if clientSideOnly && !r.flag(k).clientSide {
			continue
		}
		out = append(out, r.Evaluate(k, ctx))
	}
	return out
}

func isTargetingKeyMissing(err error) bool {
	for err != nil {
		if err == ErrTargetingKeyMissing {
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

func (f *flag) errorResult(code ErrorCode) Result {
	return Result{flag: f, Reason: ReasonError, ErrorCode: code, RuleIndex: -1}
}

func (f *flag) variation(i int) *Variation {
	if i < 0 {
		return nil
	}
	return &f.variations[i]
}

func (f *flag) evaluate(res *Result, c *Context) {
	*res = Result{flag: f, RuleIndex: -1}
	if !f.on {
		res.Reason = ReasonDisabled
		res.Variation = f.variation(f.off)
		return
	}
	for i := range f.prereqs {
		if p := &f.prereqs[i]; !p.met(c) {
			res.Reason = ReasonPrerequisiteFailed
			res.aux = i
			res.Variation = f.variation(f.off)
			return
		}
	}
	for i := range f.targets {
		t := &f.targets[i]
		if kc := c.kind(t.kind); kc != nil && t.keys.has(kc.key) {
			res.Reason = ReasonTargetingMatch
			res.aux = i
			res.Variation = &f.variations[t.variation]
			return
		}
	}
	for i := range f.rules {
		ru := &f.rules[i]
		if matchAll(ru.clauses, c) {
			res.RuleIndex = i
			f.serve(res, &ru.serve, c, ReasonTargetingMatch)
			return
		}
	}
	f.serve(res, &f.fallback, c, ReasonDefault)
}

// met reports whether the prerequisite flag is on, evaluates without failing (no error, no failed
// prerequisite of its own) and serves the required variation.
func (p *prereq) met(c *Context) bool {
	if p.flag == nil || p.variation < 0 || p.flag.malformed || !p.flag.on {
		return false
	}
	var r Result
	p.flag.evaluate(&r, c)
	switch r.Reason {
	case ReasonTargetingMatch, ReasonSplit, ReasonDefault:
		return r.Variation != nil && r.Variation.Index == p.variation
	}
	return false
}

func (f *flag) serve(res *Result, s *serve, c *Context, fixed Reason) {
	if s.rollout == nil {
		res.Reason = fixed
		res.Variation = &f.variations[s.variation]
		return
	}
	ro := s.rollout
	res.Reason = ReasonSplit
	bucket, ok := ro.bucket(c)
	res.inExperiment = ok
	res.Variation = &f.variations[ro.pick(bucket)]
}

// maxExactInt is 2^53: integers beyond it are not exactly representable as float64, so they are
// not used for bucketing.
const maxExactInt = 1 << 53

// bucket returns the context's bucket in [0, 100000) and true, or 0 and false when the context
// lacks the rollout's kind or a usable bucketing attribute (a non-empty string, or an integer).
func (ro *rollout) bucket(c *Context) (int, bool) {
	kc := c.kind(ro.kind)
	if kc == nil {
		return 0, false
	}
	var h uint32
	if ro.bucketBy == "" {
		h = ro.prefix.SumString(kc.key)
	} else {
		v := kc.attr(ro.bucketBy)
		if v == nil {
			return 0, false
		}
		switch {
		case v.t == TypeString && v.s != "":
			h = ro.prefix.SumString(v.s)
		case v.t == TypeNumber && v.n == math.Trunc(v.n) && math.Abs(v.n) < maxExactInt:
			var buf [24]byte
			h = ro.prefix.Sum(strconv.AppendInt(buf[:0], int64(v.n), 10))
		default:
			return 0, false
		}
	}
	return int(h % ruleset.WeightScale), true
}

// pick returns the first variation whose cumulative weight exceeds the bucket.
func (ro *rollout) pick(bucket int) int {
	for i, cw := range ro.cumulative {
		if cw > bucket {
			return ro.variations[i]
		}
	}
	return ro.variations[len(ro.variations)-1] // unreachable: weights sum to 100000
}

func matchAll(clauses []clause, c *Context) bool {
	for i := range clauses {
		if !clauses[i].matches(c) {
			return false
		}
	}
	return true
}

func (cl *clause) matches(c *Context) bool {
	if cl.code == opSegmentMatch {
		m := false
		for _, s := range cl.segments {
			if s.contains(c) {
				m = true
				break
			}
		}
		return m != cl.negate
	}
	kc := c.kind(cl.kind)
	if kc == nil {
		return false // missing kind: no match, negated or not
	}
	var m bool
	if cl.isKey {
		m = cl.matchString(kc.key)
	} else {
		v := kc.attr(cl.attr)
		if v == nil || v.t == TypeNull {
			return false // missing attribute: no match, negated or not
		}
		switch {
		case v.t == TypeString && cl.code == opIn: // the most common clause, without further calls
			m = cl.strs.has(v.s)
		case v.t == TypeArray:
			for i := range v.a {
				if cl.matchValue(&v.a[i]) {
					m = true
					break
				}
			}
		default:
			m = cl.matchValue(v)
		}
	}
	return m != cl.negate
}

func (cl *clause) matchValue(v *Value) bool {
	switch v.t {
	case TypeString:
		return cl.matchString(v.s)
	case TypeNumber:
		return cl.matchNumber(v.n)
	case TypeBool:
		if cl.code == opIn {
			return (v.b && cl.hasTrue) || (!v.b && cl.hasFalse)
		}
	}
	return false // null, arrays inside arrays, objects: no operator applies
}

func (cl *clause) matchString(s string) bool {
	switch cl.code {
	case opIn:
		return cl.strs.has(s)
	case opContains:
		for _, v := range cl.list {
			if strings.Contains(s, v) {
				return true
			}
		}
	case opStartsWith:
		for _, v := range cl.list {
			if strings.HasPrefix(s, v) {
				return true
			}
		}
	case opEndsWith:
		for _, v := range cl.list {
			if strings.HasSuffix(s, v) {
				return true
			}
		}
	case opMatches:
		for _, re := range cl.regexps {
			if re.MatchString(s) {
				return true
			}
		}
	case opSemverEqual, opSemverLess, opSemverGreat:
		sv, ok := ruleset.ParseSemver(s)
		if !ok {
			return false
		}
		for i := range cl.semvers {
			c := sv.Compare(cl.semvers[i])
			if (cl.code == opSemverEqual && c == 0) || (cl.code == opSemverLess && c < 0) || (cl.code == opSemverGreat && c > 0) {
				return true
			}
		}
	case opBefore, opAfter:
		ms, ok := ruleset.AsInstant(s)
		return ok && cl.matchInstant(ms)
	}
	return false
}

func (cl *clause) matchNumber(n float64) bool {
	switch cl.code {
	case opIn:
		for _, v := range cl.nums {
			if n == v {
				return true
			}
		}
	case opLessThan:
		for _, v := range cl.nums {
			if n < v {
				return true
			}
		}
	case opLessEqual:
		for _, v := range cl.nums {
			if n <= v {
				return true
			}
		}
	case opGreaterThan:
		for _, v := range cl.nums {
			if n > v {
				return true
			}
		}
	case opGreaterEqual:
		for _, v := range cl.nums {
			if n >= v {
				return true
			}
		}
	case opBefore, opAfter:
		return cl.matchInstant(math.Trunc(n)) // a fractional millisecond is dropped
	}
	return false
}

func (cl *clause) matchInstant(ms float64) bool {
	for _, v := range cl.instants {
		if (cl.code == opBefore && ms < v) || (cl.code == opAfter && ms > v) {
			return true
		}
	}
	return false
}

// contains reports whether the segment contains the context: excluded keys (of any of the
// context's kinds) beat included keys, which beat the segment's rules.
func (s *segment) contains(c *Context) bool {
	for i := range c.kinds {
		kc := &c.kinds[i]
		for j := range s.excluded {
			if s.excluded[j].kind == kc.kind && s.excluded[j].keys.has(kc.key) {
				return false
			}
		}
	}
	for i := range c.kinds {
		kc := &c.kinds[i]
		for j := range s.included {
			if s.included[j].kind == kc.kind && s.included[j].keys.has(kc.key) {
				return true
			}
		}
	}
	for _, clauses := range s.rules {
		if matchAll(clauses, c) {
			return true
		}
	}
	return false
}
