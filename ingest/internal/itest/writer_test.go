package itest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-io/switchyard/ingest/internal/app"
	"github.com/switchyard-io/switchyard/ingest/internal/collector"
	"github.com/switchyard-io/switchyard/ingest/internal/writer"
	"github.com/switchyard-io/switchyard/platform/testenv"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

func collectorOnly(cfg app.Config) app.Config {
	cfg.Writer = false
	return cfg
}

func writerOnly(cfg app.Config) app.Config {
	cfg.Collector = false
	cfg.WriterBatchRows = 300
	return cfg
}

// TestWriterKilledMidBatch kills a writer after its third batch reached ClickHouse but before
// the batch's offsets were committed; a restarted writer re-reads the batch and inserts it
// again, and the queries still count exactly N.
func TestWriterKilledMidBatch(t *testing.T) {
	s := newStack(t)
	s.publishKeys(t, "env-a", 1, sdkKey{raw: "k", kind: ruleset.KeyServer})
	col := start(t, collectorOnly(s.cfg), app.Options{})
	const n = 2000
	events, exposures, tracks, summaries := mixedEvents(n, "exp")
	sendAll(t, col.URL, "k", events, 100, 30*time.Second)

	var batches atomic.Int32
	var committed atomic.Int64
	w1 := start(t, writerOnly(s.cfg), app.Options{WriterHooks: writer.Hooks{BeforeCommit: func(rows int) error {
		if batches.Add(1) == 3 {
			return errors.New("killed")
		}
		committed.Add(int64(rows))
		return nil
	}}})
	testenv.Eventually(t, 30*time.Second, "writer killed on its third batch", func() bool { return batches.Load() >= 3 })
	if err := w1.stop(); !errors.Is(err, writer.ErrKilled) {
		t.Fatalf("writer stopped with %v, want ErrKilled", err)
	}
	if got := s.distinct(t, "exposures") + s.distinct(t, "tracks") + s.distinct(t, "evaluation_summaries"); got <= uint64(committed.Load()) {
		t.Fatalf("the killed batch was not in ClickHouse before the kill: %d events stored, %d committed", got, committed.Load())
	}
	var reinserted atomic.Int64
	start(t, writerOnly(s.cfg), app.Options{WriterHooks: writer.Hooks{BeforeCommit: func(rows int) error {
		reinserted.Add(int64(rows))
		return nil
	}}})
	s.waitDistinct(t, "exposures", exposures, 30*time.Second)
	s.waitDistinct(t, "tracks", tracks, 30*time.Second)
	s.waitDistinct(t, "evaluation_summaries", summaries, 30*time.Second)
	// The restarted writer resumed from the last commit: it inserted the killed batch again
	// (duplicates, absorbed by the queries) and everything after it, nothing before it.
	want := int64(n) - committed.Load()
	// The hook runs after the insert: the last batch may be visible a moment before it counts.
	testenv.Eventually(t, 10*time.Second, "restarted writer's batches counted", func() bool { return reinserted.Load() >= want })
	if reinserted.Load() != want {
		t.Fatalf("restarted writer inserted %d rows, want %d (all but the %d committed)", reinserted.Load(), want, committed.Load())
	}
}

// TestTwoWritersShareAndRebalance runs two writers in one group while events stream in, stops
// one of them mid-stream and starts another (two rebalances), and checks exact counts and that
// both first writers wrote.
func TestTwoWritersShareAndRebalance(t *testing.T) {
	s := newStack(t)
	s.publishKeys(t, "env-a", 1, sdkKey{raw: "k", kind: ruleset.KeyServer})
	col := start(t, collectorOnly(s.cfg), app.Options{})
	var rows1, rows2 atomic.Int64
	counting := func(c *atomic.Int64) app.Options {
		return app.Options{WriterHooks: writer.Hooks{BeforeCommit: func(rows int) error { c.Add(int64(rows)); return nil }}}
	}
	start(t, writerOnly(s.cfg), counting(&rows1))
	w2 := start(t, writerOnly(s.cfg), counting(&rows2))

	snd := stream(col.URL, "k", 100, 2*time.Minute)
	testenv.Eventually(t, 30*time.Second, "both writers inserting", func() bool { return rows1.Load() > 0 && rows2.Load() > 0 })
	if err := w2.stop(); err != nil { // rebalance 1, while events keep coming
		t.Fatalf("stopping writer 2: %v", err)
	}
	mark := snd.accepted.Load()
	start(t, writerOnly(s.cfg), app.Options{}) // rebalance 2
	testenv.Eventually(t, 30*time.Second, "more events after the rebalances", func() bool { return snd.accepted.Load() >= mark+3000 })
	snd.stop(t, time.Minute)
	s.waitDistinct(t, "exposures", int(snd.exposures.Load()), 60*time.Second)
	s.waitDistinct(t, "tracks", int(snd.tracks.Load()), 60*time.Second)
	s.waitDistinct(t, "evaluation_summaries", int(snd.summaries.Load()), 60*time.Second)
}

