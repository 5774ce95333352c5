package itest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/google/uuid"

	"github.com/switchyard-io/switchyard/ingest/internal/app"
	"github.com/switchyard-io/switchyard/platform/testenv"
	"github.com/switchyard-io/switchyard/sdks/go/eventsarrow"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// TestArrowIngest sends an Arrow IPC stream with the Go SDK's optional Arrow sender (gzip,
// several record batches, all three types, one invalid row) and finds the rows in ClickHouse
// and the invalid row on the DLQ as JSON.
func TestArrowIngest(t *testing.T) {
	s := newStack(t)
	s.publishKeys(t, "env-a", 1, sdkKey{raw: "k", kind: ruleset.KeyServer})
	svc := start(t, s.cfg, app.Options{})
	now := time.Now().UnixMilli()
	var events []eventsarrow.Event
	for i := 0; i < 1000; i++ {
		id := uuid.Must(uuid.NewV7())
		e := eventsarrow.Event{ID: id, Timestamp: now, ContextKind: "user", ContextKey: fmt.Sprintf("u%d", i%50), SDKName: "go", SDKVersion: "1.0"}
		switch i % 4 {
		case 0:
			v := float64(i)
			e.Type, e.EventKey, e.Value, e.Properties = "track", "purchase", &v, map[string]any{"plan": "pro", "n": 2, "ok": true}
		case 1:
			e.Type, e.Start, e.End = "summary", now-1000, now
			e.Counters = []eventsarrow.Counter{{FlagKey: "f", VariationKey: "on", FlagVersion: 1, Count: 3}, {FlagKey: "g", VariationKey: "", Count: 1}}
		default:
			e.Type, e.FlagKey, e.VariationKey, e.FlagVersion, e.ExperimentKey = "exposure", "f", "on", 4, "exp"
		}
		events = append(events, e)
	}
	events = append(events, eventsarrow.Event{Type: "exposure", Timestamp: now, ContextKind: "user", ContextKey: "bad"}) // nil id
	sender := &eventsarrow.Sender{EventsURL: svc.URL + "/v1/events", SDKKey: "k", Gzip: true, BatchRows: 300}
	res, err := sender.Send(context.Background(), events)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 1000 || res.Rejected["invalid_event_id"] != 1 {
		t.Fatalf("result %+v", res)
	}
	s.waitDistinct(t, "exposures", 500, 20*time.Second)
	s.waitDistinct(t, "tracks", 250, 20*time.Second)
	s.waitDistinct(t, "evaluation_summaries", 250, 20*time.Second)
	if got := s.count(t, "SELECT count() FROM tracks WHERE has(properties.key, 'plan') AND properties.value[indexOf(properties.key, 'n')] = '2'"); got != 250 {
		t.Fatalf("%d tracks with their properties, want 250", got)
	}
	dl := s.readDLQ(t, 1)
	var row map[string]any
	if err := json.Unmarshal(dl[0].value, &row); err != nil || row["context_key"] != "bad" {
		t.Fatalf("dead letter of an Arrow row: %s (%v)", dl[0].value, err)
	}
}

func (svc *service) get(t *testing.T, path string, q url.Values) []byte {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, svc.URL+path+"?"+q.Encode(), nil)
	req.Header.Set("Authorization", "Bearer test-token")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return body
}

