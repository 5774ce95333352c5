package switchyard

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/switchyard-io/switchyard/sdks/go/evaluation"
)

// Event wire format: sdks/spec/events.schema.json.

type sdkInfo struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

var thisSDK = &sdkInfo{Name: "switchyard-go", Version: Version}

type envelope struct {
	EventID     string   `json:"event_id"`
	Type        string   `json:"type"`
	Timestamp   int64    `json:"timestamp"`
	ContextKind string   `json:"context_kind,omitempty"`
	ContextKey  string   `json:"context_key,omitempty"`
	SDK         *sdkInfo `json:"sdk,omitempty"`
}

type exposureEvent struct {
	envelope
	FlagKey       string `json:"flag_key"`
	VariationKey  string `json:"variation_key"`
	FlagVersion   int64  `json:"flag_version"`
	Reason        string `json:"reason,omitempty"`
	RuleID        string `json:"rule_id,omitempty"`
	ExperimentKey string `json:"experiment_key,omitempty"`
}

type trackEvent struct {
	envelope
	EventKey   string         `json:"event_key"`
	Value      *float64       `json:"value,omitempty"`
	Properties map[string]any `json:"properties,omitempty"`
}

type summaryEvent struct {
	envelope
	Start    int64            `json:"start"`
	End      int64            `json:"end"`
	Counters []summaryCounter `json:"counters"`
}

type summaryCounter struct {
	FlagKey      string `json:"flag_key"`
	VariationKey string `json:"variation_key"`
	FlagVersion  int64  `json:"flag_version"`
	Count        int64  `json:"count"`
}

type summaryKey struct {
	flag, variation string
	version         int64
}

const (
	eventsPath = "/v1/events"
	// maxDedupEntries bounds one generation of the exposure dedup table; a full generation is
	// rotated early (some exposures are then sent again sooner, never lost).
	maxDedupEntries = 100000
	// The collector's limits (sdks/spec/events.schema.json; ingest's defaults): it rejects a
	// track event with more properties or a longer property value (too_long), and a summary with
	// more counters or an encoded size over 512 KiB (event_too_large). It refuses a whole request
	// over 4 MiB as sent with 413, which is not retried: batches are cut at half that, whatever
	// BatchSize allows, and summaries at half the event limit.
	maxProperties       = 50
	maxPropertyValueLen = 1024
	maxSummaryCounters  = 10000
	maxSummaryBytes     = 256 << 10
	maxBatchBytes       = 2 << 20
)

// exposureKey identifies an exposure for deduplication. The experiment is part of it: a
// context served the same variation before an experiment started on the flag must still be
// exposed to the experiment at once (its units are the exposures that carry its key).
type exposureKey struct{ kind, key, flag, variation, experiment string }

// eventProcessor queues events in a bounded ring buffer (dropping the oldest when full), counts
// evaluations for summaries, deduplicates exposures, and flushes by size and interval.
type eventProcessor struct {
	cfg    EventsConfig
	url    string
	sdkKey string
	http   *http.Client
	log    *slog.Logger
	now    func() time.Time

	mu      sync.Mutex
	ring    []any
	head, n int
	// Exposure deduplication without reading the clock on the evaluation path (time.Now is not
	// free): two generations of seen exposures; an exposure is a duplicate while it is in either.
	// The flush loop rotates the generations every DedupWindow, so an exposure is sent at most once
	// per window and again after one to two windows. The generations are read without the lock
	// and replaced under it (events_record.go).
	seed         maphash.Seed
	dedup        atomic.Pointer[dedupGen]
	rotatedAt    int64 // unix ms of the last rotation
	counts       *countShards
	summaryStart int64

	flushCh     chan chan struct{} // a flush request; a non-nil channel is closed when it is done
	stopCh      chan struct{}
	done        chan struct{}
	sendCtx     context.Context
	cancelSends context.CancelFunc
	stopOnce    sync.Once

	dropped, sent, failed atomic.Uint64
}

func newEventProcessor(cfg Config, log *slog.Logger) *eventProcessor {
	ctx, cancel := context.WithCancel(context.Background())
	p := &eventProcessor{
		cfg:          cfg.Events,
		url:          strings.TrimRight(cfg.EventsURL, "/") + eventsPath,
		sdkKey:       cfg.SDKKey,
		http:         cfg.HTTPClient,
		log:          log,
		now:          cfg.Now,
		ring:         make([]any, cfg.Events.Capacity),
		seed:         maphash.MakeSeed(),
		rotatedAt:    cfg.Now().UnixMilli(),
		counts:       newCountShards(),
		summaryStart: cfg.Now().UnixMilli(),
		flushCh:      make(chan chan struct{}, 1),
		stopCh:       make(chan struct{}),
		done:         make(chan struct{}),
		sendCtx:      ctx,
		cancelSends:  cancel,
	}
	p.dedup.Store(&dedupGen{seen: newIDSet(minIDSetSlots), prev: newIDSet(minIDSetSlots)})
	return p
}

