package evaluation

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// ErrPatchBase is returned by PatchJSON when the patch was made against another version (or
// another environment) than the ruleset it is applied to: the caller needs the full ruleset.
var ErrPatchBase = errors.New("patch does not apply to this ruleset version")

// PatchJSON applies a patch event (sdks/spec/PROTOCOL.md) to r and returns the resulting
// ruleset, which evaluates exactly like what CompileJSON makes of the full document of the
// patch's version. Only the patch's flags and segments are decoded. When the patch changes only
// flags that no other flag depends on, only those are compiled and the rest carried over (see
// patchFlags); otherwise every flag is compiled again, since a changed segment or prerequisite
// changes the flags that use it. r itself is not modified.
//
// It fails with ErrPatchBase when the patch's base_version is not r's version or its environment
// is not r's, and with ErrMalformedRuleset when the patch does not decode.
func (r *Ruleset) PatchJSON(data []byte) (*Ruleset, error) {
	p, err := decodeDocument(data)
	if err != nil {
		return nil, err
	}
	if err := checkSchema(p.schemaVersion); err != nil {
		return nil, err
	}
	if p.baseVersion == nil {
		return nil, fmt.Errorf("%w: patch without base_version", ErrMalformedRuleset)
	}
	next := &Ruleset{version: p.version, env: p.env, generatedAt: p.generatedAt}
	switch {
	case r == nil:
		return nil, fmt.Errorf("%w: there is no ruleset yet", ErrPatchBase)
	case r.flagSrc == nil && len(r.flags) > 0:
		return nil, fmt.Errorf("%w: the ruleset was not compiled from JSON", ErrPatchBase)
	case *p.baseVersion != r.version || next.env.ID != r.env.ID:
		return nil, fmt.Errorf("%w: patch from %s version %d, ruleset is %s version %d",
			ErrPatchBase, next.env.ID, *p.baseVersion, r.env.ID, r.version)
	}
	var flags []*flagSource
	var segments []*segmentSource
	if p.flags != nil {
		flags = *p.flags
	}
	if p.segments != nil {
		segments = *p.segments
	}
	next.flagSrc, next.srcOver, next.srcIndex = r.mergeFlagSources(flags, p.deletedFlags)
	next.segSrc = merge(r.segSrc, segments, p.deletedSegments, func(s *segmentSource) string { return s.key })
	if len(segments) > 0 || len(p.deletedSegments) > 0 || !next.patchFlags(r, flags, p.deletedFlags) {
		next.flagSrc, next.srcOver = next.flagSources(), nil // the same keys at the same positions
		next.compile(next.flagSrc, next.segSrc)
	}
	return next, nil
}

// patchFlags is PatchJSON's fast path, for the common patch: well-formed flags changed, added
// or deleted, none of them a prerequisite or with prerequisites, segments unchanged, in a
// ruleset without problems. Then no other flag's behaviour can change, so every other compiled
// flag is carried over as is and only the patch's flags are compiled (and change listeners only
// evaluate those again). It reports false, having set nothing, when the patch needs the whole
// ruleset compiled again.
func (next *Ruleset) patchFlags(r *Ruleset, flags []*flagSource, deleted []string) bool {
	if len(r.problems) > 0 {
		return false
	}
	touched := make([]string, 0, len(flags)+len(deleted))
	for _, src := range flags {
		if src.flag == nil || len(src.flag.Prerequisites) > 0 || !ruleset.ValidKey(src.key) {
			return false
		}
		touched = append(touched, src.key)
	}
	touched = append(touched, deleted...)
	slices.Sort(touched)
	if len(slices.Compact(slices.Clone(touched))) != len(touched) {
		return false // a key twice in the patch
	}
	for _, k := range touched {
		if r.prerequisites[k] {
			return false
		}
	}
	compiled := make([]*flag, len(flags))
	for i, src := range flags {
		f, problem := newFlag(src, r.segments)
		if problem != "" {
			return false
		}
		f.segments = segmentFingerprint(f)
		compiled[i] = f
	}
	// The patched flags go into a short map over the previous ruleset's, shared; past
	// maxOverlay flags the two are merged into a new map of every flag.
	over := make(map[string]*flag, len(r.over)+len(touched))
	maps.Copy(over, r.over)
	var added []string
	removed := false
	for _, k := range deleted {
		if r.flag(k) != nil {
			over[k] = nil
			removed = true
		}
	}
	for _, f := range compiled {
		if r.flag(f.key) == nil {
			added = append(added, f.key)
		}
		over[f.key] = f
	}
	next.flags, next.over = r.flags, over
	if len(over) > maxOverlay {
		next.flags, next.over = maps.Clone(r.flags), nil // cloning copies storage without hashing every key again
		for k, f := range over {
			if f == nil {
				delete(next.flags, k)
			} else {
				next.flags[k] = f
			}
		}
	}
	next.segments, next.prerequisites = r.segments, r.prerequisites
	next.patchedFrom, next.patched = r.version, touched
	next.keys = r.keys
	if len(added) > 0 || removed {
		next.keys = make([]string, 0, len(r.keys)+len(added))
		for _, k := range r.keys {
			if f, ok := over[k]; !ok || f != nil {
				next.keys = append(next.keys, k)
			}
		}
		next.keys = append(next.keys, added...)
		slices.Sort(next.keys)
	}
	return true
}

