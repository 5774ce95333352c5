package itest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/ingest/internal/app"
	"github.com/switchyard-io/switchyard/platform/testenv"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// The tests in this file stop and restart parts of the shared local stack. They restore them
// in t.Cleanup whatever happens, and they are the only tests that do it (see the package doc).

// stopUntilCleanup stops a stack component with its deploy/local script and makes sure it is
// started again at cleanup. It returns a function that starts it now.
func stopUntilCleanup(t *testing.T, script string) (restart func()) {
	t.Helper()
	var once sync.Once
	restart = func() { once.Do(func() { runScript(t, script, "start") }) }
	t.Cleanup(restart)
	runScript(t, script, "stop")
	return restart
}

// streamer sends events in batches as an SDK would, until stopped: each batch is retried
// (same event ids) after a 429/503 or a connection error until it is accepted. It counts the
// accepted events per type.
type streamer struct {
	accepted                     atomic.Int64
	exposures, tracks, summaries atomic.Int64
	refused                      atomic.Int64 // 503/429 answers carrying Retry-After
	lastError                    atomic.Value
	stopCh, done                 chan struct{}
}

func stream(url, key string, size int, deadline time.Duration) *streamer {
	s := &streamer{stopCh: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		end := time.Now().Add(deadline)
		for {
			select {
			case <-s.stopCh:
				return
			default:
			}
			batch, e, tr, su := mixedEvents(size, "exp")
			body, _ := json.Marshal(batch)
			for {
				st, retryAfter, msg := rawPost(url, key, body)
				if st == http.StatusAccepted {
					s.accepted.Add(int64(len(batch)))
					s.exposures.Add(int64(e))
					s.tracks.Add(int64(tr))
					s.summaries.Add(int64(su))
					break
				}
				if (st == http.StatusServiceUnavailable || st == http.StatusTooManyRequests) && retryAfter != "" {
					s.refused.Add(1)
				} else if st != -1 {
					s.lastError.Store(msg)
					return
				}
				if time.Now().After(end) {
					s.lastError.Store("deadline passed; last answer: " + msg)
					return
				}
				time.Sleep(200 * time.Millisecond) // SDK retry backoff
			}
		}
	}()
	return s
}

// stop ends the stream after the batch in progress is accepted.
func (s *streamer) stop(t *testing.T, timeout time.Duration) {
	t.Helper()
	close(s.stopCh)
	select {
	case <-s.done:
	case <-time.After(timeout):
		t.Fatal("sender did not finish")
	}
	if e, _ := s.lastError.Load().(string); e != "" {
		t.Fatalf("sender failed: %s", e)
	}
}

func rawPost(url, key string, body []byte) (int, string, string) {
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/events", strings.NewReader(string(body)))
	req.Header.Set("Authorization", key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		return -1, "", err.Error()
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), string(data)
}

// TestKafkaBrokerRestartMidStream stops the broker while events stream in: the collector
// answers 503 with Retry-After instead of buffering (in-flight bytes stay within the budget),
// the SDK-like sender retries, and after the broker is back exactly N events are in ClickHouse.
func TestKafkaBrokerRestartMidStream(t *testing.T) {
	s := newStack(t)
	s.publishKeys(t, "env-a", 1, sdkKey{raw: "k", kind: ruleset.KeyServer})
	cfg := s.cfg
	cfg.ProduceTimeout = 2 * time.Second
	cfg.MaxInFlightBytes = 1 << 20
	svc := start(t, cfg, app.Options{})
	snd := stream(svc.URL, "k", 100, 3*time.Minute)
	testenv.Eventually(t, 30*time.Second, "a first 2000 events accepted", func() bool { return snd.accepted.Load() >= 2000 })

	restart := stopUntilCleanup(t, "kafka.sh")
	testenv.Eventually(t, 30*time.Second, "503 + Retry-After while the broker is down", func() bool { return snd.refused.Load() > 0 })
	if b := svc.Collector.InFlightBytes(); b > cfg.MaxInFlightBytes {
		t.Fatalf("in-flight bytes %d over the budget %d", b, cfg.MaxInFlightBytes)
	}
	restart()
	afterRestart := snd.accepted.Load()
	testenv.Eventually(t, 90*time.Second, "events accepted again after the restart", func() bool { return snd.accepted.Load() >= afterRestart+2000 })
	snd.stop(t, time.Minute)

	s.waitDistinct(t, "exposures", int(snd.exposures.Load()), 60*time.Second)
	s.waitDistinct(t, "tracks", int(snd.tracks.Load()), 60*time.Second)
	s.waitDistinct(t, "evaluation_summaries", int(snd.summaries.Load()), 60*time.Second)
}

// TestClickHouseDownFor30Seconds stops ClickHouse for 30 s while events keep arriving: the
// collector keeps accepting (Kafka holds the events), the writer pauses and retries, and once
// ClickHouse is back every event is there exactly once (after dedup).
func TestClickHouseDownFor30Seconds(t *testing.T) {
	s := newStack(t)
	s.publishKeys(t, "env-a", 1, sdkKey{raw: "k", kind: ruleset.KeyServer})
	svc := start(t, s.cfg, app.Options{})
	const n = 4000
	events, exposures, tracks, summaries := mixedEvents(n, "exp")
	sendAll(t, svc.URL, "k", events[:n/2], 100, 30*time.Second)
	testenv.Eventually(t, 30*time.Second, "first half in ClickHouse", func() bool {
		return s.distinct(t, "exposures")+s.distinct(t, "tracks")+s.distinct(t, "evaluation_summaries") == n/2
	})

	restart := stopUntilCleanup(t, "clickhouse.sh")
	down := time.Now()
	sendAll(t, svc.URL, "k", events[n/2:], 100, 30*time.Second) // accepted while ClickHouse is down
	// Keep ClickHouse down for 30 s; meanwhile the service must report it not ready.
	testenv.Eventually(t, 60*time.Second, "30 s of ClickHouse outage", func() bool {
		resp, err := httpClient.Get(svc.URL + "/readyz")
		if err != nil {
			t.Fatalf("readyz: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("readyz answered %d while ClickHouse is down", resp.StatusCode)
		}
		return time.Since(down) >= 30*time.Second
	})
	restart()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for ctx.Err() == nil && s.ch.Ping(ctx) != nil {
		time.Sleep(200 * time.Millisecond)
	}
	s.waitDistinct(t, "exposures", exposures, 90*time.Second)
	s.waitDistinct(t, "tracks", tracks, 90*time.Second)
	s.waitDistinct(t, "evaluation_summaries", summaries, 90*time.Second)
}
