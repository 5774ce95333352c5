// Package collector accepts SDK event batches and makes them durable on Kafka: it decodes a
// batch (JSON or Arrow IPC), validates every event, sends the valid ones to the events topic
// (key = environment + context key, so one context's events stay in order) and the invalid ones
// with their reason to the dead-letter topic, and reports success only once Kafka acknowledged
// every record. In-flight bytes are bounded: when Kafka is slow or down the collector refuses
// new batches (Unavailable, with a retry hint) instead of buffering without limit.
package collector

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/semaphore"
	"golang.org/x/time/rate"

	"github.com/switchyard-io/switchyard/ingest/internal/event"
	"github.com/switchyard-io/switchyard/ingest/internal/keys"
	"github.com/switchyard-io/switchyard/platform/errs"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// Format is the encoding of a batch.
type Format int

// Batch formats.
const (
	FormatJSON Format = iota
	FormatArrow
)

// Config tunes a Collector.
type Config struct {
	EventsTopic string
	DLQTopic    string
	// MaxInFlightBytes bounds the decompressed bytes of all batches being processed or waiting
	// for Kafka's acknowledgement; past it new batches get ErrOverloaded.
	MaxInFlightBytes int64
	// MaxDecompressedBytes bounds one batch after gzip decompression.
	MaxDecompressedBytes int64
	// MaxEvents bounds the events of one batch.
	MaxEvents int
	// ProduceTimeout bounds the wait for Kafka's acknowledgement of one batch.
	ProduceTimeout time.Duration
	// Skew is the clock-skew bound beyond which event times are clamped.
	Skew event.Skew
	// ClientKeyRate and ServerKeyRate limit events per second per SDK key (0 = unlimited).
	ClientKeyRate float64
	ServerKeyRate float64
}

// Result is the outcome of an accepted batch.
type Result struct {
	Accepted int                  `json:"accepted"`
	Rejected map[event.Reason]int `json:"rejected"`
	// Clamped counts accepted events whose timestamp was outside the skew bound.
	Clamped int `json:"clamped"`
	// Corrected counts accepted events whose times were corrected for the sender's clock
	// (event.ClockOffset).
	Corrected int `json:"corrected,omitempty"`
}

// RetryError is an error after which the client should retry the whole batch later.
type RetryError struct {
	Err        *errs.Error
	RetryAfter time.Duration
}

func (e *RetryError) Error() string { return e.Err.Error() }

func (e *RetryError) Unwrap() error { return e.Err }

// ErrOverloaded (wrapped in a RetryError of kind Unavailable) is returned when the in-flight
// byte budget is exhausted, typically because Kafka is slow or down.
var ErrOverloaded = errors.New("collector overloaded: too many bytes waiting for Kafka")

// ErrRateLimited (wrapped in a RetryError of kind RateLimited) is returned when an SDK key sends
// more events per second than its limit.
var ErrRateLimited = errors.New("SDK key over its event rate limit")

// Producer is the part of a Kafka client the collector uses (*kgo.Client implements it).
type Producer interface {
	Produce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error))
}

// Collector turns event batches into acknowledged Kafka records.
type Collector struct {
	cfg      Config
	log      *slog.Logger
	producer Producer
	now      func() time.Time
	inflight *semaphore.Weighted

	limiters sync.Map // key hash -> *rate.Limiter
	decoders sync.Pool
	gzips    sync.Pool

	inflightBytes atomic.Int64
	lastFailLog   atomic.Int64
	m             metrics
}

type metrics struct {
	accepted  *prometheus.CounterVec
	rejected  *prometheus.CounterVec
	clamped   prometheus.Counter
	corrected prometheus.Counter
	refused   *prometheus.CounterVec
	ackTime   prometheus.Histogram
	inflightB prometheus.GaugeFunc
}

