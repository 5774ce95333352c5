package eventsarrow

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
)

func TestWriteStreamRoundTrip(t *testing.T) {
	v := 3.5
	events := []Event{
		{ID: [16]byte{1}, Type: "exposure", Timestamp: 10, ContextKind: "user", ContextKey: "u", FlagKey: "f", VariationKey: "on", FlagVersion: 2},
		{ID: [16]byte{2}, Type: "track", Timestamp: 11, ContextKind: "user", ContextKey: "u", EventKey: "buy", Value: &v, Properties: map[string]any{"a": 1}},
		{ID: [16]byte{3}, Type: "summary", Timestamp: 12, Start: 1, End: 2, Counters: []Counter{{FlagKey: "f", VariationKey: "on", Count: 4}}},
	}
	var buf bytes.Buffer
	if err := WriteStream(&buf, events, 2); err != nil {
		t.Fatal(err)
	}
	rd, err := ipc.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	var types []string
	batches := 0
	for rd.Next() {
		rec := rd.RecordBatch()
		batches++
		ty := rec.Column(ColType).(*array.String)
		for i := 0; i < ty.Len(); i++ {
			types = append(types, ty.Value(i))
		}
		if batches == 2 {
			l := rec.Column(ColCounters).(*array.List)
			from, to := l.ValueOffsets(0)
			if to-from != 1 {
				t.Fatalf("summary counters %d", to-from)
			}
		}
	}
	if batches != 2 || len(types) != 3 || types[1] != "track" {
		t.Fatalf("%d batches, types %v", batches, types)
	}
}

func TestSenderRetriesOn503(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("Content-Type") != ContentType || r.Header.Get("Authorization") != "key" || len(body) == 0 {
			w.WriteHeader(400)
			return
		}
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(503)
			return
		}
		w.WriteHeader(202)
		_, _ = w.Write([]byte(`{"accepted":1,"rejected":{}}`))
	}))
	defer srv.Close()
	s := &Sender{EventsURL: srv.URL, SDKKey: "key", Gzip: true}
	res, err := s.Send(context.Background(), []Event{{ID: [16]byte{1}, Type: "track", Timestamp: 1, ContextKind: "user", ContextKey: "u", EventKey: "k"}})
	if err != nil || res.Accepted != 1 || calls.Load() != 2 {
		t.Fatalf("res %+v err %v calls %d", res, err, calls.Load())
	}
}