// evaluated records one evaluation: a summary count, and an exposure unless the same context x
// flag x variation was exposed within the dedup window. It takes the processor's lock only for a
// new exposure.
func (p *eventProcessor) evaluated(ctx *Context, flagKey string, r *evaluation.Result) {
	variation := r.VariationKey()
	count := !p.cfg.DisableSummaries
	if r.Variation == nil {
		if count {
			p.counts.add(flagKey, r, true, false)
		}
		return
	}
	kind, key := exposureUnit(ctx, r)
	experiment := r.ExperimentKey()
	id := exposureID(p.seed, exposureKey{kind, key, flagKey, variation, experiment})
	if g := p.dedup.Load(); g.seen.has(id) || g.prev.has(id) {
		p.counts.add(flagKey, r, count, true)
		return
	}
	if count {
		p.counts.add(flagKey, r, true, false)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	g := p.dedup.Load() // may have changed since
	if g.seen.has(id) || g.prev.has(id) {
		p.counts.add(flagKey, r, false, true)
		return
	}
	if g.seen.n >= maxDedupEntries {
		g = &dedupGen{seen: newIDSet(minIDSetSlots), prev: g.seen}
	}
	if seen := g.seen.insert(id); seen != g.seen {
		g = &dedupGen{seen: seen, prev: g.prev}
	}
	p.dedup.Store(g)
	now := p.now().UnixMilli()
	p.enqueueLocked(&exposureEvent{
		envelope:      envelope{EventID: newUUIDv7(now), Type: "exposure", Timestamp: now, ContextKind: kind, ContextKey: key, SDK: thisSDK},
		FlagKey:       flagKey,
		VariationKey:  variation,
		FlagVersion:   r.FlagVersion(),
		Reason:        string(r.Reason),
		RuleID:        r.RuleID(),
		ExperimentKey: experiment,
	})
}

// exposureUnit picks the context kind an exposure is attributed to: the one that decided the
// result (a rollout's or a target's kind) when the context has it, else the context's primary kind.
func exposureUnit(ctx *Context, r *evaluation.Result) (kind, key string) {
	if k := r.ContextKind(); k != "" {
		if key, ok := ctx.Key(k); ok {
			return k, key
		}
	}
	return ctx.Primary()
}

// rotateDedup starts a new dedup generation when the current one is a window old.
func (p *eventProcessor) rotateDedup() {
	now := p.now().UnixMilli()
	p.mu.Lock()
	defer p.mu.Unlock()
	if now-p.rotatedAt >= p.cfg.DedupWindow.Milliseconds() {
		p.dedup.Store(&dedupGen{seen: newIDSet(minIDSetSlots), prev: p.dedup.Load().seen})
		p.rotatedAt = now
	}
}

func (p *eventProcessor) track(ctx *Context, eventKey string, value *float64, props map[string]any) {
	if len(props) > 0 {
		clean := make(map[string]any, len(props))
		for k, v := range props {
			ok := false
			switch v := v.(type) {
			case bool, int, int64, int32, uint, uint64, uint32:
				ok = true
			case string:
				ok = utf8.RuneCountInString(v) <= maxPropertyValueLen
			case float64:
				ok = !math.IsNaN(v) && !math.IsInf(v, 0) // not JSON numbers
			case float32:
				ok = !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0)
			}
			if ok && len(clean) < maxProperties && len(k) <= 128 {
				clean[k] = v
			}
		}
		props = clean
	}
	now := p.now().UnixMilli()
	p.mu.Lock()
	defer p.mu.Unlock()
	// One event per kind, so that an experiment bucketed by any of the context's kinds finds it.
	for _, kind := range ctx.Kinds() {
		key, _ := ctx.Key(kind)
		p.enqueueLocked(&trackEvent{
			envelope:   envelope{EventID: newUUIDv7(now), Type: "track", Timestamp: now, ContextKind: kind, ContextKey: key, SDK: thisSDK},
			EventKey:   eventKey,
			Value:      value,
			Properties: props,
		})
	}
}