// New returns a collector producing through p.
func New(cfg Config, p Producer, log *slog.Logger, reg prometheus.Registerer, now func() time.Time) *Collector {
	if now == nil {
		now = time.Now
	}
	c := &Collector{cfg: cfg, log: log, producer: p, now: now, inflight: semaphore.NewWeighted(cfg.MaxInFlightBytes)}
	c.decoders.New = func() any { return new(event.JSONDecoder) }
	c.m = metrics{
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ingest_events_accepted_total", Help: "Events acknowledged by Kafka, by type."}, []string{"type"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ingest_events_rejected_total", Help: "Events sent to the dead-letter topic, by reason."}, []string{"reason"}),
		clamped:  prometheus.NewCounter(prometheus.CounterOpts{Name: "ingest_events_clamped_total", Help: "Accepted events whose timestamp was clamped into the skew bound."}),
		corrected: prometheus.NewCounter(prometheus.CounterOpts{Name: "ingest_events_time_corrected_total",
			Help: "Accepted events whose times were corrected for the sending SDK's clock error."}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ingest_batches_refused_total", Help: "Batches refused for backpressure, by cause."}, []string{"cause"}),
		ackTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ingest_kafka_ack_seconds", Help: "Time from producing a batch to Kafka acknowledging all of it.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
	}
	c.m.inflightB = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ingest_inflight_bytes", Help: "Bytes of batches in flight (budget: -max-inflight-bytes)."},
		func() float64 { return float64(c.inflightBytes.Load()) })
	if reg != nil {
		reg.MustRegister(c.m.accepted, c.m.rejected, c.m.clamped, c.m.corrected, c.m.refused, c.m.ackTime, c.m.inflightB)
	}
	return c
}

// InFlightBytes reports the bytes currently held against the in-flight budget.
func (c *Collector) InFlightBytes() int64 { return c.inflightBytes.Load() }

// Ingest processes one batch sent with key. gzipped says the body is gzip-compressed; sentAt
// is when the sender sent it by its own clock (ms since the epoch, 0: unknown), for
// event.ClockOffset. It returns once every record is acknowledged by Kafka; an error means the
// client should retry the whole batch (events already written are deduplicated downstream by
// event_id).
func (c *Collector) Ingest(ctx context.Context, key keys.Key, body []byte, format Format, gzipped bool, sentAt int64) (Result, error) {
	weight := int64(len(body))
	if gzipped {
		weight *= 4 // a first estimate; corrected once the size is known
	}
	if !c.acquire(weight) {
		return Result{}, c.overloaded()
	}
	release := func() { c.release(weight) }
	defer func() {
		if release != nil {
			release()
		}
	}()
	if gzipped {
		plain, err := c.gunzip(body)
		if err != nil {
			return Result{}, err
		}
		body = plain
		if extra := int64(len(body)) - weight; extra > 0 {
			if !c.acquire(extra) {
				return Result{}, c.overloaded()
			}
			weight += extra
		}
	}
	b := batchPool.Get().(*batch)
	b.reset(key.EnvironmentID, c.now().UnixMilli())
	b.offset = event.ClockOffset(b.now, sentAt, c.cfg.Skew)
	var err error
	switch format {
	case FormatArrow:
		err = decodeArrow(body, c.cfg.MaxEvents, c.cfg.Skew, b)
	default:
		d := c.decoders.Get().(*event.JSONDecoder)
		err = d.Decode(body, c.cfg.MaxEvents, func(e *event.Event, rej *event.Reject, raw func() []byte) {
			b.add(e, rej, raw, c.cfg.Skew)
		})
		c.decoders.Put(d)
	}
	if err != nil {
		batchPool.Put(b)
		if errors.Is(err, event.ErrBatchTooLarge) {
			return Result{}, errs.TooLarge("", "%s", err.Error())
		}
		return Result{}, errs.Malformed("", "%s", err.Error())
	}
	if err := c.rateLimit(key, b.valid); err != nil {
		batchPool.Put(b)
		return Result{}, err
	}
	res := b.result()
	waited, err := c.produce(ctx, b)
	if waited != nil {
		// Kafka has not answered for every record yet: keep the batch and its budget until it
		// has, so the memory bound holds, but answer the client now. (The batch goes back to
		// the pool only after produce's own Wait returned: a WaitGroup must not be reused
		// while a Wait is in progress.)
		r := release
		release = nil
		go func() {
			<-waited
			batchPool.Put(b)
			r()
		}()
	} else {
		batchPool.Put(b)
	}
	if err != nil {
		return Result{}, err
	}
	for t, n := range res.byType {
		if n > 0 {
			c.m.accepted.WithLabelValues(event.Type(t).String()).Add(float64(n))
		}
	}
	for r, n := range res.Rejected {
		c.m.rejected.WithLabelValues(string(r)).Add(float64(n))
	}
	c.m.clamped.Add(float64(res.Clamped))
	c.m.corrected.Add(float64(res.Corrected))
	return res.Result, nil
}

