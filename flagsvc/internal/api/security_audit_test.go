package api_test

import (
	"strings"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
	"github.com/switchyard-io/switchyard/platform/testenv"
)

// secretOf is the secret part of an API token (what must never be shown or logged again).
func secretOf(token string) string { return token[strings.LastIndex(token, "_")+1:] }

// TestSecurityExpiredTokenNotServedFromCache: the verification cache never outlives the token;
// a token used just before it expires is refused right after, not up to the cache's TTL later.
func TestSecurityExpiredTokenNotServedFromCache(t *testing.T) {
	s := newStack(t)
	var tk domain.APIToken
	s.must(201, "POST", "/api/v1/tokens", map[string]any{"kind": "service", "name": "short", "role": "viewer", "expires_in": "1200ms"}, &tk)
	if r := s.req("GET", "/api/v1/me", tk.Token, nil); r.Status != 200 {
		t.Fatalf("fresh token: %d %s", r.Status, r.Body)
	}
	if tk.ExpiresAt == nil {
		t.Fatal("no expiry returned")
	}
	// The first use cached the verification; the cache entry would live until about
	// creation + 2s. Wait (polling the clock) until the token has expired, then use it.
	testenv.Eventually(t, 5*time.Second, "token expiry", func() bool { return time.Now().After(tk.ExpiresAt.Add(50 * time.Millisecond)) })
	if r := s.req("GET", "/api/v1/me", tk.Token, nil); r.Status != 401 {
		t.Fatalf("expired token still accepted (from the cache): %d %s", r.Status, r.Body)
	}
}

// TestSecuritySecretPastedAsIDIsNotFound: revoking "by" a full token or SDK key (a common
// mistake) or addressing a member by a malformed id is a 404 that does not echo the value;
// it used to reach Postgres as a uuid and come back as a 500, with the secret in the error log.
func TestSecuritySecretPastedAsIDIsNotFound(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	var tk domain.APIToken
	s.must(201, "POST", "/api/v1/tokens", map[string]any{"kind": "service", "name": "ci", "role": "viewer"}, &tk)
	var key domain.SDKKey
	keys := "/api/v1/projects/" + p + "/environments/production/sdk-keys"
	s.must(201, "POST", keys, map[string]any{"kind": "server"}, &key)
	for _, c := range []struct{ method, path, secret string }{
		{"DELETE", "/api/v1/tokens/" + tk.Token, tk.Token},
		{"DELETE", keys + "/" + key.Key, key.Key},
		{"POST", keys + "/" + key.Key + "/rotate", key.Key},
		{"PATCH", "/api/v1/members/" + tk.Token, tk.Token},
		{"DELETE", "/api/v1/members/not-a-user", ""},
	} {
		var body any
		if c.method == "PATCH" {
			body = map[string]any{"role": "viewer"}
		}
		r := s.req(c.method, c.path, s.owner, body)
		if r.Status != 404 {
			t.Fatalf("%s %s: %d, want 404: %s", c.method, c.path, r.Status, r.Body)
		}
		if c.secret != "" && strings.Contains(string(r.Body), secretOf(c.secret)) {
			t.Fatalf("%s %s: response echoes the secret: %s", c.method, c.path, r.Body)
		}
	}
	// Both secrets still work: nothing was revoked by mistake.
	if r := s.req("GET", "/api/v1/me", tk.Token, nil); r.Status != 200 {
		t.Fatalf("token: %d", r.Status)
	}
}

