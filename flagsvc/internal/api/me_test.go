package api_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
)

// TestMeTellsTheCallerWhenItsTokenExpires: GET /me carries token.expires_at, the expiry of the
// token the request was made with — null (present, not omitted) for one that never expires, the
// token's own expiry otherwise, whoever asks (service or personal token) — and never the token's
// secret. A client uses it to offer only lifetimes POST /tokens accepts.
func TestMeTellsTheCallerWhenItsTokenExpires(t *testing.T) {
	s := newStack(t)
	type me struct {
		Role  domain.Role `json:"role"`
		Token *struct {
			ExpiresAt *time.Time `json:"expires_at"`
		} `json:"token"`
	}
	get := func(who, token string) (me, response) {
		t.Helper()
		r := s.req("GET", "/api/v1/me", token, nil)
		if r.Status != 200 {
			t.Fatalf("%s: GET /me %d: %s", who, r.Status, r.Body)
		}
		var m me
		r.decode(t, &m)
		if m.Token == nil {
			t.Fatalf("%s: GET /me has no token object: %s", who, r.Body)
		}
		return m, r
	}
	noSecret := func(who, token string, r response) {
		t.Helper()
		secret := token[strings.LastIndex(token, "_")+1:]
		if strings.Contains(string(r.Body), secret) {
			t.Fatalf("%s: GET /me shows the token's secret: %s", who, r.Body)
		}
	}

	// The bootstrap owner's token never expires: expires_at is there, and null.
	m, r := get("owner", s.owner)
	var raw struct {
		Token map[string]json.RawMessage `json:"token"`
	}
	r.decode(t, &raw)
	if v, ok := raw.Token["expires_at"]; !ok || string(v) != "null" || m.Token.ExpiresAt != nil {
		t.Fatalf("owner (no expiry): token = %s, want {\"expires_at\":null}", r.Body)
	}
	noSecret("owner", s.owner, r)

	var short domain.APIToken
	s.must(201, "POST", "/api/v1/tokens", map[string]any{"kind": "service", "name": "short", "role": "admin", "expires_in": "41h"}, &short)
	m, r = get("service token", short.Token)
	if m.Token.ExpiresAt == nil || !m.Token.ExpiresAt.Equal(*short.ExpiresAt) {
		t.Fatalf("service token expiring at %v: GET /me says %s", short.ExpiresAt, r.Body)
	}
	if m.Role != domain.RoleAdmin {
		t.Fatalf("service token: role %q, want admin (the rest of /me is unchanged)", m.Role)
	}
	noSecret("service token", short.Token, r)
	// What /me says is what POST /tokens enforces: just inside it is accepted.
	left := time.Until(*m.Token.ExpiresAt).Truncate(time.Minute) - time.Minute
	if r := s.req("POST", "/api/v1/tokens", short.Token, map[string]any{"kind": "service", "name": "inside", "role": "viewer", "expires_in": left.String()}); r.Status != 201 {
		t.Fatalf("a token expiring %s from now, inside /me's expires_at: %d %s", left, r.Status, r.Body)
	}

	// A personal token (what a dashboard signs in with) created with an expiry reports it.
	var mem domain.Member
	s.must(201, "POST", "/api/v1/members", map[string]any{"email": "me@acme.test", "role": "developer"}, &mem)
	signIn := personalToken(t, s, mem.ID)
	if m, r := get("personal token without expiry", signIn); m.Token.ExpiresAt != nil {
		t.Fatalf("personal token without expiry: %s", r.Body)
	}
	var laptop domain.APIToken
	if r := s.req("POST", "/api/v1/tokens", signIn, map[string]any{"kind": "personal", "name": "laptop", "expires_in": "8h"}); r.Status != 201 {
		t.Fatalf("personal token: %d %s", r.Status, r.Body)
	} else {
		r.decode(t, &laptop)
	}
	m, r = get("personal token", laptop.Token)
	if m.Token.ExpiresAt == nil || !m.Token.ExpiresAt.Equal(*laptop.ExpiresAt) {
		t.Fatalf("personal token expiring at %v: GET /me says %s", laptop.ExpiresAt, r.Body)
	}
	noSecret("personal token", laptop.Token, r)
}
