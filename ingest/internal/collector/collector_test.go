package collector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-io/switchyard/ingest/internal/event"
	"github.com/switchyard-io/switchyard/ingest/internal/keys"
	"github.com/switchyard-io/switchyard/platform/errs"
	"github.com/switchyard-io/switchyard/sdks/go/eventsarrow"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// fakeProducer records produced records and acknowledges them according to mode.
type fakeProducer struct {
	mu      sync.Mutex
	records []*kgo.Record
	// hold keeps promises unanswered until release is closed (a broker that does not answer).
	hold    chan struct{}
	failErr error
}

func (p *fakeProducer) Produce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error)) {
	p.mu.Lock()
	p.records = append(p.records, r)
	p.mu.Unlock()
	if p.hold != nil {
		go func() { <-p.hold; promise(r, p.failErr) }()
		return
	}
	promise(r, p.failErr)
}

func (p *fakeProducer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.records)
}

func newTest(p Producer, mut func(*Config)) *Collector {
	cfg := Config{EventsTopic: "events", DLQTopic: "dlq", MaxInFlightBytes: 1 << 20, MaxDecompressedBytes: 1 << 20,
		MaxEvents: 1000, ProduceTimeout: 200 * time.Millisecond, Skew: event.DefaultSkew}
	if mut != nil {
		mut(&cfg)
	}
	return New(cfg, p, slog.New(slog.NewTextHandler(io.Discard, nil)), nil, nil)
}

var serverKey = keys.Key{Hash: "sha256:s", EnvironmentID: "env", Kind: ruleset.KeyServer}

func body(n int) []byte {
	var evs []map[string]any
	for i := 0; i < n; i++ {
		evs = append(evs, map[string]any{"event_id": "0192f0c1-8a2b-7c3d-9e4f-0a1b2c3d4e5f", "type": "track",
			"timestamp": time.Now().UnixMilli(), "context_kind": "user", "context_key": "u", "event_key": "k"})
	}
	b, _ := json.Marshal(evs)
	return b
}

func TestRecordsKeyedByEnvironmentAndContext(t *testing.T) {
	p := &fakeProducer{}
	c := newTest(p, nil)
	b, _ := json.Marshal([]any{
		map[string]any{"event_id": "0192f0c1-8a2b-7c3d-9e4f-0a1b2c3d4e5f", "type": "exposure", "timestamp": time.Now().UnixMilli(), "context_kind": "user", "context_key": "u7", "flag_key": "f", "variation_key": "v"},
		"junk",
	})
	res, err := c.Ingest(context.Background(), serverKey, b, FormatJSON, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 1 || res.Rejected[event.ReasonMalformed] != 1 || len(p.records) != 2 {
		t.Fatalf("result %+v, %d records", res, len(p.records))
	}
	ok, dlq := p.records[0], p.records[1]
	if ok.Topic != "events" || string(ok.Key) != "env:u7" {
		t.Fatalf("event record: topic %q key %q", ok.Topic, ok.Key)
	}
	var rec event.Record
	if err := event.DecodeRecord(ok.Value, &rec); err != nil || rec.EnvironmentID != "env" || rec.ContextKey != "u7" {
		t.Fatalf("record %+v: %v", rec, err)
	}
	if dlq.Topic != "dlq" || string(dlq.Value) != `"junk"` {
		t.Fatalf("dead letter: topic %q value %s", dlq.Topic, dlq.Value)
	}
}

func TestKafkaErrorAndTimeoutAreRetryable(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    *fakeProducer
	}{
		{"error", &fakeProducer{failErr: errors.New("broker down")}},
		{"no answer", &fakeProducer{hold: make(chan struct{})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTest(tc.p, nil)
			_, err := c.Ingest(context.Background(), serverKey, body(3), FormatJSON, false, 0)
			var re *RetryError
			if !errors.As(err, &re) || errs.KindOf(err) != errs.KindUnavailable || re.RetryAfter <= 0 {
				t.Fatalf("got %v, want a retryable Unavailable error", err)
			}
			if tc.p.hold != nil {
				if c.InFlightBytes() == 0 {
					t.Fatal("unanswered batch released its in-flight budget before Kafka answered")
				}
				close(tc.p.hold)
				deadline := time.Now().Add(2 * time.Second)
				for c.InFlightBytes() != 0 && time.Now().Before(deadline) {
					time.Sleep(time.Millisecond)
				}
				if c.InFlightBytes() != 0 {
					t.Fatal("budget not released after Kafka answered")
				}
			}
		})
	}
}