// TestPoisonRecordGoesToDLQ writes undecodable records straight to the events topic between
// valid events: they land on the DLQ (source writer) and the partition keeps flowing.
func TestPoisonRecordGoesToDLQ(t *testing.T) {
	s := newStack(t)
	s.publishKeys(t, "env-a", 1, sdkKey{raw: "k", kind: ruleset.KeyServer})
	cfg := s.cfg
	cfg.EventsPartitions = 1
	svc := start(t, cfg, app.Options{})
	sendAll(t, svc.URL, "k", []ev{exposure("u1", "f", "on", "")}, 100, 20*time.Second)
	s.produce(t, &kgo.Record{Topic: cfg.EventsTopic, Key: []byte("env-a:u9"), Value: []byte("garbage")},
		&kgo.Record{Topic: cfg.EventsTopic, Key: []byte("env-a:u9"), Value: []byte{1, 1, 2, 3}})
	sendAll(t, svc.URL, "k", []ev{exposure("u2", "f", "on", "")}, 100, 20*time.Second)
	s.waitDistinct(t, "exposures", 2, 20*time.Second)
	dl := s.readDLQ(t, 2)
	for _, d := range dl {
		if d.reason != "undecodable" || d.source != "writer" || d.env != "env-a" {
			t.Fatalf("dead letter %+v", d)
		}
	}
}

// TestOversizedPoisonRecordIsCut writes an undecodable record of almost 1 MiB straight to the
// events topic (as a producer other than the collector may): whole, its dead letter with the
// writer's headers would be over Kafka's record size limit, the writer would retry sending it
// forever and its partition would stop. It is dead-lettered cut to MaxDeadLetterValue bytes
// with truncated_from, and the events after it are stored.
func TestOversizedPoisonRecordIsCut(t *testing.T) {
	s := newStack(t)
	s.publishKeys(t, "env-a", 1, sdkKey{raw: "k", kind: ruleset.KeyServer})
	cfg := s.cfg
	cfg.EventsPartitions = 1
	svc := start(t, cfg, app.Options{})

	poison := make([]byte, 1<<20-8<<10) // under the topic's limit, over the writer's producer limit with headers
	if _, err := rand.Read(poison); err != nil {
		t.Fatal(err)
	}
	// Produced like the collector produces (1 MiB batches), so the record is accepted whole.
	cl := testenv.KafkaClient(t, kgo.ProducerBatchMaxBytes(1<<20))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: cfg.EventsTopic, Key: []byte("env-a:u9"), Value: poison}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	d := s.readDLQ(t, 1)[0]
	if d.reason != "undecodable" || d.source != "writer" || len(d.value) != collector.MaxDeadLetterValue ||
		!bytes.Equal(d.value, poison[:collector.MaxDeadLetterValue]) || d.truncatedFrom != strconv.Itoa(len(poison)) {
		t.Fatalf("dead letter: reason %q source %q, %d bytes, truncated_from %q", d.reason, d.source, len(d.value), d.truncatedFrom)
	}
	// The partition keeps flowing.
	sendAll(t, svc.URL, "k", []ev{exposure("u1", "f", "on", "")}, 100, 20*time.Second)
	s.waitDistinct(t, "exposures", 1, 20*time.Second)
}

