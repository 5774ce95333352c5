// Package writer moves events from the switchyard.events Kafka topic into ClickHouse. Writers
// form a consumer group; each batches records by size and time, inserts them column by column,
// and commits the Kafka offsets only after ClickHouse acknowledged every insert of the batch
// (at-least-once; the tables and queries make the resulting duplicates harmless). While
// ClickHouse is down the writer pauses fetching and retries with backoff: nothing is lost and
// memory stays bounded. Records that cannot be decoded go to the dead-letter topic instead of
// blocking their partition.
package writer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/switchyard-io/switchyard/ingest/internal/collector"
	"github.com/switchyard-io/switchyard/ingest/internal/event"
	chstore "github.com/switchyard-io/switchyard/ingest/internal/store/clickhouse"
)

// Config tunes a Writer.
type Config struct {
	Brokers  []string
	Topic    string
	DLQTopic string
	Group    string
	// InstanceID enables static group membership: a restarted writer with the same id takes its
	// partitions back at once instead of waiting for a rebalance.
	InstanceID string
	// BatchRows, BatchBytes and FlushInterval: a batch is inserted when it holds BatchRows rows
	// or BatchBytes bytes of Kafka records (keys and values, dead letters included), or is
	// FlushInterval old, whichever comes first. Rows alone do not bound memory: an event can be
	// up to 512 KiB. A batch can exceed BatchBytes by less than its last record.
	BatchRows     int
	BatchBytes    int
	FlushInterval time.Duration
	// RetryMax caps the backoff between insert retries while ClickHouse is failing.
	RetryMax time.Duration
	// SessionTimeout is the consumer group session timeout.
	SessionTimeout time.Duration
	// DrainTimeout bounds the final flush at shutdown.
	DrainTimeout time.Duration
}

// DefaultBatchBytes is the default Config.BatchBytes: well above a batch of 50,000 typical
// events (about 200 bytes each as records), so it cuts only batches of unusually large events.
const DefaultBatchBytes = 16 << 20

// Hooks let tests interrupt a writer at precise points. Production code leaves them nil.
type Hooks struct {
	// BeforeCommit runs after a batch is in ClickHouse and before its offsets are committed;
	// an error stops the writer at once, without committing (a crash mid-batch).
	BeforeCommit func(rows int) error
}

// ErrKilled is returned by Run when a hook stopped the writer.
var ErrKilled = errors.New("writer: stopped by hook")

// Writer is one member of the writer consumer group. It is a lifecycle component.
type Writer struct {
	free  sync.Pool // of *batch
	cfg   Config
	conn  driver.Conn
	log   *slog.Logger
	hooks Hooks
	m     metrics
}

type metrics struct {
	rows      *prometheus.CounterVec
	batches   prometheus.Counter
	insertDur prometheus.Histogram
	failures  prometheus.Counter
	dlq       prometheus.Counter
	commitErr prometheus.Counter
	paused    prometheus.Gauge
}

// New returns a writer inserting through conn.
func New(cfg Config, conn driver.Conn, log *slog.Logger, reg prometheus.Registerer, hooks Hooks) *Writer {
	if cfg.BatchRows <= 0 {
		cfg.BatchRows = 50000
	}
	if cfg.BatchBytes <= 0 {
		cfg.BatchBytes = DefaultBatchBytes
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 5 * time.Second
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 10 * time.Second
	}
	w := &Writer{cfg: cfg, conn: conn, log: log, hooks: hooks}
	w.m = metrics{
		rows:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ingest_writer_rows_total", Help: "Rows inserted into ClickHouse, by table."}, []string{"table"}),
		batches:   prometheus.NewCounter(prometheus.CounterOpts{Name: "ingest_writer_batches_total", Help: "Batches inserted and committed."}),
		insertDur: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ingest_writer_insert_seconds", Help: "Time to insert one batch into ClickHouse.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}),
		failures:  prometheus.NewCounter(prometheus.CounterOpts{Name: "ingest_writer_insert_failures_total", Help: "Failed insert attempts (retried)."}),
		dlq:       prometheus.NewCounter(prometheus.CounterOpts{Name: "ingest_writer_dead_letters_total", Help: "Undecodable records sent to the dead-letter topic."}),
		commitErr: prometheus.NewCounter(prometheus.CounterOpts{Name: "ingest_writer_commit_failures_total", Help: "Failed offset commits (the records will be re-read and deduplicated)."}),
		paused:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "ingest_writer_paused", Help: "1 while fetching is paused because ClickHouse is failing."}),
	}
	if reg != nil {
		reg.MustRegister(w.m.rows, w.m.batches, w.m.insertDur, w.m.failures, w.m.dlq, w.m.commitErr, w.m.paused)
	}
	return w
}