func TestInFlightBudgetRefusesNewBatches(t *testing.T) {
	p := &fakeProducer{hold: make(chan struct{})}
	defer close(p.hold)
	b := body(50)
	c := newTest(p, func(cfg *Config) { cfg.MaxInFlightBytes = int64(len(b)) * 3 / 2; cfg.ProduceTimeout = 5 * time.Second })
	first := make(chan error, 1)
	go func() { _, err := c.Ingest(context.Background(), serverKey, b, FormatJSON, false, 0); first <- err }()
	deadline := time.Now().Add(2 * time.Second)
	for p.count() < 50 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	_, err := c.Ingest(context.Background(), serverKey, b, FormatJSON, false, 0)
	if !errors.Is(err, ErrOverloaded) {
		t.Fatalf("second batch: got %v, want ErrOverloaded", err)
	}
	if n := p.count(); n != 50 {
		t.Fatalf("%d records produced; the refused batch must produce nothing", n)
	}
}

func TestClientKeyRateLimit(t *testing.T) {
	c := newTest(&fakeProducer{}, func(cfg *Config) { cfg.ClientKeyRate = 10; cfg.MaxEvents = 10 })
	client := keys.Key{Hash: "sha256:c", EnvironmentID: "env", Kind: ruleset.KeyClient}
	if _, err := c.Ingest(context.Background(), client, body(10), FormatJSON, false, 0); err != nil {
		t.Fatal(err)
	}
	_, err := c.Ingest(context.Background(), client, body(10), FormatJSON, false, 0)
	var re *RetryError
	if !errors.As(err, &re) || errs.KindOf(err) != errs.KindRateLimited || re.RetryAfter < 500*time.Millisecond {
		t.Fatalf("got %v, want rate limited with a retry hint of about a second", err)
	}
	if _, err := c.Ingest(context.Background(), serverKey, body(10), FormatJSON, false, 0); err != nil {
		t.Fatalf("server key limited by the client key's budget: %v", err)
	}
}

func TestGzipBomb(t *testing.T) {
	var buf bytes.Buffer
	zw := newGzip(&buf)
	_, _ = zw.Write(bytes.Repeat([]byte(" "), 4<<20))
	_ = zw.Close()
	c := newTest(&fakeProducer{}, nil)
	_, err := c.Ingest(context.Background(), serverKey, buf.Bytes(), FormatJSON, true, 0)
	if errs.KindOf(err) != errs.KindTooLarge {
		t.Fatalf("got %v, want TooLarge", err)
	}
}

