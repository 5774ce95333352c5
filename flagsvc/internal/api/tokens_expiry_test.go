package api_test

import (
	"strings"
	"testing"

	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
)

// TestATokenCannotMintATokenThatOutlivesIt: a caller authenticated by an expiring API token
// (service or personal) creates only tokens that expire no later than its own — one without
// expires_in, or with a later expiry, is refused with 422 naming expires_in and writes nothing —
// and never a token with more rights than its own. Tokens without an expiry (the bootstrap
// owner's, a dashboard sign-in with such a token) are not affected.
func TestATokenCannotMintATokenThatOutlivesIt(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	tokenCount := func() int {
		var ts struct {
			Items []domain.APIToken `json:"items"`
		}
		s.must(200, "GET", "/api/v1/tokens", nil, &ts)
		return len(ts.Items)
	}
	create := func(caller string, body map[string]any) response {
		t.Helper()
		return s.req("POST", "/api/v1/tokens", caller, body)
	}
	outlives := func(who, caller string, body map[string]any) {
		t.Helper()
		n := tokenCount()
		r := create(caller, body)
		if r.Status != 422 {
			t.Fatalf("%s, %v: status %d, want 422: %s", who, body, r.Status, r.Body)
		}
		if e := r.errorBody(t); e.Field != "expires_in" || !strings.Contains(e.Message, "outlive") {
			t.Fatalf("%s, %v: field %q, message %q: want expires_in saying the new token may not outlive the caller's", who, body, e.Field, e.Message)
		}
		if after := tokenCount(); after != n {
			t.Fatalf("%s: a refused token was written (%d tokens, were %d)", who, after, n)
		}
	}

	var short domain.APIToken
	s.must(201, "POST", "/api/v1/tokens", map[string]any{"kind": "service", "name": "short", "role": "admin", "expires_in": "1h"}, &short)
	svc := func(name string, extra ...any) map[string]any {
		b := map[string]any{"kind": "service", "name": name, "role": "developer"}
		for i := 0; i+1 < len(extra); i += 2 {
			b[extra[i].(string)] = extra[i+1]
		}
		return b
	}
	outlives("service token, no expiry", short.Token, svc("forever"))
	outlives("service token, later expiry", short.Token, svc("longer", "expires_in", "2h"))
	var child domain.APIToken
	if r := create(short.Token, svc("child", "role", "admin", "expires_in", "30m")); r.Status != 201 {
		t.Fatalf("a shorter-lived token: %d %s", r.Status, r.Body)
	} else {
		r.decode(t, &child)
	}
	if child.ExpiresAt == nil || child.ExpiresAt.After(*short.ExpiresAt) {
		t.Fatalf("child expires %v, after its creator (%v)", child.ExpiresAt, short.ExpiresAt)
	}
	// The child is itself bound by its own expiry.
	outlives("token created by an expiring token", child.Token, svc("grandchild", "expires_in", "45m"))
	var dev domain.APIToken
	if r := create(short.Token, svc("dev", "expires_in", "30m")); r.Status != 201 {
		t.Fatalf("a developer token: %d %s", r.Status, r.Body)
	} else {
		r.decode(t, &dev)
	}

	// Rights: never above the caller's role, never a personal token from a service token,
	// nothing at all from a project-scoped token — with an expiry well inside the caller's.
	var scoped domain.APIToken
	s.must(201, "POST", "/api/v1/tokens", map[string]any{"kind": "service", "name": "scoped", "role": "admin", "project": p, "expires_in": "1h"}, &scoped)
	for _, c := range []struct {
		who, caller string
		body        map[string]any
	}{
		{"admin token granting owner", short.Token, map[string]any{"kind": "service", "name": "o", "role": "owner", "expires_in": "1m"}},
		{"service token creating a personal token", short.Token, map[string]any{"kind": "personal", "name": "p", "expires_in": "1m"}},
		{"project-scoped token, same project", scoped.Token, map[string]any{"kind": "service", "name": "s", "role": "viewer", "project": p, "expires_in": "1m"}},
		{"project-scoped token, unscoped viewer", scoped.Token, map[string]any{"kind": "service", "name": "s", "role": "viewer", "expires_in": "1m"}},
		{"developer token creating a token", dev.Token, map[string]any{"kind": "service", "name": "d", "role": "developer", "expires_in": "1m"}},
	} {
		if r := create(c.caller, c.body); r.Status != 403 {
			t.Fatalf("%s: %d, want 403: %s", c.who, r.Status, r.Body)
		}
	}

	// Personal tokens (a dashboard signs in with one): an expiring one is bound the same way;
	// one without an expiry, like the bootstrap owner's, still creates tokens without one.
	var m domain.Member
	s.must(201, "POST", "/api/v1/members", map[string]any{"email": "dev@acme.test", "role": "developer"}, &m)
	signIn := personalToken(t, s, m.ID)
	var laptop domain.APIToken
	if r := create(signIn, map[string]any{"kind": "personal", "name": "laptop", "expires_in": "8h"}); r.Status != 201 {
		t.Fatalf("personal token without expiry creating one: %d %s", r.Status, r.Body)
	} else {
		r.decode(t, &laptop)
	}
	if r := create(signIn, map[string]any{"kind": "personal", "name": "desktop"}); r.Status != 201 {
		t.Fatalf("personal token without expiry creating one without expiry: %d %s", r.Status, r.Body)
	}
	outlives("personal token, no expiry", laptop.Token, map[string]any{"kind": "personal", "name": "forever"})
	outlives("personal token, later expiry", laptop.Token, map[string]any{"kind": "personal", "name": "week", "expires_in": "168h"})
	if r := create(laptop.Token, map[string]any{"kind": "personal", "name": "ci run", "expires_in": "1h"}); r.Status != 201 {
		t.Fatalf("personal token within its creator's expiry: %d %s", r.Status, r.Body)
	}
	s.must(201, "POST", "/api/v1/tokens", svc("owner-made"), nil)
}
