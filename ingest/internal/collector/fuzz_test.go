package collector

import (
	"bytes"
	"compress/gzip"
	"io"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/ingest/internal/event"
	"github.com/switchyard-io/switchyard/sdks/go/eventsarrow"
)

func newGzip(w io.Writer) *gzip.Writer { return gzip.NewWriter(w) }

// FuzzDecodeArrow feeds arbitrary bytes (seeded with valid streams) to the collector's Arrow
// decoder: it must return an error or events, never panic, and every event it accepts must
// validate or be rejected with a reason.
func FuzzDecodeArrow(f *testing.F) {
	v := 1.0
	for _, evs := range [][]eventsarrow.Event{
		{{ID: [16]byte{1}, Type: "exposure", Timestamp: 1, ContextKind: "user", ContextKey: "u", FlagKey: "f", VariationKey: "v"}},
		{{ID: [16]byte{2}, Type: "track", Timestamp: 1, ContextKind: "user", ContextKey: "u", EventKey: "k", Value: &v, Properties: map[string]any{"x": 1}}},
		{{ID: [16]byte{3}, Type: "summary", Timestamp: 1, Start: 1, End: 2, Counters: []eventsarrow.Counter{{FlagKey: "f", Count: 1}}}},
	} {
		var buf bytes.Buffer
		if err := eventsarrow.WriteStream(&buf, evs, 0); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Add([]byte("not arrow"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = DecodeArrow(data, 1000, func(e *event.Event, rej *event.Reject, raw func() []byte) {
			if rej == nil {
				rej = event.Validate(e)
			}
			if rej == nil {
				event.Normalize(e, time.Now().UnixMilli(), 0, event.DefaultSkew)
				_ = event.AppendRecord(nil, &event.Record{Event: *e, EnvironmentID: "env"})
			} else if len(raw()) == 0 {
				t.Fatal("rejected row without a JSON rendering")
			}
		})
	})
}