func TestArrowBatch(t *testing.T) {
	var buf bytes.Buffer
	v := 2.5
	id := [16]byte{1, 2, 3}
	if err := eventsarrow.WriteStream(&buf, []eventsarrow.Event{
		{ID: id, Type: "track", Timestamp: time.Now().UnixMilli(), ContextKind: "user", ContextKey: "u", EventKey: "k", Value: &v, Properties: map[string]any{"a": "b"}},
		{ID: id, Type: "bogus", Timestamp: 1},
	}, 0); err != nil {
		t.Fatal(err)
	}
	p := &fakeProducer{}
	res, err := newTest(p, nil).Ingest(context.Background(), serverKey, buf.Bytes(), FormatArrow, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 1 || res.Rejected[event.ReasonUnknownType] != 1 {
		t.Fatalf("result %+v", res)
	}
	var rec event.Record
	if err := event.DecodeRecord(p.records[0].Value, &rec); err != nil || !rec.HasValue || rec.Value != 2.5 || len(rec.Properties) != 1 {
		t.Fatalf("record %+v: %v", rec, err)
	}
}

// TestSummaryWithoutCountersRejected: a summary without counters (required by
// events.schema.json) is rejected and dead-lettered naming the field, in JSON and in Arrow,
// instead of being accepted with nothing to store. An empty array is valid (a window without
// evaluations); a zero count is not.
func TestSummaryWithoutCountersRejected(t *testing.T) {
	now := time.Now().UnixMilli()
	summary := func(counters ...any) map[string]any {
		s := map[string]any{"event_id": "0192f0c1-8a2b-7c3d-9e4f-0a1b2c3d4e5f", "type": "summary", "timestamp": now, "start": now - 1000, "end": now}
		if len(counters) > 0 {
			s["counters"] = counters[0]
		}
		return s
	}
	b, _ := json.Marshal([]any{
		summary(),
		summary(nil),
		summary([]any{}),
		summary([]any{map[string]any{"flag_key": "f", "variation_key": "on", "count": 0}}),
	})
	p := &fakeProducer{}
	res, err := newTest(p, nil).Ingest(context.Background(), serverKey, b, FormatJSON, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 1 || res.Rejected[event.ReasonMissingField] != 2 || res.Rejected[event.ReasonInvalidValue] != 1 {
		t.Fatalf("result %+v, want 1 accepted (empty counters), 2 missing_field, 1 invalid_value", res)
	}
	wantFields := []string{"counters", "counters", "", "counters.count"}
	if len(p.records) != len(wantFields) {
		t.Fatalf("%d records, want %d", len(p.records), len(wantFields))
	}
	for i, r := range p.records {
		if got := header(r, "field"); (r.Topic == "dlq") != (wantFields[i] != "") || got != wantFields[i] {
			t.Fatalf("record %d: topic %q field %q, want field %q (dead letter iff a field is expected)", i, r.Topic, got, wantFields[i])
		}
	}

	// Arrow: a stream without a counters column, and the Go SDK's writer with no counters (an
	// empty list).
	var buf bytes.Buffer
	sc := arrow.NewSchema([]arrow.Field{{Name: "event_id", Type: arrow.BinaryTypes.String}, {Name: "type", Type: arrow.BinaryTypes.String},
		{Name: "timestamp", Type: arrow.PrimitiveTypes.Int64}, {Name: "start", Type: arrow.PrimitiveTypes.Int64}, {Name: "end", Type: arrow.PrimitiveTypes.Int64}}, nil)
	rb := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer rb.Release()
	rb.Field(0).(*array.StringBuilder).Append("0192f0c1-8a2b-7c3d-9e4f-0a1b2c3d4e5f")
	rb.Field(1).(*array.StringBuilder).Append("summary")
	for _, f := range []int{2, 3, 4} {
		rb.Field(f).(*array.Int64Builder).Append(now)
	}
	rec := rb.NewRecordBatch()
	defer rec.Release()
	wr := ipc.NewWriter(&buf, ipc.WithSchema(sc))
	if err := wr.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := wr.Close(); err != nil {
		t.Fatal(err)
	}
	p = &fakeProducer{}
	res, err = newTest(p, nil).Ingest(context.Background(), serverKey, buf.Bytes(), FormatArrow, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 0 || res.Rejected[event.ReasonMissingField] != 1 || header(p.records[0], "field") != "counters" {
		t.Fatalf("arrow summary without counters column: result %+v, field %q", res, header(p.records[0], "field"))
	}
	buf.Reset()
	if err := eventsarrow.WriteStream(&buf, []eventsarrow.Event{{ID: [16]byte{1}, Type: "summary", Timestamp: now, Start: now - 1000, End: now}}, 0); err != nil {
		t.Fatal(err)
	}
	res, err = newTest(&fakeProducer{}, nil).Ingest(context.Background(), serverKey, buf.Bytes(), FormatArrow, false, 0)
	if err != nil || res.Accepted != 1 {
		t.Fatalf("arrow summary with empty counters: result %+v, %v", res, err)
	}
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
