package api_test

import (
	"strings"
	"testing"

	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
)

// createToken creates a service token with the given token and returns it (secret included).
func (s *stack) createToken(with, name string, role domain.Role) domain.APIToken {
	s.t.Helper()
	r := s.req("POST", "/api/v1/tokens", with, map[string]any{"kind": "service", "name": name, "role": role})
	if r.Status != 201 {
		s.t.Fatalf("creating token %s: %d %s", name, r.Status, r.Body)
	}
	var tk domain.APIToken
	r.decode(s.t, &tk)
	return tk
}

// tokenFamily creates, with the owner's token, a token "leaked" and one "unrelated"; with
// leaked, "child" and "second admin"; with second admin, "grandchild".
func (s *stack) tokenFamily() (leaked, child, second, grandchild, unrelated domain.APIToken) {
	s.t.Helper()
	leaked = s.createToken(s.owner, "leaked", domain.RoleAdmin)
	child = s.createToken(leaked.Token, "child", domain.RoleDeveloper)
	second = s.createToken(leaked.Token, "second admin", domain.RoleAdmin)
	grandchild = s.createToken(second.Token, "grandchild", domain.RoleViewer)
	unrelated = s.createToken(s.owner, "unrelated", domain.RoleDeveloper)
	return leaked, child, second, grandchild, unrelated
}

// auditComments returns the comments of the audit entries of an action by resource key (the
// newest one's for a key with several), and how many entries there are.
func (s *stack) auditComments(action string) (map[string]string, int) {
	s.t.Helper()
	var audit struct {
		Items []domain.AuditEntry `json:"items"`
	}
	s.must(200, "GET", "/api/v1/audit?action="+action, nil, &audit)
	comments := map[string]string{}
	for i := len(audit.Items) - 1; i >= 0; i-- {
		comments[audit.Items[i].ResourceKey] = audit.Items[i].Comment
	}
	return comments, len(audit.Items)
}

// memberWithMaker adds a member with the role, and returns their id, a sign-in token of theirs,
// and a personal token "maker" they created with it.
func (s *stack) memberWithMaker(email string, role domain.Role) (id, signIn string, maker domain.APIToken) {
	s.t.Helper()
	var m struct {
		ID string `json:"id"`
	}
	s.must(201, "POST", "/api/v1/members", map[string]any{"email": email, "role": role}, &m)
	signIn = personalToken(s.t, s, m.ID)
	r := s.req("POST", "/api/v1/tokens", signIn, map[string]any{"kind": "personal", "name": "maker"})
	if r.Status != 201 {
		s.t.Fatalf("%s creating a personal token: %d %s", role, r.Status, r.Body)
	}
	r.decode(s.t, &maker)
	return m.ID, signIn, maker
}

