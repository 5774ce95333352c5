// Package provider is the OpenFeature provider for Switchyard: it lets applications written
// against the vendor-neutral OpenFeature API (github.com/open-feature/go-sdk) evaluate Switchyard
// flags. It lives in its own module so that the core SDK stays free of dependencies.
//
//	client, _ := switchyard.New(switchyard.Config{SDKKey: key, StartNonBlocking: true})
//	openfeature.SetProviderAndWait(provider.New(client))
//	of := openfeature.NewDefaultClient()
//	enabled, _ := of.BooleanValue(ctx, "new-checkout", false,
//		openfeature.NewEvaluationContext("user-123", map[string]any{"country": "US"}))
//
// Evaluation contexts map to Switchyard contexts: the targeting key is the context key; the
// attribute "kind" names the context kind (default "user"); with kind "multi", every attribute
// that is a map is one kind (its "targetingKey" or "key" member being that kind's key).
package provider

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/switchyard-io/switchyard/sdks/go/evaluation"
	"github.com/switchyard-io/switchyard/sdks/go/switchyard"
)

// Name is the provider's name in OpenFeature metadata.
const Name = "switchyard"

// ReasonPrerequisiteFailed is Switchyard's custom resolution reason: a prerequisite flag was not
// met and the off variation (or the default value) was served.
const ReasonPrerequisiteFailed openfeature.Reason = "PREREQUISITE_FAILED"

// Provider is an OpenFeature FeatureProvider (with StateHandler, EventHandler and Tracker) backed
// by a Switchyard client.
type Provider struct {
	client      *switchyard.Client
	initTimeout time.Duration
	closeClient bool
	events      chan openfeature.Event

	mu           sync.Mutex
	removeUpdate func()
	removeStatus func()
	// state: initializing until Init returns, then ready or failed; a failed provider turns
	// ready (a PROVIDER_READY event) with the first ruleset that arrives after. A ready provider
	// turns stale while the client's connection to the relay is lost (or the relay serves stale
	// data) and ready again when it recovers; fatal when the relay rejects the key for good.
	state atomic.Int32
}

const (
	stateInitializing int32 = iota
	stateReady
	stateFailed
	stateStale
	stateFatal
)

// Option configures a Provider.
type Option func(*Provider)

// WithInitTimeout bounds how long Init (SetProviderAndWait) waits for the first ruleset. Default
// 5 s.
func WithInitTimeout(d time.Duration) Option { return func(p *Provider) { p.initTimeout = d } }

// WithCloseOnShutdown makes the provider close the client when OpenFeature shuts it down.
func WithCloseOnShutdown() Option { return func(p *Provider) { p.closeClient = true } }

// New returns a provider evaluating with client.
func New(client *switchyard.Client, opts ...Option) *Provider {
	p := &Provider{client: client, initTimeout: 5 * time.Second, events: make(chan openfeature.Event, 16)}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Metadata names the provider.
func (p *Provider) Metadata() openfeature.Metadata { return openfeature.Metadata{Name: Name} }

// Hooks returns no provider hooks.
func (p *Provider) Hooks() []openfeature.Hook { return nil }

// Init waits for the client's first ruleset, then forwards ruleset updates as
// PROVIDER_CONFIGURATION_CHANGED events. When the wait times out (the relay is slow or down),
// the provider starts in ERROR and sends PROVIDER_READY when the first ruleset arrives later;
// a rejected SDK key is a fatal initialization error.
func (p *Provider) Init(openfeature.EvaluationContext) error {
	p.mu.Lock()
	if p.removeUpdate == nil {
		p.removeUpdate = p.client.OnUpdate(p.forward)
		p.removeStatus = p.client.OnStatusChange(p.statusChanged)
	}
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), p.initTimeout)
	defer cancel()
	err := p.client.WaitForInitialization(ctx)
	if err == nil {
		p.state.Store(stateReady)
		return nil
	}
	p.state.Store(stateFailed)
	// A ruleset that arrived between the timeout and here found the provider initializing.
	if p.client.Initialized() && p.state.CompareAndSwap(stateFailed, stateReady) {
		p.send(openfeature.ProviderReady, "first ruleset received", nil, 0)
	}
	if errors.Is(err, switchyard.ErrUnauthorized) {
		p.state.Store(stateFatal)
		return &openfeature.ProviderInitError{ErrorCode: openfeature.ProviderFatalCode, Message: err.Error()}
	}
	return err
}

// forward turns a ruleset update into an OpenFeature event.
func (p *Provider) forward(u switchyard.Update) {
	switch p.state.Load() {
	case stateInitializing: // Init's own return makes the provider ready
	case stateFailed:
		if p.state.CompareAndSwap(stateFailed, stateReady) {
			p.send(openfeature.ProviderReady, "first ruleset received", u.ChangedFlags, u.Version)
		}
	case stateStale:
		// OpenFeature takes a configuration change for READY: say again that data is stale.
		p.send(openfeature.ProviderConfigChange, "ruleset updated", u.ChangedFlags, u.Version)
		p.send(openfeature.ProviderStale, "the relay serves stale data", nil, u.Version)
	case stateReady:
		p.send(openfeature.ProviderConfigChange, "ruleset updated", u.ChangedFlags, u.Version)
	}
}