func (c *Collector) acquire(n int64) bool {
	if n > c.cfg.MaxInFlightBytes {
		n = c.cfg.MaxInFlightBytes
	}
	if !c.inflight.TryAcquire(n) {
		return false
	}
	c.inflightBytes.Add(n)
	return true
}

func (c *Collector) release(n int64) {
	if n > c.cfg.MaxInFlightBytes {
		n = c.cfg.MaxInFlightBytes
	}
	c.inflightBytes.Add(-n)
	c.inflight.Release(n)
}

func (c *Collector) overloaded() error {
	c.m.refused.WithLabelValues("inflight_bytes").Inc()
	e := errs.Unavailable(ErrOverloaded, "the collector is busy (Kafka is slow or unavailable); retry later")
	return &RetryError{Err: e, RetryAfter: 2 * time.Second}
}

func (c *Collector) gunzip(body []byte) ([]byte, error) {
	zr, _ := c.gzips.Get().(*gzip.Reader)
	var err error
	if zr == nil {
		zr, err = gzip.NewReader(bytes.NewReader(body))
	} else {
		err = zr.Reset(bytes.NewReader(body))
	}
	if err != nil {
		return nil, errs.Malformed("Content-Encoding", "invalid gzip body: %v", err)
	}
	defer c.gzips.Put(zr)
	max := c.cfg.MaxDecompressedBytes
	out := bytes.NewBuffer(make([]byte, 0, min(int64(len(body))*4, max)))
	n, err := io.Copy(out, io.LimitReader(zr, max+1))
	if err != nil {
		return nil, errs.Malformed("Content-Encoding", "invalid gzip body: %v", err)
	}
	if n > max {
		return nil, errs.TooLarge("", "decompressed batch is larger than %d bytes", max)
	}
	return out.Bytes(), nil
}

func (c *Collector) rateLimit(key keys.Key, events int) error {
	limit := c.cfg.ServerKeyRate
	if key.Kind == ruleset.KeyClient {
		limit = c.cfg.ClientKeyRate
	}
	if limit <= 0 || events == 0 {
		return nil
	}
	l, ok := c.limiters.Load(key.Hash)
	if !ok {
		burst := max(int(limit), c.cfg.MaxEvents)
		l, _ = c.limiters.LoadOrStore(key.Hash, rate.NewLimiter(rate.Limit(limit), burst))
	}
	r := l.(*rate.Limiter).ReserveN(c.now(), events)
	if !r.OK() {
		return c.rateLimited(time.Second)
	}
	if d := r.DelayFrom(c.now()); d > 0 {
		r.CancelAt(c.now())
		return c.rateLimited(d)
	}
	return nil
}

func (c *Collector) rateLimited(d time.Duration) error {
	c.m.refused.WithLabelValues("rate_limit").Inc()
	e := &errs.Error{Kind: errs.KindRateLimited, Message: "event rate limit of this SDK key exceeded; retry later", Err: ErrRateLimited}
	return &RetryError{Err: e, RetryAfter: d}
}