// TestSecurityNoSecretsInListsOrAudit: after creating, rotating and revoking tokens and SDK
// keys, the token list, the SDK key list (read by a viewer), the audit log and its exports
// show ids and prefixes only.
func TestSecurityNoSecretsInListsOrAudit(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	var svc, pat domain.APIToken
	s.must(201, "POST", "/api/v1/tokens", map[string]any{"kind": "service", "name": "ci", "role": "developer", "expires_in": "1h"}, &svc)
	s.must(201, "POST", "/api/v1/tokens", map[string]any{"kind": "personal", "name": "laptop"}, &pat)
	keys := "/api/v1/projects/" + p + "/environments/production/sdk-keys"
	var key, rotated domain.SDKKey
	s.must(201, "POST", keys, map[string]any{"kind": "server", "name": "backend"}, &key)
	s.must(201, "POST", keys+"/"+key.ID+"/rotate", map[string]any{"grace": "1h"}, &rotated)
	s.must(204, "DELETE", "/api/v1/tokens/"+svc.ID, nil, nil)
	s.must(204, "DELETE", keys+"/"+key.ID, nil, nil)
	secrets := map[string]string{"service token": secretOf(svc.Token), "personal token": secretOf(pat.Token),
		"server key": key.Key[len("sdk-srv-"):], "rotated server key": rotated.Key[len("sdk-srv-"):], "owner token": secretOf(s.owner)}
	for name, v := range secrets {
		if len(v) < 20 {
			t.Fatalf("%s: secret %q too short", name, v)
		}
	}
	viewer := s.serviceToken(domain.RoleViewer, "", "")
	reads := map[string]response{
		"tokens":            s.must(200, "GET", "/api/v1/tokens", nil, nil),
		"sdk keys (viewer)": s.req("GET", keys+"?include_revoked=true", viewer, nil),
		"audit":             s.must(200, "GET", "/api/v1/audit?limit=500", nil, nil),
		"audit json":        s.must(200, "GET", "/api/v1/audit/export?format=json", nil, nil),
		"audit csv":         s.must(200, "GET", "/api/v1/audit/export?format=csv", nil, nil),
		"project audit":     s.must(200, "GET", "/api/v1/audit?project="+p, nil, nil),
	}
	for what, r := range reads {
		if r.Status != 200 {
			t.Fatalf("%s: %d %s", what, r.Status, r.Body)
		}
		for name, v := range secrets {
			if strings.Contains(string(r.Body), v) {
				t.Fatalf("%s shows the %s in clear: %s", what, name, r.Body)
			}
		}
	}
	if !strings.Contains(string(reads["audit"].Body), "sdk_key.rotate") || !strings.Contains(string(reads["audit"].Body), "token.create") {
		t.Fatalf("audit lacks the token and key entries: %s", reads["audit"].Body)
	}
}

// TestSecurityScopedTokenStaysInItsProject: a project-scoped token reaches nothing of another
// project, nor organization-wide data (members, org audit, tokens).
func TestSecurityScopedTokenStaysInItsProject(t *testing.T) {
	s := newStack(t)
	p, other := s.project("shop"), s.project("other")
	s.boolFlag(other, "x")
	scoped := s.serviceToken(domain.RoleAdmin, p, "")
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v1/projects/" + other + "/flags"},
		{"GET", "/api/v1/projects/" + other + "/experiments"},
		{"GET", "/api/v1/projects/" + other + "/environments/production/sdk-keys"},
		{"POST", "/api/v1/projects/" + other + "/environments/production/sdk-keys"},
		{"GET", "/api/v1/audit?project=" + other},
		{"GET", "/api/v1/audit"},
		{"GET", "/api/v1/members"},
		{"GET", "/api/v1/tokens"},
		{"POST", "/api/v1/tokens"},
	} {
		var body any
		if c.method == "POST" {
			body = map[string]any{"kind": "server"}
			if c.path == "/api/v1/tokens" {
				body = map[string]any{"kind": "service", "name": "n", "role": "viewer"}
			}
		}
		if r := s.req(c.method, c.path, scoped, body); r.Status != 403 {
			t.Fatalf("scoped token: %s %s: %d %s", c.method, c.path, r.Status, r.Body)
		}
	}
	if r := s.req("GET", "/api/v1/projects/"+p+"/environments/production/sdk-keys", scoped, nil); r.Status != 200 {
		t.Fatalf("scoped token in its project: %d %s", r.Status, r.Body)
	}
}