// Name implements lifecycle.Component.
func (w *Writer) Name() string { return "clickhouse-writer " + w.cfg.Topic }

// batch is what the poll loop hands to the insert loop.
type batch struct {
	rows chstore.Rows
	// next holds, per partition, the offset to commit once the batch is in ClickHouse. Only
	// offsets are kept, not records: a *kgo.Record pins the whole fetch it came from.
	next   map[int32]kgo.EpochOffset
	dlq    []*kgo.Record
	events int
	// bytes counts the keys and values of the records taken into the batch (Config.BatchBytes).
	bytes int
}

func (b *batch) empty() bool { return b.events == 0 && len(b.dlq) == 0 }

// full reports whether b is to be inserted now, without waiting for FlushInterval.
func (b *batch) full(cfg *Config) bool {
	return b.rows.Len() >= cfg.BatchRows || b.bytes >= cfg.BatchBytes
}

// Run consumes until ctx is cancelled, then flushes what it holds (bounded by DrainTimeout).
func (w *Writer) Run(ctx context.Context) error {
	opts := []kgo.Opt{
		kgo.SeedBrokers(w.cfg.Brokers...),
		kgo.ConsumerGroup(w.cfg.Group),
		kgo.ConsumeTopics(w.cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.FetchMaxBytes(16 << 20),
		kgo.FetchMaxPartitionBytes(4 << 20),
		kgo.FetchMaxWait(500 * time.Millisecond),
		kgo.DefaultProduceTopic(w.cfg.DLQTopic),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
	}
	if w.cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(w.cfg.InstanceID))
	}
	if w.cfg.SessionTimeout > 0 {
		opts = append(opts, kgo.SessionTimeout(w.cfg.SessionTimeout), kgo.HeartbeatInterval(w.cfg.SessionTimeout/5))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("writer: kafka client: %w", err)
	}
	defer cl.Close()

	// The insert loop runs beside the poll loop so decoding the next batch overlaps inserting
	// the current one. The channel holds one batch: at most three batches are in memory (one
	// filling, one queued, one inserting); when inserts stall the poll loop blocks on the send
	// and stops polling.
	queue := make(chan *batch, 1)
	insertDone := make(chan struct{})
	var insertErr error
	// drainCtx outlives ctx by DrainTimeout, so the last batches are flushed at shutdown but a
	// ClickHouse outage cannot hold the shutdown forever.
	drainCtx, cancelDrain := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelDrain()
	stopDrainTimer := context.AfterFunc(ctx, func() { time.AfterFunc(w.cfg.DrainTimeout, cancelDrain) })
	defer stopDrainTimer()
	go func() {
		defer close(insertDone)
		insertErr = w.insertLoop(drainCtx, cl, queue)
	}()

	pollErr := w.pollLoop(ctx, cl, queue, insertDone)
	close(queue)
	<-insertDone
	if insertErr != nil {
		return insertErr
	}
	return pollErr
}