// produce sends the batch's records and waits for their acknowledgements, at most
// ProduceTimeout. When it gives up waiting it returns a channel closed once every promise has
// been called; nil means they all have.
func (c *Collector) produce(ctx context.Context, b *batch) (pending <-chan struct{}, err error) {
	n := len(b.records)
	if n == 0 {
		return nil, nil
	}
	start := time.Now()
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.ProduceTimeout)
	b.failed.Store(nil)
	b.wg.Add(n)
	for i := range b.records {
		r := &b.records[i]
		switch r.Topic {
		case "":
			r.Topic = c.cfg.EventsTopic
		case dlqTopicMarker:
			r.Topic = c.cfg.DLQTopic
		}
		c.producer.Produce(pctx, r, b.promise)
	}
	waited := make(chan struct{})
	go func() { b.wg.Wait(); cancel(); close(waited) }()
	timer := time.NewTimer(c.cfg.ProduceTimeout + time.Second)
	defer timer.Stop()
	select {
	case <-waited:
	case <-timer.C:
		c.m.refused.WithLabelValues("kafka_timeout").Inc()
		return waited, &RetryError{Err: errs.Unavailable(context.DeadlineExceeded, "Kafka did not acknowledge the batch in time; retry later"), RetryAfter: 5 * time.Second}
	}
	if p := b.failed.Load(); p != nil {
		c.m.refused.WithLabelValues("kafka_error").Inc()
		if now := time.Now().Unix(); now > c.lastFailLog.Load() {
			c.lastFailLog.Store(now) // at most about one line per second under an outage
			c.log.Warn("producing batch failed", "err", *p, "records", n)
		}
		return nil, &RetryError{Err: errs.Unavailable(*p, "Kafka did not accept the batch; retry later"), RetryAfter: 5 * time.Second}
	}
	c.m.ackTime.Observe(time.Since(start).Seconds())
	return nil, nil
}

// RetryAfterSeconds renders a retry hint for the Retry-After header (whole seconds, at least 1).
func RetryAfterSeconds(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10)
}

// batch holds one request's records; pooled, because at 1,000 requests/s its slices dominate
// allocation.
type batch struct {
	env string
	now int64
	// offset corrects the events' times for the sender's clock (event.ClockOffset).
	offset  int64
	records []kgo.Record
	arena   []byte
	valid   int
	res     result
	wg      sync.WaitGroup
	failed  atomic.Pointer[error]
}

type result struct {
	Result
	byType [4]int
}

var batchPool = sync.Pool{New: func() any { return &batch{} }}

func (b *batch) reset(env string, now int64) {
	b.env, b.now, b.offset, b.valid = env, now, 0, 0
	clear(b.records)
	b.records = b.records[:0]
	b.arena = b.arena[:0]
	b.res = result{}
}

func (b *batch) promise(_ *kgo.Record, err error) {
	if err != nil {
		b.failed.CompareAndSwap(nil, &err)
	}
	b.wg.Done()
}

func (b *batch) result() result {
	r := b.res
	if r.Rejected == nil {
		r.Rejected = map[event.Reason]int{}
	}
	return r
}

// add validates one decoded event and appends its record (events topic or, with a reason,
// dead-letter topic). Keys and values point into the arena, which is reallocated (never
// overwritten) as it grows, so earlier records stay valid.
func (b *batch) add(e *event.Event, rej *event.Reject, raw func() []byte, skew event.Skew) {
	if rej == nil {
		rej = event.Validate(e)
	}
	var rec kgo.Record
	if rej == nil {
		event.Normalize(e, b.now, b.offset, skew)
		start := len(b.arena)
		b.arena = append(b.arena, b.env...)
		b.arena = append(b.arena, ':')
		if e.Type != event.TypeSummary {
			b.arena = append(b.arena, e.ContextKey...)
		}
		keyEnd := len(b.arena)
		r := event.Record{Event: *e, EnvironmentID: b.env, ReceivedAt: b.now}
		b.arena = event.AppendRecord(b.arena, &r)
		if len(b.arena)-keyEnd > event.MaxEncodedEventLen {
			b.arena = b.arena[:start]
			rej = &event.Reject{Reason: event.ReasonEventTooLarge, Message: fmt.Sprintf("encoded event is larger than %d bytes", event.MaxEncodedEventLen)}
		} else {
			rec.Key = b.arena[start:keyEnd:keyEnd]
			rec.Value = b.arena[keyEnd:len(b.arena):len(b.arena)]
			b.valid++
			b.res.Accepted++
			b.res.byType[e.Type]++
			if b.offset != 0 {
				b.res.Corrected++
			}
			if e.Clamped {
				b.res.Clamped++
			}
		}
	}
	if rej != nil {
		if b.res.Rejected == nil {
			b.res.Rejected = map[event.Reason]int{}
		}
		b.res.Rejected[rej.Reason]++
		start := len(b.arena)
		b.arena = append(b.arena, b.env...)
		keyEnd := len(b.arena)
		// A rejected event can be bigger than Kafka takes in one record (1 MiB by default): in
		// full it would fail the whole batch with a 503 that the SDK retries forever. Its dead
		// letter keeps the start of it.
		v, h := CutDeadLetter(raw(), DLQHeaders(rej, b.env, "collector", b.now))
		b.arena = append(b.arena, v...)
		rec.Topic = dlqTopicMarker
		rec.Key = b.arena[start:keyEnd:keyEnd]
		rec.Value = b.arena[keyEnd:len(b.arena):len(b.arena)]
		rec.Headers = h
	}
	b.records = append(b.records, rec)
}

