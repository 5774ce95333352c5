package writer

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-io/switchyard/ingest/internal/event"
)

// bigSummary returns the Kafka record of a valid summary of about 300 KiB (1,200 counters with
// long flag keys): a few hundred rows, so only a byte bound cuts a batch of them early.
func bigSummary(t *testing.T, offset int64) *kgo.Record {
	t.Helper()
	now := time.Now().UnixMilli()
	e := event.Event{ID: [16]byte{1, byte(offset)}, Type: event.TypeSummary, Timestamp: now, ClientTimestamp: now, Start: now - 1000, End: now}
	for i := 0; i < 1200; i++ {
		e.Counters = append(e.Counters, event.Counter{FlagKey: fmt.Sprintf("flag-%0245d", i), VariationKey: "on", Count: 1})
	}
	v := event.AppendRecord(nil, &event.Record{Event: e, EnvironmentID: "env", ReceivedAt: now})
	return &kgo.Record{Key: []byte("env:"), Value: v, Partition: 0, Offset: offset}
}

// TestBatchCutByBytes: a batch is full once its records' bytes reach BatchBytes, long before
// BatchRows, both for rows and for dead letters.
func TestBatchCutByBytes(t *testing.T) {
	w := New(Config{BatchRows: 50000, BatchBytes: 1 << 20}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), nil, Hooks{})
	var rec event.Record
	var in event.Interner

	b := w.newBatch()
	size := len(bigSummary(t, 0).Value) + len("env:")
	need := (w.cfg.BatchBytes + size - 1) / size // records that reach the bound
	if need < 2 {
		t.Fatalf("test records of %d bytes are too big for a %d-byte bound", size, w.cfg.BatchBytes)
	}
	for i := 1; i <= need; i++ {
		w.take(b, bigSummary(t, int64(i)), &rec, &in)
		if i < need && b.full(&w.cfg) {
			t.Fatalf("batch full after %d records (%d bytes, %d rows), bound %d bytes", i, b.bytes, b.rows.Len(), w.cfg.BatchBytes)
		}
	}
	if !b.full(&w.cfg) || b.events != need || b.rows.Len() >= w.cfg.BatchRows {
		t.Fatalf("batch of %d events, %d rows, %d bytes not full (bound %d bytes)", b.events, b.rows.Len(), b.bytes, w.cfg.BatchBytes)
	}
	w.recycle(b)

	// Undecodable records count too: their dead letters are held until the batch is flushed.
	b = w.newBatch()
	if b.bytes != 0 || b.full(&w.cfg) {
		t.Fatalf("recycled batch not empty: %d bytes", b.bytes)
	}
	w.take(b, &kgo.Record{Key: []byte("env:u"), Value: []byte(strings.Repeat("x", 1<<20))}, &rec, &in)
	if len(b.dlq) != 1 || !b.full(&w.cfg) {
		t.Fatalf("a 1 MiB dead letter did not fill the batch: %d dead letters, %d bytes", len(b.dlq), b.bytes)
	}
}
