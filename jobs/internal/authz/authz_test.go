package authz

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/jobs/internal/flagsvc"
	"github.com/switchyard-io/switchyard/platform/errs"
)

// TestTokensAreVerifiedOnceInAWhile: a verified token is trusted for the TTL (one /me per
// burst), an expired entry asks again, and a rejected token is unauthenticated.
func TestTokensAreVerifiedOnceInAWhile(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Header.Get("Authorization") != "Bearer good" {
			w.WriteHeader(401)
			_, _ = w.Write([]byte(`{"error":{"code":"unauthenticated","message":"invalid token"}}`))
			return
		}
		_, _ = w.Write([]byte(`{"actor":{"type":"user","id":"u1","name":"Alice"},"role":"developer"}`))
	}))
	defer srv.Close()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	a := New(flagsvc.New(srv.URL, "", ""))
	a.Now = func() time.Time { return now }
	for i := 0; i < 5; i++ {
		c, err := a.Authenticate(context.Background(), "good")
		if err != nil || c.Me.Actor.Name != "Alice" || c.Label() != "Alice" {
			t.Fatal(c, err)
		}
	}
	if calls.Load() != 1 {
		t.Fatalf("%d verifications for a burst", calls.Load())
	}
	// A token is asked about again once the flag service's own cache (2 s) would have been:
	// a revocation reaches the jobs service within seconds.
	now = now.Add(2*time.Second + time.Millisecond)
	if _, err := a.Authenticate(context.Background(), "good"); err != nil || calls.Load() != 2 {
		t.Fatalf("after the TTL: %v, %d calls", err, calls.Load())
	}
	// The cache stays bounded even when no entry has expired.
	for i := range maxCached + 10 {
		a.mu.Lock()
		a.cache[[32]byte{byte(i), byte(i >> 8), byte(i >> 16)}] = cached{exp: now.Add(time.Hour)}
		a.mu.Unlock()
	}
	if _, err := a.Authenticate(context.Background(), "other-good"); !errors.Is(err, errs.ErrUnauthenticated) {
		t.Fatalf("an unknown token: %v", err)
	}
	now = now.Add(3 * time.Second)
	if _, err := a.Authenticate(context.Background(), "good"); err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	size := len(a.cache)
	a.mu.Unlock()
	if size > maxCached {
		t.Fatalf("%d cached tokens, at most %d", size, maxCached)
	}
	if _, err := a.Authenticate(context.Background(), "bad"); !errors.Is(err, errs.ErrUnauthenticated) {
		t.Fatalf("bad token: %v", err)
	}
	if _, err := a.Authenticate(context.Background(), ""); !errors.Is(err, errs.ErrUnauthenticated) {
		t.Fatalf("no token: %v", err)
	}
	down := New(flagsvc.New("http://127.0.0.1:1", "", ""))
	if _, err := down.Authenticate(context.Background(), "good"); errs.KindOf(err) != errs.KindUnavailable {
		t.Fatalf("flag service down: %v", err)
	}
}

// TestEnvironmentRights mirrors the flag service's rule for changing an environment.
func TestEnvironmentRights(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		critical := strings.HasSuffix(r.URL.Path, "/production")
		id := "env-stg"
		if critical {
			id = "env-prod"
		}
		_, _ = w.Write([]byte(`{"id":"` + id + `","project_id":"p1","key":"x","critical":` + map[bool]string{true: "true", false: "false"}[critical] + `}`))
	}))
	defer srv.Close()
	a := New(flagsvc.New(srv.URL, "", ""))
	cases := []struct {
		name string
		me   flagsvc.Me
		env  string
		ok   bool
	}{
		{"developer in staging", flagsvc.Me{Role: RoleDeveloper}, "staging", true},
		{"developer in production", flagsvc.Me{Role: RoleDeveloper}, "production", false},
		{"project admin in production", flagsvc.Me{Role: RoleProjectAdmin}, "production", true},
		{"project admin of another project", flagsvc.Me{Role: RoleProjectAdmin, ProjectIDs: []string{"p2"}}, "staging", false},
		{"project admin of this project", flagsvc.Me{Role: RoleProjectAdmin, ProjectIDs: []string{"p1"}}, "production", true},
		{"viewer", flagsvc.Me{Role: RoleViewer}, "staging", false},
		{"service token of another environment", flagsvc.Me{Role: RoleAdmin, Scope: map[string]string{"project_id": "p1", "environment_id": "env-prod"}}, "staging", false},
		{"service token of this environment", flagsvc.Me{Role: RoleAdmin, Scope: map[string]string{"project_id": "p1", "environment_id": "env-stg"}}, "staging", true},
		{"service token of another project", flagsvc.Me{Role: RoleAdmin, Scope: map[string]string{"project_id": "p9"}}, "staging", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.RequireEnvironment(context.Background(), Caller{Token: "t", Me: tc.me}, "shop", tc.env)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok %v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, errs.ErrPermissionDenied) {
				t.Fatalf("err kind: %v", err)
			}
		})
	}
}