// mergeFlagSources is merge for r's flag sources: the list, the replacements over it (see
// Ruleset.srcOver) and the index of its positions. When the patch only replaces flags already
// there (the usual toggle or edit), their keys keep their positions: the replaced positions are
// looked up in the index, which the result shares, where merge reads the key of every flag; and
// the replacements go into a short map over r's list, which the result shares too (copying the
// list cost a patch in an environment of 1,000 flags a fifth of its time). Past maxOverlay
// replacements the two are merged into a new list.
func (r *Ruleset) mergeFlagSources(changed []*flagSource, deleted []string) ([]*flagSource, map[int]*flagSource, *sourceIndex) {
	if pos := r.srcIndex.positions(); pos != nil && len(deleted) == 0 && len(changed) <= 16 {
		replaces := true
		for i, c := range changed {
			_, known := pos[c.key]
			// A key given twice is left to merge (the last one wins there).
			replaces = replaces && known && !slices.ContainsFunc(changed[:i], func(o *flagSource) bool { return o.key == c.key })
		}
		if replaces {
			over := make(map[int]*flagSource, len(r.srcOver)+len(changed))
			maps.Copy(over, r.srcOver)
			for _, c := range changed {
				over[pos[c.key]] = c
			}
			if len(over) > maxOverlay {
				return withReplacements(r.flagSrc, over), nil, r.srcIndex
			}
			return r.flagSrc, over, r.srcIndex // the same keys at the same positions
		}
	}
	out := merge(r.flagSources(), changed, deleted, func(f *flagSource) string { return f.key })
	return out, nil, &sourceIndex{src: out}
}

// flagSources returns the ruleset's flag sources in document order, its replacements applied.
func (r *Ruleset) flagSources() []*flagSource {
	if len(r.srcOver) == 0 {
		return r.flagSrc
	}
	return withReplacements(r.flagSrc, r.srcOver)
}

// withReplacements returns a copy of src with the sources of over at their positions.
func withReplacements(src []*flagSource, over map[int]*flagSource) []*flagSource {
	out := slices.Clone(src)
	for i, s := range over {
		out[i] = s
	}
	return out
}

// sourceIndex maps the keys of a list of flag sources to their positions, built when first
// needed; shared by the rulesets whose lists have the same keys in the same order.
type sourceIndex struct {
	once sync.Once
	src  []*flagSource
	pos  map[string]int // nil when a key is in the list twice
}

func (x *sourceIndex) positions() map[string]int {
	if x == nil {
		return nil
	}
	x.once.Do(func() {
		pos := make(map[string]int, len(x.src))
		for i, s := range x.src {
			if _, twice := pos[s.key]; twice {
				return
			}
			pos[s.key] = i
		}
		x.pos, x.src = pos, nil
	})
	return x.pos
}

// maxOverlay bounds the flags a ruleset keeps over the map it shares with the ruleset it was
// patched from; a lookup checks the short map first.
const maxOverlay = 64

// merge returns old in its order with every item whose key is in changed replaced, every item
// whose key is deleted left out, and the changed items with new keys appended in patch order.
func merge[T any](old, changed []T, deleted []string, key func(T) string) []T {
	// A patch usually names a handful of keys: finding them in a short list is cheaper than
	// hashing every key of the ruleset; large patches use maps.
	small := len(changed)+len(deleted) <= 16
	var byKey map[string]int
	var gone map[string]bool
	names := make([]string, len(changed))
	for i, c := range changed {
		names[i] = key(c)
	}
	if !small {
		byKey = make(map[string]int, len(changed))
		for i, k := range names {
			byKey[k] = i
		}
		gone = make(map[string]bool, len(deleted))
		for _, k := range deleted {
			gone[k] = true
		}
	}
	find := func(k string) (int, bool) {
		if small {
			for i := len(names) - 1; i >= 0; i-- {
				if names[i] == k {
					return i, true
				}
			}
			return -1, false
		}
		i, ok := byKey[k]
		return i, ok
	}
	isGone := func(k string) bool {
		if small {
			return slices.Contains(deleted, k)
		}
		return gone[k]
	}
	out := make([]T, 0, len(old)+len(changed))
	placed := make([]bool, len(changed))
	for _, o := range old {
		k := key(o)
		if i, ok := find(k); ok {
			out = append(out, changed[i])
			placed[i] = true
		} else if !isGone(k) {
			out = append(out, o)
		}
	}
	for i, c := range changed {
		if !placed[i] {
			if j, _ := find(names[i]); j == i { // the last of a key given twice wins, once
				out = append(out, c)
			}
		}
	}
	return out
}
