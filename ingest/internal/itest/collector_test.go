package itest

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-io/switchyard/ingest/internal/app"
	"github.com/switchyard-io/switchyard/platform/testenv"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// dlqRecord is a dead-letter record as read back from Kafka.
type dlqRecord struct {
	reason, field, env, source string
	truncatedFrom              string
	keyTruncatedFrom           string
	key, value                 []byte
}

// readDLQ consumes the stack's DLQ topic until it holds want records.
func (s *stack) readDLQ(t *testing.T, want int) []dlqRecord {
	t.Helper()
	cl := testenv.KafkaClient(t, kgo.ConsumeTopics(s.cfg.DLQTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var out []dlqRecord
	testenv.Eventually(t, 20*time.Second, "dead letters", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			d := dlqRecord{key: r.Key, value: r.Value}
			for _, h := range r.Headers {
				switch h.Key {
				case "reason":
					d.reason = string(h.Value)
				case "field":
					d.field = string(h.Value)
				case "environment_id":
					d.env = string(h.Value)
				case "source":
					d.source = string(h.Value)
				case "truncated_from":
					d.truncatedFrom = string(h.Value)
				case "key_truncated_from":
					d.keyTruncatedFrom = string(h.Value)
				}
			}
			out = append(out, d)
		})
		return len(out) >= want
	})
	if len(out) != want {
		t.Fatalf("%d dead letters, want %d", len(out), want)
	}
	return out
}

// TestInvalidEventsGoToDLQ sends one batch mixing valid events with invalid ones: the valid
// ones are stored, each invalid one lands on the DLQ with its reason and its JSON, and the
// response counts rejections per reason. A future timestamp is clamped, not dropped.
func TestInvalidEventsGoToDLQ(t *testing.T) {
	s := newStack(t)
	s.publishKeys(t, "env-a", 1, sdkKey{raw: "k", kind: ruleset.KeyServer})
	svc := start(t, s.cfg, app.Options{})

	future := exposure("u-future", "f", "on", "")
	future["timestamp"] = time.Now().Add(48 * time.Hour).UnixMilli()
	noVariation := exposure("u2", "f", "on", "")
	delete(noVariation, "variation_key")
	badID := track("u3", "buy", 1)
	badID["event_id"] = "not-a-uuid"
	longKey := track(strings.Repeat("x", 300), "buy", 1)
	badProp := track("u4", "buy", 1)
	badProp["properties"] = map[string]any{"nested": map[string]any{"a": 1}}
	body, _ := json.Marshal([]any{exposure("u1", "f", "on", ""), future, noVariation, badID, longKey, badProp, 42,
		map[string]any{"event_id": newID(), "type": "click", "timestamp": 1}})
	r := post(t, svc.URL, "k", "application/json", body, false)
	if r.Status != http.StatusAccepted {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	var res struct {
		Accepted int            `json:"accepted"`
		Rejected map[string]int `json:"rejected"`
		Clamped  int            `json:"clamped"`
	}
	if err := json.Unmarshal(r.Body, &res); err != nil {
		t.Fatal(err)
	}
	wantRejected := map[string]int{"missing_field": 1, "invalid_event_id": 1, "too_long": 1, "invalid_value": 1, "malformed": 1, "unknown_type": 1}
	if res.Accepted != 2 || res.Clamped != 1 || len(res.Rejected) != len(wantRejected) {
		t.Fatalf("response %s, want 2 accepted, 1 clamped, rejected %v", r.Body, wantRejected)
	}
	for k, v := range wantRejected {
		if res.Rejected[k] != v {
			t.Fatalf("rejected[%s] = %d, want %d (%s)", k, res.Rejected[k], v, r.Body)
		}
	}
	dl := s.readDLQ(t, 6)
	byReason := map[string]dlqRecord{}
	for _, d := range dl {
		if d.env != "env-a" || d.source != "collector" {
			t.Fatalf("dead letter without environment/source: %+v", d)
		}
		byReason[d.reason] = d
	}
	if d := byReason["missing_field"]; d.field != "variation_key" || !strings.Contains(string(d.value), `"u2"`) {
		t.Fatalf("missing_field dead letter: field %q value %s", d.field, d.value)
	}
	if d := byReason["malformed"]; string(d.value) != "42" {
		t.Fatalf("malformed dead letter value %q, want the element as sent", d.value)
	}
	s.waitDistinct(t, "exposures", 2, 20*time.Second)
	if got := s.count(t, "SELECT count() FROM exposures WHERE clamped = 1 AND context_key = 'u-future' AND client_timestamp_ms > toInt64(timestamp_ms)"); got != 1 {
		t.Fatalf("the future exposure was not stored clamped with its client timestamp")
	}
}

// TestBatchErrors covers whole-batch failures: no key, unknown key, expired key, bad JSON,
// unsupported content type, too many events.
func TestBatchErrors(t *testing.T) {
	s := newStack(t)
	past := time.Now().Add(-time.Minute)
	s.publishKeys(t, "env-a", 1, sdkKey{raw: "good", kind: ruleset.KeyServer}, sdkKey{raw: "old", kind: ruleset.KeyServer, expires: &past})
	cfg := s.cfg
	cfg.MaxEventsPerRequest = 5
	cfg.Writer = false
	svc := start(t, cfg, app.Options{})
	one, _ := json.Marshal([]ev{exposure("u", "f", "on", "")})
	six, _ := json.Marshal([]ev{exposure("u", "f", "on", ""), exposure("u", "f", "on", ""), exposure("u", "f", "on", ""),
		exposure("u", "f", "on", ""), exposure("u", "f", "on", ""), exposure("u", "f", "on", "")})
	for _, tc := range []struct {
		name, key, ct string
		body          []byte
		status        int
		code          string
	}{
		{"no key", "", "application/json", one, 401, "unauthenticated"},
		{"unknown key", "nope", "application/json", one, 401, "unauthenticated"},
		{"expired key", "old", "application/json", one, 401, "unauthenticated"},
		{"bearer prefix accepted", "Bearer good", "application/json", one, 202, ""},
		{"invalid JSON", "good", "application/json", []byte(`[{"a":`), 400, "invalid_argument"},
		{"not an array", "good", "application/json", []byte(`{"a":1}`), 400, "invalid_argument"},
		{"unsupported type", "good", "application/xml", one, 415, "unsupported_media_type"},
		{"too many events", "good", "application/json", six, 413, "too_large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := post(t, svc.URL, tc.key, tc.ct, tc.body, false)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
			}
			if tc.code != "" && !strings.Contains(string(r.Body), `"code":"`+tc.code+`"`) {
				t.Fatalf("body %s, want code %s", r.Body, tc.code)
			}
		})
	}
}

