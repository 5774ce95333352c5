package itest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/ingest/internal/api"
	"github.com/switchyard-io/switchyard/ingest/internal/app"
	chstore "github.com/switchyard-io/switchyard/ingest/internal/store/clickhouse"
	"github.com/switchyard-io/switchyard/platform/testenv"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

func execCommand(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// TestExactlyNWithRetriedBatches sends N mixed events over HTTP (JSON, half of the batches
// gzip), then sends every batch a second time as an SDK retry would, and finds exactly N
// distinct events in ClickHouse, exact evaluation counts, and the duplicates really stored
// (so the dedup in the queries is what makes the counts exact).
func TestExactlyNWithRetriedBatches(t *testing.T) {
	s := newStack(t)
	s.publishKeys(t, "env-a", 1, sdkKey{raw: "srv-key-a", kind: ruleset.KeyServer})
	svc := start(t, s.cfg, app.Options{})
	const n = 3000
	events, exposures, tracks, summaries := mixedEvents(n, "exp-1")
	sendAll(t, svc.URL, "srv-key-a", events, 100, 30*time.Second)
	sendAll(t, svc.URL, "srv-key-a", events, 100, 30*time.Second) // the retry
	s.waitDistinct(t, "exposures", exposures, 30*time.Second)
	s.waitDistinct(t, "tracks", tracks, 30*time.Second)
	s.waitDistinct(t, "evaluation_summaries", summaries, 30*time.Second)
	// The retry really wrote every event twice (merges may already have collapsed some of the
	// duplicate rows, so count what the writer inserted).
	testenv.Eventually(t, 10*time.Second, "inserted rows counted", func() bool { return metricSum(t, svc, "ingest_writer_rows_total") >= 2*n })
	if got := metricSum(t, svc, "ingest_writer_rows_total"); got != 2*n {
		t.Fatalf("writer inserted %v rows, want %d (every event twice)", got, 2*n)
	}
	// Exact evaluation counts despite every summary being stored twice.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	counts, err := chstore.EvaluationCounts(ctx, s.ch, chstore.UsageFilter{EnvironmentID: "env-a", From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour)}, chstore.IntervalDay)
	if err != nil {
		t.Fatal(err)
	}
	var total uint64
	for _, c := range counts {
		total += c.Evaluations
	}
	if total != uint64(2*summaries) {
		t.Fatalf("evaluation counts: got %d, want %d (%+v)", total, 2*summaries, counts)
	}
	if env := s.count(t, "SELECT count() FROM exposures WHERE environment_id != 'env-a'"); env != 0 {
		t.Fatalf("%d rows with an environment other than the key's", env)
	}
}

// TestEnvironmentComesFromKey checks that an environment_id in the body is ignored: the key
// decides.
// metricSum adds up every series of a counter in the service's registry.
func metricSum(t *testing.T, svc *service, name string) float64 {
	t.Helper()
	mfs, err := svc.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func TestEnvironmentComesFromKey(t *testing.T) {
	s := newStack(t)
	s.publishKeys(t, "env-a", 1, sdkKey{raw: "key-a", kind: ruleset.KeyServer})
	s.publishKeys(t, "env-b", 1, sdkKey{raw: "key-b", kind: ruleset.KeyClient})
	svc := start(t, s.cfg, app.Options{})
	e := exposure("u1", "f", "on", "")
	e["environment_id"] = "env-a"
	r := postJSON(t, svc.URL, "key-b", []ev{e}, false)
	if r.Status != http.StatusAccepted {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	s.waitDistinct(t, "exposures", 1, 20*time.Second)
	if got := s.count(t, "SELECT count() FROM exposures WHERE environment_id = 'env-b'"); got != 1 {
		t.Fatalf("event not stored under the key's environment env-b")
	}
}

// An SDK whose clock is an hour ahead says when it sent the batch: the event is stored at its
// true time (the time it was sent as client_timestamp_ms), not clamped to the time of receipt.
// A send time that is no number is refused, naming the header.
func TestEventTimesCorrectedForTheSendersClock(t *testing.T) {
	s := newStack(t)
	s.publishKeys(t, "env-a", 1, sdkKey{raw: "key-a", kind: ruleset.KeyServer})
	svc := start(t, s.cfg, app.Options{})
	ahead := time.Now().Add(time.Hour).UnixMilli()
	e := track("u1", "purchase", 1)
	e["timestamp"] = ahead - 5000 // five seconds before the batch was sent, by the same clock
	body, _ := json.Marshal([]ev{e})
	r := post(t, svc.URL, "key-a", "application/json", body, false, api.SentAtHeader, strconv.FormatInt(ahead, 10))
	if r.Status != http.StatusAccepted || !strings.Contains(string(r.Body), `"corrected":1`) || !strings.Contains(string(r.Body), `"clamped":0`) {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	received := time.Now().UnixMilli()
	s.waitDistinct(t, "tracks", 1, 20*time.Second)
	var ts, client int64
	var clamped uint8
	if err := s.ch.QueryRow(context.Background(), `SELECT toInt64(timestamp_ms), toInt64(client_timestamp_ms), clamped FROM tracks`).
		Scan(&ts, &client, &clamped); err != nil {
		t.Fatal(err)
	}
	// The true time: five seconds before sending, less the network's time.
	if want := received - 5000; ts > want || ts < want-5000 || client != ahead-5000 || clamped != 0 {
		t.Fatalf("stored at %d (client %d, clamped %d); want about %d (client %d)", ts, client, clamped, want, ahead-5000)
	}
	r = post(t, svc.URL, "key-a", "application/json", body, false, api.SentAtHeader, "yesterday")
	if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), api.SentAtHeader) {
		t.Fatalf("bad send time: status %d: %s", r.Status, r.Body)
	}
}

// navigator.sendBeacon, which browsers use for the last events of a page, cannot set headers:
// it posts text/plain with the client key and the send time in the query. A server key is
// refused there (it would end up in URLs' logs); a bad send time is named.
func TestSendBeacon(t *testing.T) {
	s := newStack(t)
	s.publishKeys(t, "env-a", 1, sdkKey{raw: "srv", kind: ruleset.KeyServer}, sdkKey{raw: "cli", kind: ruleset.KeyClient})
	svc := start(t, s.cfg, app.Options{})
	ahead := time.Now().Add(time.Hour).UnixMilli()
	e := track("u1", "purchase", 1)
	e["timestamp"] = ahead
	body, _ := json.Marshal([]ev{e})
	beacon := func(key, sentAt string) (int, string) {
		q := url.Values{api.SDKKeyParam: {key}, api.SentAtParam: {sentAt}}
		resp, err := httpClient.Post(svc.URL+"/v1/events?"+q.Encode(), "text/plain;charset=UTF-8", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, b := beacon("srv", strconv.FormatInt(ahead, 10)); status != http.StatusUnauthorized {
		t.Fatalf("server key in the query: status %d: %s", status, b)
	}
	if status, b := beacon("cli", "soon"); status != http.StatusBadRequest || !strings.Contains(b, api.SentAtParam) {
		t.Fatalf("bad send time: status %d: %s", status, b)
	}
	if status, b := beacon("cli", strconv.FormatInt(ahead, 10)); status != http.StatusAccepted || !strings.Contains(b, `"corrected":1`) {
		t.Fatalf("beacon: status %d: %s", status, b)
	}
	s.waitDistinct(t, "tracks", 1, 20*time.Second)
	var ts int64
	if err := s.ch.QueryRow(context.Background(), `SELECT toInt64(timestamp_ms) FROM tracks`).Scan(&ts); err != nil {
		t.Fatal(err)
	}
	if now := time.Now().UnixMilli(); ts > now || ts < now-60_000 {
		t.Fatalf("stored at %d, want the time it was sent (about %d)", ts, now)
	}
}