// TestOversizedKeyPoisonRecordIsCut writes an undecodable record straight to the events topic
// whose key (600 KiB) and value (400 KiB) are both under the value cut but together near 1 MiB:
// whole, with the writer's headers, its dead letter would be over the writer's producer limit
// and the partition would stop. Its key is cut to MaxDeadLetterKey bytes with
// key_truncated_from, the value is kept whole, and the events after it are stored.
func TestOversizedKeyPoisonRecordIsCut(t *testing.T) {
	s := newStack(t)
	s.publishKeys(t, "env-a", 1, sdkKey{raw: "k", kind: ruleset.KeyServer})
	cfg := s.cfg
	cfg.EventsPartitions = 1
	svc := start(t, cfg, app.Options{})

	key := append([]byte("env-a:"), bytes.Repeat([]byte("u"), 600<<10)...)
	poison := make([]byte, 400<<10)
	if _, err := rand.Read(poison); err != nil {
		t.Fatal(err)
	}
	cl := testenv.KafkaClient(t, kgo.ProducerBatchMaxBytes(1<<20))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: cfg.EventsTopic, Key: key, Value: poison}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	d := s.readDLQ(t, 1)[0]
	if d.reason != "undecodable" || d.source != "writer" || d.env != "env-a" || !bytes.Equal(d.key, key[:collector.MaxDeadLetterKey]) ||
		d.keyTruncatedFrom != strconv.Itoa(len(key)) || !bytes.Equal(d.value, poison) || d.truncatedFrom != "" {
		t.Fatalf("dead letter: reason %q source %q env %.40q, key of %d bytes (key_truncated_from %q), value of %d bytes (truncated_from %q)",
			d.reason, d.source, d.env, len(d.key), d.keyTruncatedFrom, len(d.value), d.truncatedFrom)
	}
	// The partition keeps flowing.
	sendAll(t, svc.URL, "k", []ev{exposure("u1", "f", "on", "")}, 100, 20*time.Second)
	s.waitDistinct(t, "exposures", 1, 20*time.Second)
}

// TestWriterBatchCutByBytes stores summaries of about 300 KiB each, all waiting on Kafka
// before the writer starts, with a 1 MiB batch bound and a long flush interval: the writer
// cuts its batches by bytes, in the middle of a fetch, instead of holding every event (one
// batch by rows and time alone) — memory is bounded in bytes, not only in rows.
func TestWriterBatchCutByBytes(t *testing.T) {
	s := newStack(t)
	s.publishKeys(t, "env-a", 1, sdkKey{raw: "k", kind: ruleset.KeyServer})
	col := start(t, collectorOnly(s.cfg), app.Options{})
	const n, perEvent = 8, 1200
	var events []ev
	for i := 0; i < n; i++ {
		counters := make([]map[string]any, 0, perEvent)
		for j := 0; j < perEvent; j++ {
			counters = append(counters, map[string]any{"flag_key": fmt.Sprintf("flag-%0245d", j), "variation_key": "on", "flag_version": 1, "count": 1})
		}
		events = append(events, summary(counters...))
	}
	sendAll(t, col.URL, "k", events, 2, 30*time.Second)

	cfg := writerOnly(s.cfg)
	cfg.WriterBatchRows = 100000 // far more rows than sent
	cfg.WriterBatchBytes = 1 << 20
	cfg.WriterFlushInterval = 10 * time.Second
	var mu sync.Mutex
	var batches []int
	start(t, cfg, app.Options{WriterHooks: writer.Hooks{BeforeCommit: func(rows int) error {
		mu.Lock()
		defer mu.Unlock()
		batches = append(batches, rows)
		return nil
	}}})
	s.waitDistinct(t, "evaluation_summaries", n, 30*time.Second)
	total := func() (sum int) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range batches {
			sum += r
		}
		return sum
	}
	testenv.Eventually(t, 10*time.Second, "batches counted", func() bool { return total() >= n*perEvent })
	mu.Lock()
	defer mu.Unlock()
	// 1 MiB holds 4 of these records (the fourth crosses the bound).
	for _, rows := range batches {
		if rows > 4*perEvent {
			t.Fatalf("batches of %v rows: one holds more than 4 events of about 300 KiB with a 1 MiB bound", batches)
		}
	}
}