// TestKeysCORSAndRateLimits: client keys get CORS headers and their own (tighter) rate limit
// with 429 + Retry-After; server keys get no CORS headers; a new ruleset revokes removed keys.
func TestKeysCORSAndRateLimits(t *testing.T) {
	s := newStack(t)
	s.publishKeys(t, "env-a", 1, sdkKey{raw: "srv", kind: ruleset.KeyServer}, sdkKey{raw: "cli", kind: ruleset.KeyClient})
	cfg := s.cfg
	cfg.Writer = false
	cfg.ClientKeyRate = 5
	cfg.MaxEventsPerRequest = 5
	svc := start(t, cfg, app.Options{})
	batch := func(n int) []byte {
		var evs []ev
		for i := 0; i < n; i++ {
			evs = append(evs, exposure("u", "f", "on", ""))
		}
		b, _ := json.Marshal(evs)
		return b
	}
	r := post(t, svc.URL, "cli", "application/json", batch(5), false, "Origin", "https://app.example")
	if r.Status != 202 || r.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("client key: status %d, CORS %q", r.Status, r.Header.Get("Access-Control-Allow-Origin"))
	}
	r = post(t, svc.URL, "cli", "application/json", batch(5), false, "Origin", "https://app.example")
	if r.Status != http.StatusTooManyRequests || r.RetryAfter == "" {
		t.Fatalf("client key over its rate: status %d Retry-After %q: %s", r.Status, r.RetryAfter, r.Body)
	}
	r = post(t, svc.URL, "srv", "application/json", batch(5), false, "Origin", "https://app.example")
	if r.Status != 202 || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("server key: status %d, CORS %q (server keys must not be usable from browsers)", r.Status, r.Header.Get("Access-Control-Allow-Origin"))
	}
	req, _ := http.NewRequest(http.MethodOptions, svc.URL+"/v1/events", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 || !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	// Rotate: a newer ruleset without the server key revokes it.
	s.publishKeys(t, "env-a", 2, sdkKey{raw: "cli", kind: ruleset.KeyClient})
	testenv.Eventually(t, 20*time.Second, "revoked key refused", func() bool {
		return post(t, svc.URL, "srv", "application/json", batch(1), false).Status == 401
	})
	// An older ruleset republished out of order does not bring it back.
	s.publishKeys(t, "env-a", 1, sdkKey{raw: "srv", kind: ruleset.KeyServer})
	s.publishKeys(t, "env-b", 1, sdkKey{raw: "marker", kind: ruleset.KeyServer})
	testenv.Eventually(t, 20*time.Second, "marker key", func() bool {
		return post(t, svc.URL, "marker", "application/json", batch(1), false).Status == 202
	})
	if st := post(t, svc.URL, "srv", "application/json", batch(1), false).Status; st != 401 {
		t.Fatalf("stale ruleset restored a revoked key: status %d", st)
	}
	// A tombstone removes the environment.
	s.produce(t, &kgo.Record{Topic: s.cfg.RulesetsTopic, Key: []byte("env-b")})
	testenv.Eventually(t, 20*time.Second, "tombstoned environment refused", func() bool {
		return post(t, svc.URL, "marker", "application/json", batch(1), false).Status == 401
	})
}