func (p *eventProcessor) enqueueLocked(ev any) {
	if p.n == len(p.ring) {
		p.ring[p.head] = nil
		p.head = (p.head + 1) % len(p.ring)
		p.n--
		p.dropped.Add(1)
	}
	p.ring[(p.head+p.n)%len(p.ring)] = ev
	p.n++
	if p.n >= p.cfg.BatchSize {
		p.requestFlush()
	}
}

func (p *eventProcessor) requestFlush() {
	select {
	case p.flushCh <- nil:
	default: // a flush is already pending
	}
}

// flushAndWait asks for a flush and waits until it is done (delivered, given up, or ctx ended).
func (p *eventProcessor) flushAndWait(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case p.flushCh <- done:
	case <-p.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-p.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *eventProcessor) stats() EventStats {
	p.mu.Lock()
	n := p.n
	p.mu.Unlock()
	return EventStats{Queued: n, Dropped: p.dropped.Load(), Sent: p.sent.Load(), Failed: p.failed.Load(), Deduplicated: p.counts.deduplicated()}
}

func (p *eventProcessor) run(ctx context.Context) {
	defer close(p.done)
	ticker := time.NewTicker(p.cfg.FlushInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.stopCh:
			return
		case <-ticker.C:
			p.rotateDedup()
			p.flush(p.sendCtx, true)
		case done := <-p.flushCh:
			p.rotateDedup()
			p.flush(p.sendCtx, done != nil)
			if done != nil {
				close(done)
			}
		}
	}
}

// close stops the flush loop and sends whatever is left, within ctx's deadline.
func (p *eventProcessor) close(ctx context.Context) error {
	p.stopOnce.Do(func() { close(p.stopCh) })
	stop := context.AfterFunc(ctx, p.cancelSends) // a flush in progress must not outlive the deadline
	defer stop()
	select {
	case <-p.done:
	case <-ctx.Done():
	}
	p.flush(ctx, true)
	p.cancelSends()
	if n := p.stats().Queued; n > 0 || ctx.Err() != nil {
		return fmt.Errorf("switchyard: closing: events not delivered before the deadline: %w", ctx.Err())
	}
	return nil
}

// flush sends every queued event, plus (withSummary) the evaluation counts since the last summary.
func (p *eventProcessor) flush(ctx context.Context, withSummary bool) {
	p.mu.Lock()
	batch := make([]any, 0, p.n+1)
	for p.n > 0 {
		batch = append(batch, p.ring[p.head])
		p.ring[p.head] = nil
		p.head = (p.head + 1) % len(p.ring)
		p.n--
	}
	var summary map[summaryKey]int64
	var start, end int64
	if withSummary {
		if summary = p.counts.take(); len(summary) > 0 {
			start, end = p.summaryStart, p.now().UnixMilli()
			p.summaryStart = end
		}
	}
	p.mu.Unlock()
	batch = appendSummaries(batch, summary, start, end)
	// Events are encoded one by one, so that one that cannot be (a NaN value) is dropped alone
	// rather than with its whole batch, and batches are cut by size as well as by count.
	var parts [][]byte
	size := 0
	for _, ev := range batch {
		data, err := json.Marshal(ev)
		if err != nil {
			p.log.Error("an event does not encode; dropping it", "error", err)
			p.failed.Add(1)
			continue
		}
		if len(parts) > 0 && (len(parts) >= p.cfg.BatchSize || size+len(data)+1 > maxBatchBytes) {
			p.send(ctx, parts)
			parts, size = nil, 0
		}
		parts = append(parts, data)
		size += len(data) + 1
	}
	if len(parts) > 0 {
		p.send(ctx, parts)
	}
}

// appendSummaries appends the summary of a window's counts to batch, as several summary events
// when one would exceed the collector's limits on counters or size.
func appendSummaries(batch []any, counts map[summaryKey]int64, start, end int64) []any {
	var s *summaryEvent
	size := 0
	for k, n := range counts {
		c := summaryCounter{FlagKey: k.flag, VariationKey: k.variation, FlagVersion: k.version, Count: n}
		// An upper bound of the counter's encoded size: JSON escapes a byte in at most 6.
		cs := 6*(len(c.FlagKey)+len(c.VariationKey)) + 96
		if s == nil || len(s.Counters) >= maxSummaryCounters || size+cs > maxSummaryBytes {
			s = &summaryEvent{
				envelope: envelope{EventID: newUUIDv7(end), Type: "summary", Timestamp: end, SDK: thisSDK},
				Start:    start,
				End:      end,
			}
			batch = append(batch, s)
			size = 0
		}
		s.Counters = append(s.Counters, c)
		size += cs
	}
	return batch
}