// TestUsageAndExport checks the usage API (evaluation counts, contexts per variation, monthly
// active contexts) and the Parquet and Arrow exports against events sent twice (exact anyway).
func TestUsageAndExport(t *testing.T) {
	s := newStack(t)
	s.publishKeys(t, "env-a", 1, sdkKey{raw: "k", kind: ruleset.KeyServer})
	svc := start(t, s.cfg, app.Options{})
	var events []ev
	for i := 0; i < 40; i++ {
		v := "control"
		if i%4 == 0 {
			v = "treatment"
		}
		events = append(events, exposure(fmt.Sprintf("u%d", i%20), "checkout", v, "exp-1"))
	}
	for i := 0; i < 10; i++ {
		events = append(events, track(fmt.Sprintf("u%d", i), "purchase", 5))
		events = append(events, track(fmt.Sprintf("w%d", i), "purchase", 5)) // contexts never exposed
	}
	events = append(events, summary(map[string]any{"flag_key": "checkout", "variation_key": "treatment", "count": 7},
		map[string]any{"flag_key": "checkout", "variation_key": "control", "count": 3}))
	sendAll(t, svc.URL, "k", events, 25, 20*time.Second)
	sendAll(t, svc.URL, "k", events, 25, 20*time.Second) // duplicates
	s.waitDistinct(t, "exposures", 40, 20*time.Second)
	s.waitDistinct(t, "tracks", 20, 20*time.Second)
	s.waitDistinct(t, "evaluation_summaries", 1, 20*time.Second)

	q := url.Values{"environment_id": {"env-a"}, "from": {time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}, "to": {time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}}
	var ev struct {
		Counts []struct {
			VariationKey string `json:"variation_key"`
			Evaluations  uint64 `json:"evaluations"`
		} `json:"counts"`
	}
	if err := json.Unmarshal(svc.get(t, "/v1/usage/evaluations", q), &ev); err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, c := range ev.Counts {
		got[c.VariationKey] += c.Evaluations
	}
	if got["treatment"] != 7 || got["control"] != 3 {
		t.Fatalf("evaluation counts %+v, want treatment 7, control 3", ev.Counts)
	}
	var cv struct {
		Variations []struct {
			VariationKey string `json:"variation_key"`
			Contexts     uint64 `json:"contexts"`
			Exposures    uint64 `json:"exposures"`
		} `json:"variations"`
	}
	if err := json.Unmarshal(svc.get(t, "/v1/usage/contexts", q), &cv); err != nil {
		t.Fatal(err)
	}
	want := map[string][2]uint64{"control": {15, 30}, "treatment": {5, 10}}
	for _, v := range cv.Variations {
		if w := want[v.VariationKey]; w != [2]uint64{v.Contexts, v.Exposures} {
			t.Fatalf("contexts per variation %+v, want %v", cv.Variations, want)
		}
	}
	var mau struct {
		Months []struct {
			Contexts uint64 `json:"active_contexts"`
		} `json:"months"`
	}
	// The monthly rollup is written by materialized views, just after the raw rows.
	testenv.Eventually(t, 20*time.Second, "monthly active contexts", func() bool {
		if err := json.Unmarshal(svc.get(t, "/v1/usage/active-contexts", q), &mau); err != nil {
			t.Fatal(err)
		}
		return len(mau.Months) == 1 && mau.Months[0].Contexts >= 30
	})
	if len(mau.Months) != 1 || mau.Months[0].Contexts != 30 {
		t.Fatalf("monthly active contexts %+v, want 30 (20 exposed + 10 only tracked)", mau)
	}

	s.waitFirstExposures(t, 20)

	// Parquet export of the experiment's exposures: 40 rows, not 80.
	q.Set("experiment_key", "exp-1")
	pq := svc.get(t, "/v1/export/exposures", q)
	rdr, err := file.NewParquetReader(bytes.NewReader(pq))
	if err != nil {
		t.Fatalf("export is not Parquet: %v", err)
	}
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{BatchSize: 1024}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	if tbl.NumRows() != 40 || tbl.Schema().Field(7).Name != "variation_key" {
		t.Fatalf("parquet: %d rows, schema %v", tbl.NumRows(), tbl.Schema())
	}
	// Arrow export of the experiment's tracks: only the 10 exposed contexts' events.
	q.Set("format", "arrow")
	ar := svc.get(t, "/v1/export/tracks", q)
	rd, err := ipc.NewReader(bytes.NewReader(ar))
	if err != nil {
		t.Fatalf("export is not an Arrow stream: %v", err)
	}
	defer rd.Release()
	rows := 0
	for rd.Next() {
		rec := rd.RecordBatch()
		rows += int(rec.NumRows())
		props := rec.Column(8).(*array.String)
		for i := 0; i < props.Len(); i++ {
			var p map[string]any
			if err := json.Unmarshal([]byte(props.Value(i)), &p); err != nil || p["seats"] != float64(3) || p["trial"] != false {
				t.Fatalf("properties %q", props.Value(i))
			}
		}
	}
	if err := rd.Err(); err != nil {
		t.Fatalf("arrow export stream: %v", err)
	}
	if rows != 10 {
		t.Fatalf("arrow export: %d tracks, want 10", rows)
	}
}