// TestRevokingWithCascadeRevokesTheTokensMadeWithIt: a leaked token must not live on in the
// tokens it minted. A plain revocation revokes the token alone (a token being rotated out must
// not take the services' tokens it once created with it); ?cascade=true revokes its whole line
// — what it made, and what those made, through tokens revoked before without cascade — and
// nothing else, each revocation audited.
func TestRevokingWithCascadeRevokesTheTokensMadeWithIt(t *testing.T) {
	s := newStack(t)
	leaked, child, second, grandchild, unrelated := s.tokenFamily()
	if child.CreatedByToken != leaked.ID || grandchild.CreatedByToken != second.ID {
		t.Fatalf("lineage not recorded: child made with %q (want %q), grandchild with %q (want %q)",
			child.CreatedByToken, leaked.ID, grandchild.CreatedByToken, second.ID)
	}
	works := func(want bool, tks ...domain.APIToken) {
		t.Helper()
		for _, tk := range tks {
			if r := s.req("GET", "/api/v1/me", tk.Token, nil); (r.Status == 200) != want {
				t.Errorf("token %s: %d, want it working: %v", tk.Name, r.Status, want)
			}
		}
	}
	works(true, leaked, child, second, grandchild, unrelated)

	s.must(204, "DELETE", "/api/v1/tokens/"+second.ID, nil, nil) // alone
	works(false, second)
	works(true, leaked, child, grandchild)
	if r := s.req("DELETE", "/api/v1/tokens/"+leaked.ID+"?cascade=yes", s.owner, nil); r.Status != 400 || r.errorBody(t).Field != "cascade" {
		t.Fatalf("cascade=yes: %d %s, want 400 naming cascade", r.Status, r.Body)
	}
	works(true, leaked)

	s.must(204, "DELETE", "/api/v1/tokens/"+leaked.ID+"?cascade=true", nil, nil)
	works(false, leaked, child, second, grandchild)
	works(true, unrelated)
	s.must(200, "GET", "/api/v1/me", nil, nil) // the owner's token, which made the leaked one

	var list struct {
		Items []domain.APIToken `json:"items"`
	}
	s.must(200, "GET", "/api/v1/tokens", nil, &list)
	revoked := map[string]bool{}
	for _, tk := range list.Items {
		revoked[tk.Name] = tk.RevokedAt != nil
	}
	for name, want := range map[string]bool{"leaked": true, "child": true, "second admin": true, "grandchild": true, "unrelated": false} {
		if revoked[name] != want {
			t.Errorf("token %s listed revoked=%v, want %v", name, revoked[name], want)
		}
	}
	comments, entries := s.auditComments("token.revoke")
	// second admin alone, then leaked with child and grandchild.
	if entries != 4 {
		t.Errorf("%d token.revoke audit entries, want 4: %+v", entries, comments)
	}
	if c, ok := comments["grandchild"]; !ok || !strings.Contains(c, second.ID) {
		t.Errorf("grandchild's revocation audited with comment %q (recorded %v), want it to name %s", c, ok, second.ID)
	}
}

// TestARevokedTokenCannotMintAnother: another replica still trusts a token for up to 2 s after it
// was revoked elsewhere (its verification cache), but a token it tries to create then would
// escape the revocation; the creation checks the token in the database and is refused.
func TestARevokedTokenCannotMintAnother(t *testing.T) {
	s := newStack(t)
	other := newStackWith(t, stackOptions{replicaOf: s})
	tk := s.createToken(s.owner, "soon revoked", domain.RoleAdmin)
	if r := other.req("GET", "/api/v1/me", tk.Token, nil); r.Status != 200 { // verified, and cached, there
		t.Fatalf("token on the other replica: %d %s", r.Status, r.Body)
	}
	s.must(204, "DELETE", "/api/v1/tokens/"+tk.ID, nil, nil)
	r := other.req("POST", "/api/v1/tokens", tk.Token, map[string]any{"kind": "service", "name": "escape", "role": "viewer"})
	if r.Status != 401 {
		t.Fatalf("a revoked token creating another on a replica that cached it: %d %s, want 401", r.Status, r.Body)
	}
}

// TestAdminsCannotRevokeOwnersTokensThroughTheirMaker: an owner-role service token made with a
// member's personal token while that member was an owner stays the owners' to revoke after the
// member is made an admin: an admin revoking the member's token with cascade is refused, naming
// it, and nothing is revoked.
func TestAdminsCannotRevokeOwnersTokensThroughTheirMaker(t *testing.T) {
	s := newStack(t)
	memberID, _, maker := s.memberWithMaker("second-owner@acme.test", domain.RoleOwner)
	ownerService := s.createToken(maker.Token, "owner service", domain.RoleOwner)
	s.must(200, "PATCH", "/api/v1/members/"+memberID, map[string]any{"role": "admin"}, nil)

	admin := s.serviceToken(domain.RoleAdmin, "", "")
	r := s.req("DELETE", "/api/v1/tokens/"+maker.ID+"?cascade=true", admin, nil)
	if r.Status != 403 || !strings.Contains(string(r.Body), ownerService.ID) {
		t.Fatalf("an admin revoking a token that made an owner's token: %d %s, want 403 naming %s", r.Status, r.Body, ownerService.ID)
	}
	for _, tk := range []domain.APIToken{maker, ownerService} {
		if r := s.req("GET", "/api/v1/me", tk.Token, nil); r.Status != 200 {
			t.Errorf("token %s after the refused revocation: %d, want 200 (nothing revoked)", tk.Name, r.Status)
		}
	}
	s.must(204, "DELETE", "/api/v1/tokens/"+maker.ID+"?cascade=true", nil, nil) // an owner may
	if r := s.req("GET", "/api/v1/me", ownerService.Token, nil); r.Status != 401 {
		t.Errorf("owner-role token after an owner revoked its maker: %d, want 401", r.Status)
	}
}

