package switchyard

import (
	"bytes"
	"context"
	"slices"
	"sync"

	"github.com/switchyard-io/switchyard/sdks/go/evaluation"
)

// FlagChange says that a flag's value changed for a listener's context after a ruleset update.
// A flag that appeared has an empty OldVariation and a nil OldValue; one that disappeared
// (archived, deleted) has an empty NewVariation and a nil NewValue. Values are decoded JSON
// (bool, float64, string, []any, map[string]any), or nil where the caller's fallback would serve.
type FlagChange struct {
	Key                        string
	OldValue, NewValue         any
	OldVariation, NewVariation string
}

// OnChange registers fn to be called for every flag whose value for ctx changes with a ruleset
// update (a new flag configuration, a segment or prerequisite change, the first ruleset, a flag added or
// removed). Calls come from one goroutine, in order, never from the evaluation path; a slow
// listener delays other listeners, not evaluations, and updates that pile up meanwhile are
// coalesced. The returned function removes the listener.
func (c *Client) OnChange(ctx Context, fn func(FlagChange)) (remove func()) {
	return c.listeners.add(ctx, fn, nil)
}

// Update describes a new ruleset: its version and the flags whose configuration changed (see
// evaluation.Ruleset.ChangedFlags).
type Update struct {
	Version      int64
	ChangedFlags []string
}

// OnUpdate registers fn to be called after every ruleset update that changes at least one flag,
// whatever the context (OpenFeature's PROVIDER_CONFIGURATION_CHANGED, cache invalidation). Calls
// come from the same goroutine as OnChange's. The returned function removes the listener.
func (c *Client) OnUpdate(fn func(Update)) (remove func()) {
	return c.listeners.add(Context{}, nil, fn)
}

// OnStatusChange registers fn to be called when the data source's state (Status.State) or the
// relay's staleness (Status.Stale) changes: the connection is lost (StateInterrupted), recovers
// (StateValid), or stops for good (StateOff, e.g. a revoked key). Calls come from the same
// goroutine as OnChange's, in order; changes that come and go while a listener runs may be
// coalesced, but the last call always reports the current state. The returned function removes
// the listener.
func (c *Client) OnStatusChange(fn func(Status)) (remove func()) {
	return c.listeners.addStatus(fn)
}

type listener struct {
	update func(Update) // set for OnUpdate listeners, fn for OnChange ones, status for OnStatusChange ones
	ctx    Context
	fn     func(FlagChange)
	last   *evaluation.Ruleset // the ruleset this listener was last notified for

	status    func(Status)
	lastState statusKey // what this status listener was last told (or saw when added)
}

// statusKey is what a status listener is notified of when it changes.
type statusKey struct {
	state State
	stale bool
}

func statusKeyOf(s Status) statusKey { return statusKey{s.State, s.Stale} }

type listeners struct {
	c       *Client
	mu      sync.Mutex
	set     map[*listener]struct{}
	pending chan struct{} // capacity 1: "a ruleset changed since the last dispatch"
}

func newListeners(c *Client) *listeners {
	return &listeners{c: c, set: map[*listener]struct{}{}, pending: make(chan struct{}, 1)}
}

func (ls *listeners) add(ctx Context, fn func(FlagChange), update func(Update)) func() {
	return ls.register(&listener{ctx: ctx, fn: fn, update: update, last: ls.c.ruleset.Load()})
}

func (ls *listeners) addStatus(fn func(Status)) func() {
	return ls.register(&listener{status: fn, lastState: statusKeyOf(ls.c.Status())})
}

// register adds l and returns the function that removes it.
func (ls *listeners) register(l *listener) func() {
	ls.mu.Lock()
	ls.set[l] = struct{}{}
	ls.mu.Unlock()
	return func() {
		ls.mu.Lock()
		delete(ls.set, l)
		ls.mu.Unlock()
	}
}

func (ls *listeners) notify() {
	select {
	case ls.pending <- struct{}{}:
	default: // a dispatch is already pending; it will see the newest ruleset
	}
}

func (ls *listeners) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-ls.pending:
		}
		cur := ls.c.ruleset.Load()
		st := ls.c.Status()
		ls.mu.Lock()
		var todo []*listener
		for l := range ls.set {
			if (l.status == nil && l.last != cur) || (l.status != nil && l.lastState != statusKeyOf(st)) {
				todo = append(todo, l)
			}
		}
		ls.mu.Unlock()
		for _, l := range todo {
			if l.status != nil {
				ls.safely("status listener", func() { l.status(st) })
				l.lastState = statusKeyOf(st)
				continue
			}
			if l.update != nil {
				if changed := cur.ChangedFlags(l.last); len(changed) > 0 {
					ls.safely("update listener", func() { l.update(Update{Version: cur.Version(), ChangedFlags: changed}) })
				}
			} else {
				for _, ch := range diff(l.last, cur, l.ctx) {
					ls.safely("flag change listener", func() { l.fn(ch) })
				}
			}
			l.last = cur
		}
	}
}

func (ls *listeners) safely(what string, fn func()) {
	defer func() {
		if p := recover(); p != nil {
			ls.c.log.Error(what+" panicked", "panic", p)
		}
	}()
	fn()
}

// diff evaluates the flags of both rulesets for ctx and returns those whose served variation or
// value differ. After a patch only the patched flags can differ, and only those are evaluated.
func diff(old, cur *evaluation.Ruleset, ctx Context) []FlagChange {
	order, patched := cur.PatchedFlags(old)
	if !patched {
		keys := map[string]struct{}{}
		for _, rs := range []*evaluation.Ruleset{old, cur} {
			if rs == nil {
				continue
			}
			for _, k := range rs.FlagKeys() {
				if _, seen := keys[k]; !seen {
					keys[k] = struct{}{}
					order = append(order, k)
				}
			}
		}
	}
	slices.Sort(order)
	var out []FlagChange
	for _, k := range order {
		a, b := old.Evaluate(k, ctx), cur.Evaluate(k, ctx)
		if a.VariationKey() == b.VariationKey() && bytes.Equal(a.Value(), b.Value()) {
			continue
		}
		ch := FlagChange{Key: k, OldVariation: a.VariationKey(), NewVariation: b.VariationKey()}
		if a.Variation != nil {
			ch.OldValue = a.Variation.Decode()
		}
		if b.Variation != nil {
			ch.NewValue = b.Variation.Decode()
		}
		out = append(out, ch)
	}
	return out
}