// TestSecurityCrossOrgIDsAreNotFound: ids of another organization's tokens, members and SDK
// keys give 404 and change nothing.
func TestSecurityCrossOrgIDsAreNotFound(t *testing.T) {
	s := newStack(t)
	s.project("shop")
	res, err := s.app.Services.Orgs.Bootstrap(t.Context(), "globex", "Globex", "owner@globex.test", true)
	if err != nil {
		t.Fatal(err)
	}
	g := res.Token
	r := s.req("POST", "/api/v1/projects", g, map[string]any{"key": "shop", "name": "shop"})
	if r.Status != 201 {
		t.Fatalf("globex project: %d %s", r.Status, r.Body)
	}
	var gTok domain.APIToken
	s.req("POST", "/api/v1/tokens", g, map[string]any{"kind": "service", "name": "g", "role": "viewer"}).decode(t, &gTok)
	var gKey domain.SDKKey
	s.req("POST", "/api/v1/projects/shop/environments/production/sdk-keys", g, map[string]any{"kind": "server"}).decode(t, &gKey)
	var gMember domain.Member
	s.req("POST", "/api/v1/members", g, map[string]any{"email": "m@globex.test", "role": "viewer"}).decode(t, &gMember)
	if gTok.ID == "" || gKey.ID == "" || gMember.ID == "" {
		t.Fatalf("globex setup: %+v %+v %+v", gTok, gKey, gMember)
	}
	keys := "/api/v1/projects/shop/environments/production/sdk-keys/"
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"DELETE", "/api/v1/tokens/" + gTok.ID, nil},
		{"DELETE", keys + gKey.ID, nil},
		{"POST", keys + gKey.ID + "/rotate", nil},
		{"PATCH", "/api/v1/members/" + gMember.ID, map[string]any{"role": "admin"}},
		{"DELETE", "/api/v1/members/" + gMember.ID, nil},
		{"DELETE", "/api/v1/members/" + res.Owner.ID, nil},
	} {
		if r := s.req(c.method, c.path, s.owner, c.body); r.Status != 404 {
			t.Fatalf("acme owner: %s %s: %d, want 404: %s", c.method, c.path, r.Status, r.Body)
		}
	}
	if r := s.req("GET", "/api/v1/me", gTok.Token, nil); r.Status != 200 {
		t.Fatalf("globex token after acme's attempts: %d", r.Status)
	}
	var ms struct {
		Items []domain.Member `json:"items"`
	}
	s.req("GET", "/api/v1/members", g, nil).decode(t, &ms)
	if len(ms.Items) != 2 {
		t.Fatalf("globex members changed: %+v", ms.Items)
	}
}

// TestSecurityNoPrivilegeEscalation: nobody grants a role above their own or manages someone
// above them; developers create no service tokens; members do not promote themselves.
func TestSecurityNoPrivilegeEscalation(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	var dev, adm domain.Member
	s.must(201, "POST", "/api/v1/members", map[string]any{"email": "dev@acme.test", "role": "developer"}, &dev)
	s.must(201, "POST", "/api/v1/members", map[string]any{"email": "adm@acme.test", "role": "admin"}, &adm)
	devTok, admTok := personalToken(t, s, dev.ID), personalToken(t, s, adm.ID)
	var me struct {
		Actor struct{ ID string } `json:"actor"`
	}
	s.req("GET", "/api/v1/me", s.owner, nil).decode(t, &me)
	for _, c := range []struct {
		who, tok, method, path string
		body                   any
	}{
		{"developer", devTok, "POST", "/api/v1/tokens", map[string]any{"kind": "service", "name": "x", "role": "developer"}},
		{"developer", devTok, "POST", "/api/v1/tokens", map[string]any{"kind": "service", "name": "x", "role": "admin", "project": p}},
		{"developer", devTok, "PATCH", "/api/v1/members/" + dev.ID, map[string]any{"role": "admin"}},
		{"developer", devTok, "POST", "/api/v1/members", map[string]any{"email": "x@acme.test", "role": "owner"}},
		{"developer", devTok, "POST", "/api/v1/projects/" + p + "/environments/production/sdk-keys", map[string]any{"kind": "server"}},
		{"admin", admTok, "PATCH", "/api/v1/members/" + adm.ID, map[string]any{"role": "owner"}},
		{"admin", admTok, "POST", "/api/v1/members", map[string]any{"email": "o@acme.test", "role": "owner"}},
		{"admin", admTok, "POST", "/api/v1/tokens", map[string]any{"kind": "service", "name": "o", "role": "owner"}},
		{"admin", admTok, "PATCH", "/api/v1/members/" + me.Actor.ID, map[string]any{"role": "viewer"}},
		{"admin", admTok, "DELETE", "/api/v1/members/" + me.Actor.ID, nil},
	} {
		if r := s.req(c.method, c.path, c.tok, c.body); r.Status != 403 {
			t.Fatalf("%s: %s %s: %d, want 403: %s", c.who, c.method, c.path, r.Status, r.Body)
		}
	}
}