// TestDescendantsListWhatACascadeWouldRevoke: GET /tokens/{id}/descendants names, before a
// revocation, exactly the live tokens its cascade revokes — through tokens revoked before, and
// not the unrelated ones — to whoever may revoke the token: a member demoted from admin sees the
// service token made with their own token, which their token list no longer shows, and nobody
// else's.
func TestDescendantsListWhatACascadeWouldRevoke(t *testing.T) {
	s := newStack(t)
	leaked, child, second, grandchild, unrelated := s.tokenFamily()
	s.must(204, "DELETE", "/api/v1/tokens/"+second.ID, nil, nil) // alone

	names := func(path, with string) []string {
		t.Helper()
		r := s.req("GET", path, with, nil)
		if r.Status != 200 {
			t.Fatalf("GET %s: %d %s", path, r.Status, r.Body)
		}
		var out struct {
			Items []domain.APIToken `json:"items"`
		}
		r.decode(t, &out)
		var ns []string
		for _, tk := range out.Items {
			ns = append(ns, tk.Name)
		}
		return ns
	}
	got := names("/api/v1/tokens/"+leaked.ID+"/descendants", s.owner)
	if strings.Join(got, ",") != "child,grandchild" {
		t.Fatalf("descendants of the leaked token: %v, want [child grandchild] (live, the grandchild through a revoked token)", got)
	}
	s.must(204, "DELETE", "/api/v1/tokens/"+leaked.ID+"?cascade=true", nil, nil)
	for _, tk := range []domain.APIToken{child, grandchild} {
		if r := s.req("GET", "/api/v1/me", tk.Token, nil); r.Status != 401 {
			t.Errorf("listed token %s after the cascade: %d, want 401", tk.Name, r.Status)
		}
	}
	if r := s.req("GET", "/api/v1/me", unrelated.Token, nil); r.Status != 200 {
		t.Errorf("unlisted token %s after the cascade: %d, want 200", unrelated.Name, r.Status)
	}
	if got := names("/api/v1/tokens/"+leaked.ID+"/descendants", s.owner); len(got) != 0 {
		t.Errorf("descendants after the cascade: %v, want none live", got)
	}

	memberID, signIn, maker := s.memberWithMaker("once-admin@acme.test", domain.RoleAdmin)
	s.createToken(maker.Token, "made while admin", domain.RoleDeveloper)
	s.must(200, "PATCH", "/api/v1/members/"+memberID, map[string]any{"role": "developer"}, nil)
	if got := names("/api/v1/tokens", signIn); strings.Contains(strings.Join(got, ","), "made while admin") {
		t.Fatalf("a developer's token list shows a service token: %v", got)
	}
	if got := names("/api/v1/tokens/"+maker.ID+"/descendants", signIn); strings.Join(got, ",") != "made while admin" {
		t.Fatalf("descendants of the demoted member's own token: %v, want [made while admin]", got)
	}
	for path, want := range map[string]int{
		"/api/v1/tokens/" + unrelated.ID + "/descendants":                 403, // not theirs
		"/api/v1/tokens/00000000-0000-0000-0000-000000000000/descendants": 404,
		"/api/v1/tokens/not-an-id/descendants":                            404,
	} {
		if r := s.req("GET", path, signIn, nil); r.Status != want {
			t.Errorf("a developer's GET %s: %d %s, want %d", path, r.Status, r.Body, want)
		}
	}
}
