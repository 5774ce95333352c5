package switchyard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-io/switchyard/sdks/go/evaluation"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// Context is what flags are evaluated for; see evaluation.Context.
type Context = evaluation.Context

// Attribute is one named context attribute; see Attr.
type Attribute = evaluation.Attribute

// Reason and ErrorCode qualify every evaluation; see the evaluation package.
type (
	Reason    = evaluation.Reason
	ErrorCode = evaluation.ErrorCode
)

// NewContext returns a context of kind "user" with the given key and attributes.
func NewContext(key string, attrs ...Attribute) Context { return evaluation.NewContext(key, attrs...) }

// NewKindContext returns a context of the given kind.
func NewKindContext(kind, key string, attrs ...Attribute) Context {
	return evaluation.NewKindContext(kind, key, attrs...)
}

// NewMultiContext combines contexts of different kinds.
func NewMultiContext(parts ...Context) Context { return evaluation.NewMultiContext(parts...) }

// Attr makes a context attribute from a Go value.
func Attr(name string, value any) Attribute { return evaluation.Attr(name, value) }

// ParseContext reads a context in its JSON form.
func ParseContext(data []byte) (Context, error) { return evaluation.ParseContext(data) }

// Errors returned by New and WaitForInitialization. In both cases New also returns a usable
// client, which serves fallback values until (and unless) a ruleset arrives.
var (
	// ErrInitTimeout: no ruleset arrived within Config.InitTimeout; the data source keeps trying.
	ErrInitTimeout = errors.New("switchyard: initialization timed out")
	// ErrUnauthorized: the relay rejected the SDK key (401/403); the data source has stopped.
	ErrUnauthorized = errors.New("switchyard: SDK key rejected")
	// ErrClosed: the client was closed.
	ErrClosed = errors.New("switchyard: client closed")
)

// Detail is an evaluation's value with the reason it was served.
type Detail[T any] struct {
	Value T
	// Variation is the served variation's key; empty when the fallback was served.
	Variation string
	// VariationIndex is the served variation's index, or -1.
	VariationIndex int
	Reason         Reason
	// ErrorCode is set when Reason is ERROR.
	ErrorCode ErrorCode
	// RuleIndex is the matching rule's index, or -1; RuleID its id if it has one.
	RuleIndex int
	RuleID    string
	// FlagVersion is the evaluated flag's version (0 when not found).
	FlagVersion int64
}

// State is a client's connection state.
type State int

// States.
const (
	// StateInitializing: no ruleset yet.
	StateInitializing State = iota
	// StateValid: the data source is connected and current.
	StateValid
	// StateInterrupted: the data source lost its connection and is retrying; the last ruleset is
	// still served.
	StateInterrupted
	// StateOff: the data source stopped for good (rejected key, closed client).
	StateOff
)

func (s State) String() string {
	return [...]string{"initializing", "valid", "interrupted", "off"}[s]
}

// Status describes the client's data source.
type Status struct {
	State State
	// LastError is the data source's most recent error, if any.
	LastError error
	// RulesetVersion is the version of the ruleset being served (0 before the first).
	RulesetVersion int64
	// Stale is true while the relay says it serves a ruleset from disk because its upstream is
	// unreachable (X-Switchyard-Stale).
	Stale bool
	// LastUpdate is when the current ruleset arrived.
	LastUpdate time.Time
}