// statusChanged turns the client's data source state into provider state events: STALE while the
// connection is lost or the relay serves stale data (the last ruleset is still served), READY
// when it recovers, FATAL (an ERROR event with PROVIDER_FATAL) when the key is rejected for good.
// It runs on the client's listener goroutine, in order with forward.
func (p *Provider) statusChanged(st switchyard.Status) {
	msg := "relay connection lost"
	if st.LastError != nil {
		msg += ": " + st.LastError.Error()
	}
	switch {
	case st.State == switchyard.StateOff && errors.Is(st.LastError, switchyard.ErrUnauthorized):
		if p.state.Load() != stateInitializing && p.state.Swap(stateFatal) != stateFatal {
			p.sendEvent(openfeature.Event{ProviderName: Name, EventType: openfeature.ProviderError,
				ProviderEventDetails: openfeature.ProviderEventDetails{Message: st.LastError.Error(), ErrorCode: openfeature.ProviderFatalCode}})
		}
	case st.State == switchyard.StateInterrupted || (st.State == switchyard.StateValid && st.Stale):
		if st.State == switchyard.StateValid {
			msg = "the relay serves stale data"
		}
		if p.state.CompareAndSwap(stateReady, stateStale) {
			p.send(openfeature.ProviderStale, msg, nil, st.RulesetVersion)
		}
	case st.State == switchyard.StateValid:
		if p.state.CompareAndSwap(stateStale, stateReady) || p.state.CompareAndSwap(stateFailed, stateReady) {
			p.send(openfeature.ProviderReady, "relay connection current", nil, st.RulesetVersion)
		}
	}
}

func (p *Provider) send(t openfeature.EventType, msg string, flags []string, version int64) {
	p.sendEvent(openfeature.Event{ProviderName: Name, EventType: t,
		ProviderEventDetails: openfeature.ProviderEventDetails{Message: msg, FlagChanges: flags,
			EventMetadata: map[string]any{"version": version}}})
}

func (p *Provider) sendEvent(ev openfeature.Event) {
	select {
	case p.events <- ev:
	default: // OpenFeature is not draining events: drop rather than block the SDK
	}
}

// Shutdown stops forwarding events, and closes the client if WithCloseOnShutdown was given.
func (p *Provider) Shutdown() {
	p.mu.Lock()
	if p.removeUpdate != nil {
		p.removeUpdate()
		p.removeStatus()
		p.removeUpdate, p.removeStatus = nil, nil
	}
	p.mu.Unlock()
	if p.closeClient {
		_ = p.client.Close()
	}
}

// EventChannel delivers provider events to OpenFeature.
func (p *Provider) EventChannel() <-chan openfeature.Event { return p.events }

// BooleanEvaluation evaluates a boolean flag.
func (p *Provider) BooleanEvaluation(_ context.Context, flag string, defaultValue bool, flat openfeature.FlattenedContext) openfeature.BoolResolutionDetail {
	d := p.client.BoolDetail(toContext(flat), flag, defaultValue)
	return openfeature.BoolResolutionDetail{Value: d.Value, ProviderResolutionDetail: resolution(d)}
}

// StringEvaluation evaluates a string flag.
func (p *Provider) StringEvaluation(_ context.Context, flag string, defaultValue string, flat openfeature.FlattenedContext) openfeature.StringResolutionDetail {
	d := p.client.StringDetail(toContext(flat), flag, defaultValue)
	return openfeature.StringResolutionDetail{Value: d.Value, ProviderResolutionDetail: resolution(d)}
}

// FloatEvaluation evaluates a number flag.
func (p *Provider) FloatEvaluation(_ context.Context, flag string, defaultValue float64, flat openfeature.FlattenedContext) openfeature.FloatResolutionDetail {
	d := p.client.NumberDetail(toContext(flat), flag, defaultValue)
	return openfeature.FloatResolutionDetail{Value: d.Value, ProviderResolutionDetail: resolution(d)}
}

// IntEvaluation evaluates a number flag whose served value must be an integer; a fractional
// value gives TYPE_MISMATCH and the default.
func (p *Provider) IntEvaluation(_ context.Context, flag string, defaultValue int64, flat openfeature.FlattenedContext) openfeature.IntResolutionDetail {
	d := p.client.NumberDetail(toContext(flat), flag, float64(defaultValue))
	if d.Variation != "" && (d.Value != math.Trunc(d.Value) || d.Value >= 1<<63 || d.Value < -(1<<63)) {
		return openfeature.IntResolutionDetail{Value: defaultValue, ProviderResolutionDetail: openfeature.ProviderResolutionDetail{
			ResolutionError: openfeature.NewTypeMismatchResolutionError("the served value is not an integer"),
			Reason:          openfeature.ErrorReason,
		}}
	}
	value := defaultValue
	if d.Variation != "" {
		value = int64(d.Value)
	}
	return openfeature.IntResolutionDetail{Value: value, ProviderResolutionDetail: resolution(d)}
}