// MaxDeadLetterValue bounds the value of a dead letter (the collector's and the writer's): a
// value larger than this is cut to its first MaxDeadLetterValue bytes (header truncated_from:
// its full size), so that its record stays under Kafka's message size limit.
const MaxDeadLetterValue = event.MaxEncodedEventLen

// CutDeadLetter returns the value v of a dead letter cut to MaxDeadLetterValue bytes and its
// headers h, with a truncated_from header holding len(v) added when v was cut. The value
// returned aliases v.
func CutDeadLetter(v []byte, h []kgo.RecordHeader) ([]byte, []kgo.RecordHeader) {
	return cutDeadLetter(v, MaxDeadLetterValue, "truncated_from", h)
}

// cutDeadLetter cuts b to limit bytes, adding to h a header named header holding len(b) when
// it does (b's prefix is returned, not a copy).
func cutDeadLetter(b []byte, limit int, header string, h []kgo.RecordHeader) ([]byte, []kgo.RecordHeader) {
	if len(b) <= limit {
		return b, h
	}
	return b[:limit], append(h, kgo.RecordHeader{Key: header, Value: []byte(strconv.Itoa(len(b)))})
}

// MaxDeadLetterKey bounds the key of a dead letter: a longer key is cut to its first
// MaxDeadLetterKey bytes (header key_truncated_from: its full size). The collector's keys are
// an environment id, or one and a context key of at most event.MaxKeyLen characters (at most
// 1061 bytes), so only a record another producer wrote to the events topic can be cut. With
// the value cut to MaxDeadLetterValue and headers of a few KiB, a dead letter stays well under
// the 1,000,012 bytes a producer sends in one batch by default (and the broker's 1 MiB).
const MaxDeadLetterKey = 2 << 10

// CutDeadLetterKey returns the key k of a dead letter cut to MaxDeadLetterKey bytes and its
// headers h, with a key_truncated_from header holding len(k) added when k was cut. The key
// returned aliases k.
func CutDeadLetterKey(k []byte, h []kgo.RecordHeader) ([]byte, []kgo.RecordHeader) {
	return cutDeadLetter(k, MaxDeadLetterKey, "key_truncated_from", h)
}

// dlqTopicMarker marks a dead-letter record until produce sets the real topic name.
const dlqTopicMarker = "\x00dlq"

// DLQHeaders are the headers of a dead-letter record.
func DLQHeaders(rej *event.Reject, env, source string, at int64) []kgo.RecordHeader {
	return []kgo.RecordHeader{
		{Key: "reason", Value: []byte(rej.Reason)},
		{Key: "field", Value: []byte(rej.Field)},
		{Key: "message", Value: []byte(rej.Message)},
		{Key: "environment_id", Value: []byte(env)},
		{Key: "source", Value: []byte(source)},
		{Key: "received_at", Value: []byte(strconv.FormatInt(at, 10))},
	}
}