// Client evaluates flags locally against the latest ruleset of one environment. Evaluation never
// blocks on the network, never panics, takes no shared lock, and returns the caller's fallback on
// any error. A Client is safe for concurrent use; create one per environment and share it.
type Client struct {
	cfg     Config
	log     *slog.Logger
	ruleset atomic.Pointer[evaluation.Ruleset]

	initOnce sync.Once
	initDone chan struct{} // closed on the first ruleset or a permanent failure

	mu     sync.Mutex
	status Status

	events    *eventProcessor // nil when events are off
	listeners *listeners
	// listenersDone is closed when the listeners' goroutine has ended.
	listenersDone chan struct{}

	ownHTTP   bool // cfg.HTTPClient was made by the SDK: Close closes its idle connections
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// New starts a client. Unless cfg.StartNonBlocking is set, it waits up to cfg.InitTimeout for the
// first ruleset. It returns a nil client only for an invalid config; with ErrInitTimeout or
// ErrUnauthorized it also returns a client that serves fallback values until a ruleset arrives.
func New(cfg Config) (*Client, error) {
	ownHTTP := cfg.HTTPClient == nil
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{cfg: cfg, log: cfg.Logger.With("component", "switchyard"), initDone: make(chan struct{}), cancel: cancel, ownHTTP: ownHTTP}
	c.listeners, c.listenersDone = newListeners(c), make(chan struct{})
	if !cfg.Events.Disabled && cfg.EventsURL != "" {
		c.events = newEventProcessor(cfg, c.log)
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.events.run(ctx)
		}()
	}
	// Not in wg: Close waits for a listener callback only until its deadline.
	go func() {
		defer close(c.listenersDone)
		c.listeners.run(ctx)
	}()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		env := &sourceEnv{cfg: &c.cfg, log: c.log, client: c}
		err := cfg.DataSource.run(ctx, env)
		if err != nil && ctx.Err() == nil {
			c.fail(err)
		}
	}()
	if cfg.StartNonBlocking {
		return c, nil
	}
	waitCtx, stop := context.WithTimeout(context.Background(), cfg.InitTimeout)
	defer stop()
	return c, c.WaitForInitialization(waitCtx)
}

// WaitForInitialization blocks until the first ruleset arrives (nil), the data source fails for
// good (ErrUnauthorized or the source's error), or ctx ends (ErrInitTimeout).
func (c *Client) WaitForInitialization(ctx context.Context) error {
	select {
	case <-c.initDone:
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", ErrInitTimeout, ctx.Err())
	}
	if c.ruleset.Load() != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.status.LastError != nil {
		return c.status.LastError
	}
	return ErrClosed
}

// Initialized reports whether a ruleset has arrived.
func (c *Client) Initialized() bool { return c.ruleset.Load() != nil }

// Status returns the data source's state.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// Ruleset returns the compiled ruleset being served, or nil before the first.
func (c *Client) Ruleset() *evaluation.Ruleset { return c.ruleset.Load() }

// --- evaluation ---

// Bool returns a boolean flag's value for ctx, or fallback on any error.
func (c *Client) Bool(ctx Context, key string, fallback bool) bool {
	if r := c.evaluate(ctx, key, ruleset.KindBoolean); r.Variation != nil {
		return r.Variation.Bool
	}
	return fallback
}

// BoolDetail is Bool with the variation and reason.
func (c *Client) BoolDetail(ctx Context, key string, fallback bool) Detail[bool] {
	r := c.evaluate(ctx, key, ruleset.KindBoolean)
	d := detail(r, fallback)
	if r.Variation != nil {
		d.Value = r.Variation.Bool
	}
	return d
}

// String returns a string flag's value for ctx, or fallback on any error.
func (c *Client) String(ctx Context, key string, fallback string) string {
	if r := c.evaluate(ctx, key, ruleset.KindString); r.Variation != nil {
		return r.Variation.String
	}
	return fallback
}

// StringDetail is String with the variation and reason.
func (c *Client) StringDetail(ctx Context, key string, fallback string) Detail[string] {
	r := c.evaluate(ctx, key, ruleset.KindString)
	d := detail(r, fallback)
	if r.Variation != nil {
		d.Value = r.Variation.String
	}
	return d
}

// Number returns a number flag's value for ctx, or fallback on any error.
func (c *Client) Number(ctx Context, key string, fallback float64) float64 {
	if r := c.evaluate(ctx, key, ruleset.KindNumber); r.Variation != nil {
		return r.Variation.Number
	}
	return fallback
}

// NumberDetail is Number with the variation and reason.
func (c *Client) NumberDetail(ctx Context, key string, fallback float64) Detail[float64] {
	r := c.evaluate(ctx, key, ruleset.KindNumber)
	d := detail(r, fallback)
	if r.Variation != nil {
		d.Value = r.Variation.Number
	}
	return d
}

// JSON returns a json flag's value for ctx, decoded as encoding/json decodes into an any (a fresh
// copy on every call), or fallback on any error.
func (c *Client) JSON(ctx Context, key string, fallback any) any {
	return c.JSONDetail(ctx, key, fallback).Value
}