// ObjectEvaluation evaluates a json flag (any JSON value).
func (p *Provider) ObjectEvaluation(_ context.Context, flag string, defaultValue any, flat openfeature.FlattenedContext) openfeature.InterfaceResolutionDetail {
	d := p.client.JSONDetail(toContext(flat), flag, defaultValue)
	return openfeature.InterfaceResolutionDetail{Value: d.Value, ProviderResolutionDetail: resolution(d)}
}

// Track records a custom event; the details' value is sent when non-zero, its attributes as
// properties.
func (p *Provider) Track(_ context.Context, name string, evalCtx openfeature.EvaluationContext, details openfeature.TrackingEventDetails) {
	flat := evalCtx.Attributes()
	if k := evalCtx.TargetingKey(); k != "" {
		flat[openfeature.TargetingKey] = k
	}
	opts := switchyard.TrackOptions{Properties: details.Attributes()}
	if v := details.Value(); v != 0 {
		opts.Value = &v
	}
	p.client.TrackEvent(toContext(flat), name, opts)
}

func resolution[T any](d switchyard.Detail[T]) openfeature.ProviderResolutionDetail {
	r := openfeature.ProviderResolutionDetail{Variant: d.Variation, Reason: openfeature.Reason(d.Reason), FlagMetadata: openfeature.FlagMetadata{}}
	if d.FlagVersion != 0 {
		r.FlagMetadata["flagVersion"] = d.FlagVersion
	}
	if d.RuleIndex >= 0 {
		r.FlagMetadata["ruleIndex"] = int64(d.RuleIndex)
		if d.RuleID != "" {
			r.FlagMetadata["ruleId"] = d.RuleID
		}
	}
	if d.Reason == evaluation.ReasonError {
		r.ResolutionError = resolutionError(d.ErrorCode)
	}
	return r
}

func resolutionError(code evaluation.ErrorCode) openfeature.ResolutionError {
	msg := "switchyard: " + string(code)
	switch code {
	case evaluation.ErrorFlagNotFound:
		return openfeature.NewFlagNotFoundResolutionError(msg)
	case evaluation.ErrorTypeMismatch:
		return openfeature.NewTypeMismatchResolutionError(msg)
	case evaluation.ErrorParse:
		return openfeature.NewParseErrorResolutionError(msg)
	case evaluation.ErrorTargetingKeyMissing:
		return openfeature.NewTargetingKeyMissingResolutionError(msg)
	case evaluation.ErrorInvalidContext:
		return openfeature.NewInvalidContextResolutionError(msg)
	case evaluation.ErrorProviderNotReady:
		return openfeature.NewProviderNotReadyResolutionError(msg)
	}
	return openfeature.NewGeneralResolutionError(msg)
}

// toContext converts an OpenFeature flattened context to a Switchyard context.
func toContext(flat openfeature.FlattenedContext) switchyard.Context {
	kind, _ := flat["kind"].(string)
	if kind != "multi" {
		if kind == "" {
			kind = "user"
		}
		key, attrs := keyAndAttributes(flat)
		return switchyard.NewKindContext(kind, key, attrs...)
	}
	var parts []switchyard.Context
	for name, v := range flat {
		m, ok := v.(map[string]any)
		if !ok {
			continue // the multi context's own targeting key and scalar attributes have no kind
		}
		key, attrs := keyAndAttributes(m)
		parts = append(parts, switchyard.NewKindContext(name, key, attrs...))
	}
	return switchyard.NewMultiContext(parts...)
}

func keyAndAttributes(m map[string]any) (string, []switchyard.Attribute) {
	key, _ := m[openfeature.TargetingKey].(string)
	if key == "" {
		key, _ = m["key"].(string)
	}
	attrs := make([]switchyard.Attribute, 0, len(m))
	for name, v := range m {
		switch name {
		case openfeature.TargetingKey, "key", "kind":
			continue
		}
		if t, ok := v.(time.Time); ok {
			v = t.UTC().Format(time.RFC3339Nano) // dates compare through RFC 3339 strings
		}
		attrs = append(attrs, switchyard.Attr(name, v))
	}
	return key, attrs
}

// Interface checks.
var (
	_ openfeature.FeatureProvider = (*Provider)(nil)
	_ openfeature.StateHandler    = (*Provider)(nil)
	_ openfeature.EventHandler    = (*Provider)(nil)
	_ openfeature.Tracker         = (*Provider)(nil)
)
