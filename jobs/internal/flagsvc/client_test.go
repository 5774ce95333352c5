package flagsvc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/platform/errs"
)

// TestErrorsKeepTheFlagServiceKinds: the flag service's statuses map to the platform's error
// kinds (a 409 stays a conflict, which the scheduler relies on), with its message and field.
func TestErrorsKeepTheFlagServiceKinds(t *testing.T) {
	cases := []struct {
		status    int
		kind      errs.Kind
		retryable bool
	}{
		{400, errs.KindMalformed, false}, {401, errs.KindUnauthenticated, false}, {403, errs.KindPermissionDenied, false},
		{404, errs.KindNotFound, false}, {409, errs.KindConflict, false}, {412, errs.KindPreconditionFailed, false},
		{422, errs.KindInvalid, false}, {429, errs.KindRateLimited, true}, {500, errs.KindUnavailable, true}, {503, errs.KindUnavailable, true},
	}
	for _, tc := range cases {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(`{"error":{"code":"x","message":"it broke","field":"rules[0]"}}`))
			}))
			defer srv.Close()
			_, err := New(srv.URL, "t", "").Config(context.Background(), "p", "f", "e")
			var e *errs.Error
			if !errors.As(err, &e) || e.Kind != tc.kind || e.Field != "rules[0]" || e.Message != "flag service: it broke" {
				t.Fatalf("err = %#v", err)
			}
			if Retryable(err) != tc.retryable {
				t.Fatalf("retryable = %v", Retryable(err))
			}
		})
	}
	if _, err := New("http://127.0.0.1:1", "t", "").Me(context.Background()); !Retryable(err) {
		t.Fatalf("an unreachable flag service must be retryable: %v", err)
	}
}

// TestWritesCarryVersionOriginAndToken: a scheduled write sends If-Match, the origin header
// and the token read from the token file, re-read when it changes.
func TestWritesCarryVersionOriginAndToken(t *testing.T) {
	var mu sync.Mutex
	var got []*http.Request
	var bodies []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		got, bodies = append(got, r), append(bodies, body)
		mu.Unlock()
		_, _ = w.Write([]byte(`{"flag_key":"f","environment_key":"e","version":8,"on":true}`))
	}))
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "token")
	c := New(srv.URL, "", file)
	if c.HasToken() {
		t.Fatal("a missing token file is no token")
	}
	if _, err := c.Toggle(context.Background(), "p", "f", "e", true, Write{IfMatch: 7}); !errors.Is(err, ErrNoToken) {
		t.Fatalf("without a token: %v", err)
	}
	if err := os.WriteFile(file, []byte("sy_svc_one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fe, err := c.Toggle(context.Background(), "p", "f", "e", true, Write{IfMatch: 7, Comment: "step 1", Scheduled: true})
	if err != nil || fe.Version != 8 {
		t.Fatal(fe, err)
	}
	if err := os.WriteFile(file, []byte("sy_svc_two"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PatchConfig(context.Background(), "p", "f", "e", json.RawMessage(`{"on":false}`), Write{IfMatch: 8, Comment: "step 2"}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d requests", len(got))
	}
	r0, r1 := got[0], got[1]
	if r0.Header.Get("Authorization") != "Bearer sy_svc_one" || r0.Header.Get("If-Match") != `"7"` || r0.Header.Get(OriginHeader) != "scheduled" ||
		r0.URL.Path != "/api/v1/projects/p/flags/f/environments/e/toggle" || bodies[0]["comment"] != "step 1" || bodies[0]["on"] != true {
		t.Fatalf("toggle: %v %v %v", r0.Header, r0.URL, bodies[0])
	}
	if r1.Header.Get("Authorization") != "Bearer sy_svc_two" || r1.Method != "PATCH" || r1.Header.Get(OriginHeader) != "" ||
		bodies[1]["comment"] != "step 2" || bodies[1]["on"] != false {
		t.Fatalf("patch: %v %v", r1.Header, bodies[1])
	}
}

func TestDecodeBreachAnswer(t *testing.T) {
	cases := []struct {
		name, raw, action string
	}{
		{"the guardrail itself", `{"id":"g","status":"breached","breach":{"at":"2026-11-25T12:00:00Z","effect":0.1,"action_taken":"serve_control"}}`, "serve_control"},
		{"wrapped with the action beside it", `{"guardrail":{"id":"g","status":"breached","breach":{"at":"2026-11-25T12:00:00Z"}},"action_taken":"turn_off"}`, "turn_off"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, err := decodeBreachAnswer(json.RawMessage(tc.raw))
			if err != nil || g.ID != "g" || g.Breach == nil || g.Breach.ActionTaken != tc.action {
				t.Fatalf("%+v %v", g, err)
			}
		})
	}
}

// TestRetryAfterIsCarried: an error answer's Retry-After (seconds or an HTTP date, measured
// from the answer's Date) is carried on the client's error; without one, or unreadable, 0.
func TestRetryAfterIsCarried(t *testing.T) {
	date := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name   string
		header map[string]string
		want   time.Duration
	}{
		{name: "seconds", header: map[string]string{"Retry-After": "30"}, want: 30 * time.Second},
		{name: "HTTP date", header: map[string]string{"Date": date.Format(http.TimeFormat), "Retry-After": date.Add(90 * time.Second).Format(http.TimeFormat)}, want: 90 * time.Second},
		{name: "date in the past", header: map[string]string{"Date": date.Format(http.TimeFormat), "Retry-After": date.Add(-time.Minute).Format(http.TimeFormat)}},
		{name: "negative", header: map[string]string{"Retry-After": "-5"}},
		{name: "garbage", header: map[string]string{"Retry-After": "soon"}},
		{name: "none"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(http.StatusTooManyRequests)
			}))
			defer srv.Close()
			_, err := New(srv.URL, "t", "").Config(context.Background(), "p", "f", "e")
			if !Retryable(err) || RetryAfter(err) != tc.want {
				t.Fatalf("RetryAfter = %s, want %s (%v)", RetryAfter(err), tc.want, err)
			}
			if wrapped := fmt.Errorf("context: %w", err); RetryAfter(wrapped) != tc.want {
				t.Fatalf("lost when wrapped: %s", RetryAfter(wrapped))
			}
		})
	}
}