// JSONDetail is JSON with the variation and reason.
func (c *Client) JSONDetail(ctx Context, key string, fallback any) Detail[any] {
	r := c.evaluate(ctx, key, ruleset.KindJSON)
	d := detail(r, fallback)
	if r.Variation != nil {
		d.Value = r.Variation.Decode()
	}
	return d
}

// JSONInto decodes a json flag's value into out (as json.Unmarshal does) and returns the detail;
// on any error out is left unchanged.
func (c *Client) JSONInto(ctx Context, key string, out any) Detail[json.RawMessage] {
	r := c.evaluate(ctx, key, ruleset.KindJSON)
	d := detail[json.RawMessage](r, nil)
	if r.Variation != nil {
		d.Value = r.Variation.Value
		if err := json.Unmarshal(r.Variation.Value, out); err != nil {
			d = Detail[json.RawMessage]{VariationIndex: -1, RuleIndex: -1, Reason: evaluation.ReasonError,
				ErrorCode: evaluation.ErrorTypeMismatch, FlagVersion: r.FlagVersion()}
		}
	}
	return d
}

// Evaluate returns the raw evaluation result (any flag kind), recording events like the typed
// methods.
func (c *Client) Evaluate(ctx Context, key string) evaluation.Result {
	return c.evaluate(ctx, key, "")
}

// AllFlags evaluates every flag for ctx (no events): for bootstrapping front ends or debugging.
// With clientSideOnly, only flags marked client_side.
func (c *Client) AllFlags(ctx Context, clientSideOnly bool) map[string]Detail[any] {
	rs := c.ruleset.Load()
	out := map[string]Detail[any]{}
	for _, r := range rs.EvaluateAll(ctx, clientSideOnly) {
		d := detail[any](r, nil)
		if r.Variation != nil {
			d.Value = r.Variation.Decode()
		}
		out[r.FlagKey()] = d
	}
	return out
}

func detail[T any](r evaluation.Result, fallback T) Detail[T] {
	return Detail[T]{
		Value:          fallback,
		Variation:      r.VariationKey(),
		VariationIndex: r.VariationIndex(),
		Reason:         r.Reason,
		ErrorCode:      r.ErrorCode,
		RuleIndex:      r.RuleIndex,
		RuleID:         r.RuleID(),
		FlagVersion:    r.FlagVersion(),
	}
}

var notReady = evaluation.Result{Reason: evaluation.ReasonError, ErrorCode: evaluation.ErrorProviderNotReady, RuleIndex: -1}

func (c *Client) evaluate(ctx Context, key string, kind ruleset.FlagKind) (res evaluation.Result) {
	defer func() {
		// Evaluation must never take the application down; a panic here is a bug in the SDK.
		if p := recover(); p != nil {
			c.log.Error("evaluation panicked", "flag", key, "panic", p)
			res = evaluation.Result{Reason: evaluation.ReasonError, ErrorCode: evaluation.ErrorGeneral, RuleIndex: -1}
		}
	}()
	rs := c.ruleset.Load()
	if rs == nil {
		res = notReady
	} else {
		res = rs.EvaluateKind(key, ctx, kind)
	}
	if c.events != nil {
		c.events.evaluated(&ctx, key, &res)
	}
	return res
}

// --- events ---

// Track records a custom event (a conversion) with a numeric value for a context. It never
// blocks: the event is queued and sent with the next flush.
func (c *Client) Track(ctx Context, eventKey string, value float64) {
	c.track(ctx, eventKey, &value, nil)
}

// TrackOptions are the optional parts of a custom event.
type TrackOptions struct {
	// Value is the event's numeric value (revenue, duration, ...); nil for none.
	Value *float64
	// Properties are up to 50 string (of at most 1,024 characters), finite number or boolean
	// properties; others are dropped.
	Properties map[string]any
}

// TrackEvent records a custom event with optional value and properties. On a multi-kind context
// one event is recorded per kind, so experiments bucketed by any kind see it.
func (c *Client) TrackEvent(ctx Context, eventKey string, opts TrackOptions) {
	c.track(ctx, eventKey, opts.Value, opts.Properties)
}

func (c *Client) track(ctx Context, eventKey string, value *float64, props map[string]any) {
	if c.events == nil || ctx.Err() != nil || eventKey == "" {
		return
	}
	c.events.track(&ctx, eventKey, value, props)
}