func (w *Writer) pollLoop(ctx context.Context, cl *kgo.Client, queue chan<- *batch, insertDone <-chan struct{}) error {
	cur := w.newBatch()
	var started time.Time
	var in event.Interner
	send := func() error {
		if cur.empty() {
			return nil
		}
		select {
		case queue <- cur:
		case <-insertDone:
			return errInsertLoopStopped
		}
		cur = w.newBatch()
		started = time.Time{}
		return nil
	}
	var rec event.Record
	for {
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if !cur.empty() {
			pctx, cancel = context.WithDeadline(ctx, started.Add(w.cfg.FlushInterval))
		}
		fetches := cl.PollRecords(pctx, max(1, w.cfg.BatchRows-cur.rows.Len()))
		cancel()
		if ctx.Err() != nil {
			// Shutting down: hand over what was decoded so it is flushed and committed.
			_ = send()
			return nil
		}
		if fetches.IsClientClosed() {
			return nil
		}
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				w.log.Warn("fetch error", "topic", t, "partition", p, "err", err)
			}
		})
		// A batch full of rows or bytes is sent at once, even in the middle of a fetch: the
		// fetch's remaining records start the next batch.
		for it := fetches.RecordIter(); !it.Done(); {
			if cur.empty() {
				started = time.Now()
			}
			w.take(cur, it.Next(), &rec, &in)
			if cur.full(&w.cfg) {
				if err := send(); err != nil {
					return err
				}
			}
		}
		if !started.IsZero() && time.Since(started) >= w.cfg.FlushInterval {
			if err := send(); err != nil {
				return err
			}
		}
	}
}

// take adds record r to b: as rows, or as a dead letter when it cannot be decoded or is not a
// valid event. rec and in are the caller's reusable decoding state.
func (w *Writer) take(b *batch, r *kgo.Record, rec *event.Record, in *event.Interner) {
	b.next[r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}
	b.bytes += len(r.Key) + len(r.Value)
	if err := event.DecodeRecordInterned(r.Value, rec, in); err != nil {
		b.dlq = append(b.dlq, deadLetter(r, &event.Reject{Reason: event.ReasonUndecodable, Message: err.Error()}))
		return
	}
	if rej := event.Validate(&rec.Event); rej != nil || rec.EnvironmentID == "" {
		if rej == nil {
			rej = &event.Reject{Reason: event.ReasonMissingField, Field: "environment_id", Message: "record without environment"}
		}
		b.dlq = append(b.dlq, deadLetter(r, rej))
		return
	}
	b.rows.Add(rec)
	b.events++
}

var errInsertLoopStopped = errors.New("writer: insert loop stopped")

func deadLetter(r *kgo.Record, rej *event.Reject) *kgo.Record {
	// A record written by something other than the collector can be near Kafka's size limit,
	// in its value, its key or both: with the headers added, its dead letter would exceed it,
	// its produce would fail at every retry and the writer would stop on its partition. So the
	// key is cut first (the environment id header is read from what is kept: a key without ':'
	// would otherwise be copied whole into it), then the value as the collector cuts its own;
	// the other headers are bounded (reasons, validated field names, fixed messages).
	k, h := collector.CutDeadLetterKey(r.Key, nil)
	env, _, _ := strings.Cut(string(k), ":")
	h = append(collector.DLQHeaders(rej, env, "writer", time.Now().UnixMilli()), h...)
	h = append(h,
		kgo.RecordHeader{Key: "source_topic", Value: []byte(r.Topic)},
		kgo.RecordHeader{Key: "source_partition", Value: []byte(strconv.Itoa(int(r.Partition)))},
		kgo.RecordHeader{Key: "source_offset", Value: []byte(strconv.FormatInt(r.Offset, 10))},
	)
	v, h := collector.CutDeadLetter(r.Value, h)
	// Copies: the record's bytes belong to the fetch buffer, which must not stay pinned.
	return &kgo.Record{Key: bytes.Clone(k), Value: bytes.Clone(v), Headers: h}
}

