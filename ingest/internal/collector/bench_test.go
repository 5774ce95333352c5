package collector

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-io/switchyard/sdks/go/eventsarrow"
)

// benchBody is a request of 100 events of about 200 bytes (70 exposures, 30 tracks), the
// shape the end-to-end benchmark sends.
func benchBody() []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	ts := time.Now().UnixMilli()
	for i := 0; i < 100; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		if i%10 < 7 {
			fmt.Fprintf(&b, `{"event_id":"%s","type":"exposure","timestamp":%d,"context_kind":"user","context_key":"user-%07d","flag_key":"checkout","variation_key":"treatment","flag_version":12,"experiment_key":"exp-1"}`, uuid.Must(uuid.NewV7()), ts, i)
		} else {
			fmt.Fprintf(&b, `{"event_id":"%s","type":"track","timestamp":%d,"context_kind":"user","context_key":"user-%07d","event_key":"purchase","value":19.99,"properties":{"plan":"pro"}}`, uuid.Must(uuid.NewV7()), ts, i)
		}
	}
	b.WriteByte(']')
	return b.Bytes()
}

type nopProducer struct{}

func (nopProducer) Produce(_ context.Context, r *kgo.Record, promise func(*kgo.Record, error)) {
	promise(r, nil)
}

// BenchmarkIngestJSON measures the collector's CPU per request of 100 JSON events: decode,
// validate, encode the Kafka records (Kafka itself replaced by an immediate acknowledgement).
func BenchmarkIngestJSON(b *testing.B) {
	c := newTest(nopProducer{}, nil)
	body := benchBody()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := c.Ingest(context.Background(), serverKey, body, FormatJSON, false, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkIngestArrow is BenchmarkIngestJSON for the same 100 events as an Arrow IPC stream.
func BenchmarkIngestArrow(b *testing.B) {
	var events []eventsarrow.Event
	v := 19.99
	for i := 0; i < 100; i++ {
		e := eventsarrow.Event{ID: uuid.Must(uuid.NewV7()), Timestamp: time.Now().UnixMilli(), ContextKind: "user", ContextKey: fmt.Sprintf("user-%07d", i)}
		if i%10 < 7 {
			e.Type, e.FlagKey, e.VariationKey, e.FlagVersion, e.ExperimentKey = "exposure", "checkout", "treatment", 12, "exp-1"
		} else {
			e.Type, e.EventKey, e.Value, e.Properties = "track", "purchase", &v, map[string]any{"plan": "pro"}
		}
		events = append(events, e)
	}
	var buf bytes.Buffer
	if err := eventsarrow.WriteStream(&buf, events, 0); err != nil {
		b.Fatal(err)
	}
	body := buf.Bytes()
	c := newTest(nopProducer{}, nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := c.Ingest(context.Background(), serverKey, body, FormatArrow, false, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
}