// send delivers one batch: retried with jittered backoff on network errors and 5xx, after
// Retry-After on 429/503, never on other 4xx; dropped (and counted) after MaxAttempts.
func (p *eventProcessor) send(ctx context.Context, events [][]byte) {
	body := append(append([]byte{'['}, bytes.Join(events, []byte(","))...), ']')
	encoding := ""
	if !p.cfg.DisableGzip {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(body)
		_ = zw.Close()
		body, encoding = buf.Bytes(), "gzip"
	}
	b := backoff{initial: p.cfg.InitialBackoff, max: p.cfg.MaxBackoff}
	for attempt := 1; ; attempt++ {
		wait, done := p.post(ctx, body, encoding, len(events), &b)
		if done {
			return
		}
		if attempt >= p.cfg.MaxAttempts || ctx.Err() != nil {
			p.log.Warn("giving up on an event batch", "events", len(events), "attempts", attempt)
			p.failed.Add(uint64(len(events)))
			return
		}
		if !sleep(ctx, wait) {
			p.failed.Add(uint64(len(events)))
			return
		}
	}
}

// post makes one attempt; done means the batch is settled (accepted or rejected for good),
// otherwise wait is the delay before the next attempt.
func (p *eventProcessor) post(ctx context.Context, body []byte, encoding string, n int, b *backoff) (wait time.Duration, done bool) {
	reqCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		p.log.Error("bad events URL", "error", err)
		p.failed.Add(uint64(n))
		return 0, true
	}
	req.Header.Set("Content-Type", "application/json")
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	req.Header.Set("Authorization", p.sdkKey)
	req.Header.Set("User-Agent", userAgent)
	// When this attempt was sent, by this process's clock: the collector corrects the events'
	// times when that clock is wrong (a retry gets the same correction, so keeps its times).
	req.Header.Set("X-Switchyard-Sent-At", strconv.FormatInt(p.now().UnixMilli(), 10))
	resp, err := p.http.Do(req)
	if err != nil {
		p.log.Warn("sending events failed", "error", err)
		return b.next(), false
	}
	defer resp.Body.Close()
	respBody, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		accepted := n
		var ack struct {
			Accepted *int `json:"accepted"`
		}
		if json.Unmarshal(respBody, &ack) == nil && ack.Accepted != nil && *ack.Accepted >= 0 && *ack.Accepted <= n {
			accepted = *ack.Accepted
		}
		if accepted < n {
			p.log.Warn("the collector rejected some events", "rejected", n-accepted, "response", string(respBody))
		}
		p.sent.Add(uint64(accepted))
		p.failed.Add(uint64(n - accepted))
		return 0, true
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		d, ok := retryAfter(resp.Header.Get("Retry-After"), p.now())
		if !ok {
			d = b.next()
		}
		return min(d, p.cfg.MaxRetryAfter), false
	case code >= 400 && code < 500:
		p.log.Error("the collector refused an event batch; not retrying", "status", code, "response", string(respBody))
		p.failed.Add(uint64(n))
		return 0, true
	default:
		p.log.Warn("the collector failed; will retry", "status", code)
		return b.next(), false
	}
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(h string, now time.Time) (time.Duration, bool) {
	if h == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(strings.TrimSpace(h), 10, 64); err == nil && secs >= 0 {
		return time.Duration(min(secs, math.MaxInt64/int64(time.Second))) * time.Second, true // no overflow to a negative wait
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// newUUIDv7 returns an RFC 9562 version 7 UUID: 48 bits of Unix milliseconds, then random bits
// (math/rand/v2's generator is seeded from the OS and safe for concurrent use).
func newUUIDv7(unixMilli int64) string {
	var u [16]byte
	binary.BigEndian.PutUint64(u[8:], rand.Uint64())
	binary.BigEndian.PutUint64(u[0:], uint64(unixMilli)<<16|uint64(rand.Uint32()&0xffff))
	u[6] = 0x70 | (u[6] & 0x0f) // version 7
	u[8] = 0x80 | (u[8] & 0x3f) // variant 10
	var out [36]byte
	hex.Encode(out[0:8], u[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], u[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], u[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], u[8:10])
	out[23] = '-'
	hex.Encode(out[24:], u[10:])
	return string(out[:])
}