// Flush asks for the queued events to be sent now, without waiting.
func (c *Client) Flush() {
	if c.events != nil {
		c.events.requestFlush()
	}
}

// FlushAndWait sends the queued events and the evaluation summary now, and waits until they are
// delivered or given up on, or ctx ends.
func (c *Client) FlushAndWait(ctx context.Context) error {
	if c.events == nil {
		return nil
	}
	return c.events.flushAndWait(ctx)
}

// EventStats counts what happened to events so far.
type EventStats struct {
	// Queued events waiting to be sent.
	Queued int
	// Dropped events: pushed out of a full buffer (oldest first).
	Dropped uint64
	// Sent events, accepted by the collector.
	Sent uint64
	// Failed events: rejected by the collector (4xx other than 429) or given up on after retries.
	Failed uint64
	// Deduplicated exposures not queued because the same one was sent within the window.
	Deduplicated uint64
}

// EventStats returns the event counters (all zero when events are off).
func (c *Client) EventStats() EventStats {
	if c.events == nil {
		return EventStats{}
	}
	return c.events.stats()
}

// Close stops the data source, flushes queued events and waits for a change listener in progress
// (together up to Config.CloseTimeout), and releases the client's goroutines. Evaluations after
// Close keep serving the last ruleset.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.CloseTimeout)
		defer cancel()
		if c.events != nil {
			c.closeErr = c.events.close(ctx)
		}
		c.cancel()
		c.wg.Wait()
		select {
		case <-c.listenersDone:
		case <-ctx.Done():
			// A callback that never returns must not hang the application's shutdown.
			c.log.Warn("a change listener has not returned; Close does not wait for it")
		}
		if c.ownHTTP {
			// Idle keep-alive connections would otherwise outlive the client (two goroutines
			// each) until the transport's idle timeout.
			c.cfg.HTTPClient.CloseIdleConnections()
		}
		c.mu.Lock()
		c.status.State = StateOff
		c.mu.Unlock()
		c.initOnce.Do(func() { close(c.initDone) })
	})
	return c.closeErr
}

// --- what data sources call ---

// update installs a new ruleset unless it is older than the one served (same environment, lower
// version) or the same version again.
func (c *Client) update(rs *evaluation.Ruleset, stale bool) {
	c.mu.Lock()
	cur := c.ruleset.Load()
	before := statusKeyOf(c.status)
	c.status.Stale = stale
	c.status.State = StateValid
	c.status.LastError = nil
	if cur != nil && cur.Environment().ID == rs.Environment().ID && rs.Version() <= cur.Version() {
		changed := statusKeyOf(c.status) != before
		c.mu.Unlock()
		if rs.Version() < cur.Version() {
			c.log.Warn("ignoring an older ruleset", "version", rs.Version(), "serving", cur.Version())
		}
		c.initOnce.Do(func() { close(c.initDone) })
		if changed {
			c.listeners.notify() // a recovery: status listeners hear of it
		}
		return
	}
	c.ruleset.Store(rs)
	c.status.RulesetVersion = rs.Version()
	c.status.LastUpdate = c.cfg.Now()
	c.mu.Unlock()
	for _, p := range rs.Problems() {
		c.log.Warn("malformed configuration in ruleset; affected flags serve fallback values", "problem", p.String())
	}
	c.initOnce.Do(func() { close(c.initDone) })
	c.listeners.notify()
}

// interrupted records a recoverable data source error.
func (c *Client) interrupted(err error) {
	c.mu.Lock()
	before := statusKeyOf(c.status)
	if c.status.State != StateInitializing {
		c.status.State = StateInterrupted
	}
	c.status.LastError = err
	changed := statusKeyOf(c.status) != before
	c.mu.Unlock()
	if changed {
		c.listeners.notify()
	}
}

// fail records a permanent data source error and releases initialization waiters.
func (c *Client) fail(err error) {
	c.log.Error("data source stopped", "error", err)
	c.mu.Lock()
	c.status.State = StateOff
	c.status.LastError = err
	c.mu.Unlock()
	c.initOnce.Do(func() { close(c.initDone) })
	c.listeners.notify()
}