// newBatch returns an empty batch, reusing the column buffers of a flushed one: a batch of
// 50k rows regrown from nothing each time was a tenth of the writer's CPU.
func (w *Writer) newBatch() *batch {
	if b, ok := w.free.Get().(*batch); ok {
		return b
	}
	return &batch{next: map[int32]kgo.EpochOffset{}}
}

func (w *Writer) recycle(b *batch) {
	b.rows.Reset()
	clear(b.next)
	b.dlq, b.events, b.bytes = nil, 0, 0
	w.free.Put(b)
}

// insertLoop inserts batches in order, then commits their offsets.
func (w *Writer) insertLoop(drainCtx context.Context, cl *kgo.Client, queue <-chan *batch) error {
	for b := range queue {
		err := w.flush(drainCtx, cl, b)
		if err == nil {
			w.recycle(b)
		}
		if err != nil {
			if errors.Is(err, ErrKilled) {
				return err
			}
			if drainCtx.Err() != nil {
				w.log.Warn("writer stopped with a batch not inserted; it will be re-read", "events", b.events)
				for range queue {
				}
				return nil
			}
			return err
		}
	}
	return nil
}

// flush inserts every table of b (retrying each until it succeeds or ctx ends), sends its dead
// letters, then commits. A table that was inserted is not inserted again on retry.
func (w *Writer) flush(ctx context.Context, cl *kgo.Client, b *batch) error {
	tables := b.rows.Columns()
	backoff := 100 * time.Millisecond
	paused := false
	defer func() {
		if paused {
			cl.ResumeFetchTopics(w.cfg.Topic)
			w.m.paused.Set(0)
		}
	}()
	start := time.Now()
	for len(tables) > 0 || len(b.dlq) > 0 {
		var err error
		for name, cols := range tables {
			ictx, cancel := context.WithTimeout(ctx, 60*time.Second)
			err = chstore.InsertColumns(ictx, w.conn, name, cols)
			cancel()
			if err != nil {
				break
			}
			w.m.rows.WithLabelValues(name).Add(float64(rowsOf(cols)))
			delete(tables, name)
		}
		if err == nil && len(b.dlq) > 0 {
			if err = cl.ProduceSync(ctx, b.dlq...).FirstErr(); err == nil {
				w.m.dlq.Add(float64(len(b.dlq)))
				b.dlq = nil
			}
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		w.m.failures.Inc()
		if !paused {
			// Stop fetching while ClickHouse is failing: franz-go would otherwise keep filling
			// its buffers with records we cannot write.
			cl.PauseFetchTopics(w.cfg.Topic)
			w.m.paused.Set(1)
			paused = true
		}
		w.log.Warn("insert failed; retrying", "err", err, "backoff", backoff.String())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, w.cfg.RetryMax)
	}
	w.m.insertDur.Observe(time.Since(start).Seconds())
	if w.hooks.BeforeCommit != nil {
		if err := w.hooks.BeforeCommit(b.rows.Len()); err != nil {
			return fmt.Errorf("%w: %v", ErrKilled, err)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var commitErr error
	cl.CommitOffsetsSync(cctx, map[string]map[int32]kgo.EpochOffset{w.cfg.Topic: b.next},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err == nil {
				for _, t := range resp.Topics {
					for _, p := range t.Partitions {
						if e := kerr.ErrorForCode(p.ErrorCode); e != nil && commitErr == nil {
							commitErr = e
						}
					}
				}
			}
			if commitErr == nil {
				commitErr = err
			}
		})
	if err := commitErr; err != nil {
		// The rows are in ClickHouse; an uncommitted offset only means they are read and
		// inserted again later, which the event_id dedup absorbs.
		w.m.commitErr.Inc()
		w.log.Warn("offset commit failed; records will be re-read", "err", err)
	}
	w.m.batches.Inc()
	return nil
}

func rowsOf(cols []chstore.Column) int {
	if len(cols) == 0 {
		return 0
	}
	switch d := cols[0].Data.(type) {
	case []string:
		return len(d)
	}
	return 0
}