// TestTwoOwnersDemotingEachOtherKeepOne: the last-owner rule holds when two owners are demoted
// at the same moment; both demotions used to count two owners, commit, and leave none.
func TestTwoOwnersDemotingEachOtherKeepOne(t *testing.T) {
	s := newStack(t)
	var me struct {
		Actor struct {
			ID string `json:"id"`
		} `json:"actor"`
	}
	s.must(200, "GET", "/api/v1/me", nil, &me)
	var second domain.Member
	s.must(201, "POST", "/api/v1/members", map[string]any{"email": "second-owner@acme.test", "role": "owner"}, &second)
	waitFor, release := holdAuditInserts(t, s)
	done := make(chan []int)
	go func() {
		done <- concurrently(s, "PATCH", []string{"/api/v1/members/" + second.ID, "/api/v1/members/" + me.Actor.ID},
			[]any{map[string]any{"role": "admin"}, map[string]any{"role": "admin"}})
	}()
	waitFor(2)
	release()
	statuses := <-done
	if !(statuses[0] == 200 && statuses[1] == 412 || statuses[0] == 412 && statuses[1] == 200) {
		t.Fatalf("statuses %v, want one demotion and one 412 (the last owner)", statuses)
	}
	var members struct {
		Items []domain.Member `json:"items"`
	}
	s.must(200, "GET", "/api/v1/members", nil, &members)
	owners := 0
	for _, m := range members.Items {
		if m.Role == domain.RoleOwner {
			owners++
		}
	}
	if owners != 1 {
		t.Fatalf("%d owners left, want 1", owners)
	}
}

// TestAdminsCannotRevokeOwnersTokens: as with members, only owners manage what belongs to
// owners — an admin revokes a developer's service token, not an owner's personal token or an
// owner-role service token.
func TestAdminsCannotRevokeOwnersTokens(t *testing.T) {
	s := newStack(t)
	admin := s.serviceToken(domain.RoleAdmin, "", "")
	s.serviceToken(domain.RoleOwner, "", "")
	s.serviceToken(domain.RoleDeveloper, "", "")
	var list struct {
		Items []domain.APIToken `json:"items"`
	}
	s.must(200, "GET", "/api/v1/tokens", nil, &list)
	var ownerPersonal, ownerService, developer string
	for _, tk := range list.Items {
		switch {
		case tk.Kind == "personal":
			ownerPersonal = tk.ID
		case tk.Role == domain.RoleOwner:
			ownerService = tk.ID
		case tk.Role == domain.RoleDeveloper:
			developer = tk.ID
		}
	}
	if ownerPersonal == "" || ownerService == "" || developer == "" {
		t.Fatalf("tokens: %+v", list.Items)
	}
	for _, id := range []string{ownerPersonal, ownerService} {
		if r := s.req("DELETE", "/api/v1/tokens/"+id, admin, nil); r.Status != 403 {
			t.Fatalf("an admin revoking an owner's token %s: %d %s", id, r.Status, r.Body)
		}
	}
	if r := s.req("DELETE", "/api/v1/tokens/"+developer, admin, nil); r.Status != 204 {
		t.Fatalf("an admin revoking a developer's token: %d %s", r.Status, r.Body)
	}
	s.must(200, "GET", "/api/v1/me", nil, nil) // the owner's personal token still works
}
