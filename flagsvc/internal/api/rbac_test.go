package api_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
)

// endpointCase prepares (as the owner) what one call needs and returns the call.
type endpointCase struct {
	name string
	// need is the least role allowed; envLevel means developers are refused in critical environments.
	need     domain.Role
	envLevel bool
	call     func(s *stack, p, env, id string) (method, path string, body any)
}

func mutatingEndpoints() []endpointCase {
	flagBody := func(key string) map[string]any {
		return map[string]any{"key": key, "kind": "boolean", "variations": []any{map[string]any{"key": "on", "value": true}, map[string]any{"key": "off", "value": false}}}
	}
	prepFlag := func(s *stack, p, id string) string { s.boolFlag(p, "f-"+id); return "f-" + id }
	prepSegment := func(s *stack, p, env, id string) string {
		s.must(201, "POST", "/api/v1/projects/"+p+"/environments/"+env+"/segments", map[string]any{"key": "s-" + id}, nil)
		return "s-" + id
	}
	prepKey := func(s *stack, p, env string) string {
		var k domain.SDKKey
		s.must(201, "POST", "/api/v1/projects/"+p+"/environments/"+env+"/sdk-keys", map[string]any{"kind": "server"}, &k)
		return k.ID
	}
	prepMember := func(s *stack, id string) string {
		var m domain.Member
		s.must(201, "POST", "/api/v1/members", map[string]any{"email": "m-" + id + "@acme.test", "role": "viewer"}, &m)
		return m.ID
	}
	prepProject := func(s *stack, id string) string { return s.project("p-" + id) }
	envPath := func(p, env string) string { return "/api/v1/projects/" + p + "/environments/" + env }
	prepMetric := func(s *stack, p, id string) string {
		s.must(201, "POST", "/api/v1/projects/"+p+"/metrics", map[string]any{"key": "m-" + id, "kind": "proportion", "event_key": "purchase"}, nil)
		return "m-" + id
	}
	prepExperiment := func(s *stack, p, env, id string, start bool) string {
		f := prepFlag(s, p, "x"+id)
		m := prepMetric(s, p, "x"+id)
		s.must(201, "POST", "/api/v1/projects/"+p+"/experiments", map[string]any{"key": "x-" + id, "environment": env, "flag": f,
			"control": "off", "variations": []any{map[string]any{"variation": "off", "weight": 50000}, map[string]any{"variation": "on", "weight": 50000}},
			"metrics": map[string]any{"primary": []string{m}, "guardrails": []any{map[string]any{"metric": m, "tolerance": 0.05, "action": "rollback"}}}}, nil)
		if start {
			s.must(200, "POST", "/api/v1/projects/"+p+"/experiments/x-"+id+"/start", nil, nil)
		}
		return "x-" + id
	}
	prepGuardrail := func(s *stack, p, env, id string) string {
		f := prepFlag(s, p, "g"+id)
		s.rollout(p, f, env)
		m := prepMetric(s, p, "g"+id)
		var g domain.Guardrail
		s.must(201, "POST", envPath(p, env)+"/guardrails", map[string]any{"flag": f, "metric": m, "tolerance": 0.02, "action": "rollback",
			"control": "off", "treatments": []string{"on"}}, &g)
		return g.ID
	}
	return []endpointCase{
		{"create metric", domain.RoleDeveloper, false, func(s *stack, p, env, id string) (string, string, any) {
			return "POST", "/api/v1/projects/" + p + "/metrics", map[string]any{"key": "n-" + id, "kind": "count", "event_key": "click"}
		}},
		{"update metric", domain.RoleDeveloper, false, func(s *stack, p, env, id string) (string, string, any) {
			return "PUT", "/api/v1/projects/" + p + "/metrics/" + prepMetric(s, p, id), map[string]any{"kind": "proportion", "event_key": "purchase", "name": "Edited"}
		}},
		{"archive metric", domain.RoleProjectAdmin, false, func(s *stack, p, env, id string) (string, string, any) {
			return "DELETE", "/api/v1/projects/" + p + "/metrics/" + prepMetric(s, p, id), nil
		}},
		{"create experiment", domain.RoleDeveloper, true, func(s *stack, p, env, id string) (string, string, any) {
			f, m := prepFlag(s, p, id), prepMetric(s, p, id)
			return "POST", "/api/v1/projects/" + p + "/experiments", map[string]any{"key": "c-" + id, "environment": env, "flag": f, "control": "off",
				"variations": []any{map[string]any{"variation": "off", "weight": 50000}, map[string]any{"variation": "on", "weight": 50000}},
				"metrics":    map[string]any{"primary": []string{m}}}
		}},
		{"edit experiment", domain.RoleDeveloper, true, func(s *stack, p, env, id string) (string, string, any) {
			return "PATCH", "/api/v1/projects/" + p + "/experiments/" + prepExperiment(s, p, env, id, false), map[string]any{"hypothesis": "h"}
		}},
		{"delete experiment", domain.RoleDeveloper, true, func(s *stack, p, env, id string) (string, string, any) {
			return "DELETE", "/api/v1/projects/" + p + "/experiments/" + prepExperiment(s, p, env, id, false), nil
		}},
		{"start experiment", domain.RoleDeveloper, true, func(s *stack, p, env, id string) (string, string, any) {
			return "POST", "/api/v1/projects/" + p + "/experiments/" + prepExperiment(s, p, env, id, false) + "/start", nil
		}},
		{"stop experiment", domain.RoleDeveloper, true, func(s *stack, p, env, id string) (string, string, any) {
			return "POST", "/api/v1/projects/" + p + "/experiments/" + prepExperiment(s, p, env, id, true) + "/stop", nil
		}},
		{"conclude experiment", domain.RoleDeveloper, true, func(s *stack, p, env, id string) (string, string, any) {
			return "POST", "/api/v1/projects/" + p + "/experiments/" + prepExperiment(s, p, env, id, true) + "/conclude", map[string]any{"outcome": "ship", "variation": "on", "rationale": "won"}
		}},
		{"create guardrail", domain.RoleDeveloper, true, func(s *stack, p, env, id string) (string, string, any) {
			f, m := prepFlag(s, p, id), prepMetric(s, p, id)
			s.rollout(p, f, env)
			return "POST", envPath(p, env) + "/guardrails", map[string]any{"flag": f, "metric": m, "tolerance": 0.02, "control": "off", "treatments": []string{"on"}}
		}},
		{"disable guardrail", domain.RoleDeveloper, true, func(s *stack, p, env, id string) (string, string, any) {
			return "DELETE", envPath(p, env) + "/guardrails/" + prepGuardrail(s, p, env, id), nil
		}},
		{"report guardrail breach", domain.RoleDeveloper, true, func(s *stack, p, env, id string) (string, string, any) {
			return "POST", envPath(p, env) + "/guardrails/" + prepGuardrail(s, p, env, id) + "/breach", map[string]any{"effect": 0.05, "interval": []float64{0.03, 0.07}, "p_value": 0.001}
		}},
		{"add member", domain.RoleAdmin, false, func(s *stack, p, env, id string) (string, string, any) {
			return "POST", "/api/v1/members", map[string]any{"email": "n-" + id + "@acme.test", "role": "developer"}
		}},
		{"change member role", domain.RoleAdmin, false, func(s *stack, p, env, id string) (string, string, any) {
			return "PATCH", "/api/v1/members/" + prepMember(s, id), map[string]any{"role": "developer"}
		}},
		{"remove member", domain.RoleAdmin, false, func(s *stack, p, env, id string) (string, string, any) {
			return "DELETE", "/api/v1/members/" + prepMember(s, id), nil
		}},
		{"create service token", domain.RoleAdmin, false, func(s *stack, p, env, id string) (string, string, any) {
			return "POST", "/api/v1/tokens", map[string]any{"kind": "service", "name": "ci-" + id, "role": "viewer"}
		}},
		{"revoke someone's token", domain.RoleAdmin, false, func(s *stack, p, env, id string) (string, string, any) {
			var tk domain.APIToken
			s.must(201, "POST", "/api/v1/tokens", map[string]any{"kind": "service", "name": "x-" + id, "role": "viewer"}, &tk)
			return "DELETE", "/api/v1/tokens/" + tk.ID, nil
		}},
		{"create project", domain.RoleAdmin, false, func(s *stack, p, env, id string) (string, string, any) {
			return "POST", "/api/v1/projects", map[string]any{"key": "new-" + id, "name": "New"}
		}},
		{"delete project", domain.RoleAdmin, false, func(s *stack, p, env, id string) (string, string, any) {
			return "DELETE", "/api/v1/projects/" + prepProject(s, id), nil
		}},
		{"update project", domain.RoleProjectAdmin, false, func(s *stack, p, env, id string) (string, string, any) {
			return "PATCH", "/api/v1/projects/" + p, map[string]any{"name": "Renamed " + id}
		}},
		{"create environment", domain.RoleProjectAdmin, false, func(s *stack, p, env, id string) (string, string, any) {
			return "POST", "/api/v1/projects/" + p + "/environments", map[string]any{"key": "e-" + id, "name": "E"}
		}},
		{"update environment", domain.RoleProjectAdmin, false, func(s *stack, p, env, id string) (string, string, any) {
			return "PATCH", envPath(p, env), map[string]any{"color": "#123456"}
		}},
		{"clone environment", domain.RoleProjectAdmin, false, func(s *stack, p, env, id string) (string, string, any) {
			return "POST", envPath(p, env) + "/clone", map[string]any{"key": "c-" + id, "name": "Clone"}
		}},
		{"delete environment", domain.RoleProjectAdmin, false, func(s *stack, p, env, id string) (string, string, any) {
			s.must(201, "POST", "/api/v1/projects/"+p+"/environments", map[string]any{"key": "d-" + id, "name": "D"}, nil)
			return "DELETE", envPath(p, "d-"+id), nil
		}},
		{"lock environment", domain.RoleProjectAdmin, false, func(s *stack, p, env, id string) (string, string, any) {
			s.must(201, "POST", "/api/v1/projects/"+p+"/environments", map[string]any{"key": "l-" + id, "name": "L"}, nil)
			return "PUT", envPath(p, "l-"+id) + "/lock", map[string]any{"locked": true, "reason": "freeze"}
		}},
		{"create SDK key", domain.RoleProjectAdmin, false, func(s *stack, p, env, id string) (string, string, any) {
			return "POST", envPath(p, env) + "/sdk-keys", map[string]any{"kind": "client"}
		}},
		{"rotate SDK key", domain.RoleProjectAdmin, false, func(s *stack, p, env, id string) (string, string, any) {
			return "POST", envPath(p, env) + "/sdk-keys/" + prepKey(s, p, env) + "/rotate", map[string]any{"grace": "1h"}
		}},
		{"revoke SDK key", domain.RoleProjectAdmin, false, func(s *stack, p, env, id string) (string, string, any) {
			return "DELETE", envPath(p, env) + "/sdk-keys/" + prepKey(s, p, env), nil
		}},
		{"create flag", domain.RoleDeveloper, false, func(s *stack, p, env, id string) (string, string, any) {
			return "POST", "/api/v1/projects/" + p + "/flags", flagBody("n-" + id)
		}},
		{"update flag", domain.RoleDeveloper, false, func(s *stack, p, env, id string) (string, string, any) {
			return "PATCH", "/api/v1/projects/" + p + "/flags/" + prepFlag(s, p, id), map[string]any{"description": "edited"}
		}},
		{"bulk tag flags", domain.RoleDeveloper, false, func(s *stack, p, env, id string) (string, string, any) {
			return "POST", "/api/v1/projects/" + p + "/flags/bulk", map[string]any{"action": "tag", "keys": []string{prepFlag(s, p, id)}, "tags": []string{"x"}}
		}},
		{"delete flag", domain.RoleProjectAdmin, false, func(s *stack, p, env, id string) (string, string, any) {
			return "DELETE", "/api/v1/projects/" + p + "/flags/" + prepFlag(s, p, id), nil
		}},
		{"bulk delete flags", domain.RoleProjectAdmin, false, func(s *stack, p, env, id string) (string, string, any) {
			return "POST", "/api/v1/projects/" + p + "/flags/bulk", map[string]any{"action": "delete", "keys": []string{prepFlag(s, p, id)}}
		}},
		{"replace configuration", domain.RoleDeveloper, true, func(s *stack, p, env, id string) (string, string, any) {
			return "PUT", configPath(p, prepFlag(s, p, id), env), map[string]any{"on": true, "fallthrough": map[string]any{"variation": "on"}}
		}},
		{"patch configuration", domain.RoleDeveloper, true, func(s *stack, p, env, id string) (string, string, any) {
			return "PATCH", configPath(p, prepFlag(s, p, id), env), map[string]any{"on": true}
		}},
		{"toggle", domain.RoleDeveloper, true, func(s *stack, p, env, id string) (string, string, any) {
			return "POST", configPath(p, prepFlag(s, p, id), env) + "/toggle", map[string]any{"on": true}
		}},
		{"kill", domain.RoleDeveloper, true, func(s *stack, p, env, id string) (string, string, any) {
			f := prepFlag(s, p, id)
			s.must(200, "POST", configPath(p, f, env)+"/toggle", map[string]any{"on": true}, nil)
			return "POST", configPath(p, f, env) + "/kill", map[string]any{"reason": "incident"}
		}},
		{"rollback", domain.RoleDeveloper, true, func(s *stack, p, env, id string) (string, string, any) {
			f := prepFlag(s, p, id)
			s.must(200, "POST", configPath(p, f, env)+"/toggle", map[string]any{"on": true}, nil)
			return "POST", configPath(p, f, env) + "/rollback", map[string]any{"to_version": 1}
		}},
		{"create segment", domain.RoleDeveloper, true, func(s *stack, p, env, id string) (string, string, any) {
			return "POST", envPath(p, env) + "/segments", map[string]any{"key": "n-" + id}
		}},
		{"update segment", domain.RoleDeveloper, true, func(s *stack, p, env, id string) (string, string, any) {
			return "PUT", envPath(p, env) + "/segments/" + prepSegment(s, p, env, id), map[string]any{"name": "Edited"}
		}},
		{"delete segment", domain.RoleDeveloper, true, func(s *stack, p, env, id string) (string, string, any) {
			return "DELETE", envPath(p, env) + "/segments/" + prepSegment(s, p, env, id), nil
		}},
		{"import segment keys", domain.RoleDeveloper, true, func(s *stack, p, env, id string) (string, string, any) {
			return "POST", envPath(p, env) + "/segments/" + prepSegment(s, p, env, id) + "/import", "alice\nbob\n"
		}},
	}
}

// TestRBACMatrix runs every mutating endpoint as every role, in a critical and a non-critical
// environment, and checks exactly the roles allowed succeed and the rest get 403.
func TestRBACMatrix(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	tokens := map[domain.Role]string{}
	for _, r := range domain.Roles {
		tokens[r] = s.serviceToken(r, "", "")
	}
	n := 0
	covered := map[string]bool{}
	for _, ep := range mutatingEndpoints() {
		envs := []string{"development"}
		if ep.envLevel {
			envs = append(envs, "production")
		}
		for _, env := range envs {
			for _, role := range domain.Roles {
				n++
				id := fmt.Sprint(n)
				t.Run(fmt.Sprintf("%s/%s/%s", ep.name, env, role), func(t *testing.T) {
					method, path, body := ep.call(s, p, env, id)
					covered[routeOf(s, method, path)] = true
					allowed := role.AtLeast(ep.need)
					if ep.envLevel && env == "production" && !role.AtLeast(domain.RoleProjectAdmin) {
						allowed = false
					}
					r := s.req(method, path, tokens[role], body)
					if allowed && (r.Status < 200 || r.Status > 299) {
						t.Fatalf("%s may %s %s: got %d %s", role, method, path, r.Status, r.Body)
					}
					if !allowed {
						if r.Status != 403 || r.errorBody(t).Code != "permission_denied" {
							t.Fatalf("%s must not %s %s: got %d %s", role, method, path, r.Status, r.Body)
						}
						// The refusal names what was refused, not always "flags".
						if msg, what := r.errorBody(t).Message, refusedThing(ep.name); !strings.Contains(msg, what) {
							t.Fatalf("%s refused %s %s: %q does not name %q", role, method, path, msg, what)
						}
					}
				})
			}
		}
	}
	for _, r := range s.app.HTTP.GetRoutes(true) {
		if r.Method == "GET" || r.Method == "HEAD" || !strings.HasPrefix(r.Path, "/api/v1/") {
			continue
		}
		if !covered[r.Method+" "+r.Path] {
			t.Errorf("mutating route %s %s is not in the RBAC matrix", r.Method, r.Path)
		}
	}
}

// refusedThing is what a refusal of the endpoint case must name: its resource, as the case's
// name says it; configuration changes are changes of flags.
func refusedThing(caseName string) string {
	for _, w := range [][2]string{{"metric", "metrics"}, {"experiment", "experiments"}, {"guardrail", "guardrails"},
		{"member", "members"}, {"token", "tokens"}, {"project", "project"}, {"environment", "environments"},
		{"SDK key", "SDK keys"}, {"segment", "segments"}} {
		if strings.Contains(caseName, w[0]) {
			return w[1]
		}
	}
	return "flags"
}

// routeOf finds the registered route pattern a concrete path matches.
func routeOf(s *stack, method, path string) string {
	for _, r := range s.app.HTTP.GetRoutes(true) {
		if r.Method != method {
			continue
		}
		pat := regexp.MustCompile(`:[a-z]+`).ReplaceAllString(regexp.QuoteMeta(r.Path), `[^/]+`)
		if regexp.MustCompile("^" + pat + "$").MatchString(path) {
			return method + " " + r.Path
		}
	}
	return method + " " + path
}

// TestReadAccessAndScopes: every role reads; scoped tokens stay in their project and
// environment; personal tokens act with their user's membership; bad tokens get 401.
func TestReadAccessAndScopes(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	other := s.project("other")
	s.boolFlag(p, "checkout")
	s.boolFlag(other, "x")
	for _, r := range domain.Roles {
		tok := s.serviceToken(r, "", "")
		for _, path := range []string{"/api/v1/me", "/api/v1/projects", "/api/v1/projects/" + p + "/flags", configPath(p, "checkout", "production") + "/history"} {
			if res := s.req("GET", path, tok, nil); res.Status != 200 {
				t.Fatalf("%s reading %s: %d %s", r, path, res.Status, res.Body)
			}
		}
	}
	scoped := s.serviceToken(domain.RoleAdmin, p, "staging")
	if r := s.req("POST", configPath(p, "checkout", "staging")+"/toggle", scoped, map[string]any{"on": true}); r.Status != 200 {
		t.Fatalf("env-scoped token in its environment: %d %s", r.Status, r.Body)
	}
	for _, path := range []string{configPath(p, "checkout", "development") + "/toggle", configPath(other, "x", "staging") + "/toggle"} {
		if r := s.req("POST", path, scoped, map[string]any{"on": true}); r.Status != 403 {
			t.Fatalf("env-scoped token outside its scope (%s): %d %s", path, r.Status, r.Body)
		}
	}
	var projects struct {
		Items []struct{ Key string } `json:"items"`
	}
	s.must(200, "GET", "/api/v1/projects", nil, nil)
	if r := s.req("GET", "/api/v1/projects", scoped, nil); r.Status != 200 {
		t.Fatal(r.Status)
	} else {
		r.decode(t, &projects)
		if len(projects.Items) != 1 || projects.Items[0].Key != p {
			t.Fatalf("scoped token sees %+v", projects.Items)
		}
	}

	// A developer user with a personal token: edits development, not production.
	var m domain.Member
	s.must(201, "POST", "/api/v1/members", map[string]any{"email": "dev@acme.test", "role": "developer"}, &m)
	var pat domain.APIToken
	// Personal tokens are created by their user; bootstrap the developer's first token directly.
	devToken := personalToken(t, s, m.ID)
	if r := s.req("POST", "/api/v1/tokens", devToken, map[string]any{"kind": "personal", "name": "laptop"}); r.Status != 201 {
		t.Fatalf("developer creating a personal token: %d %s", r.Status, r.Body)
	} else {
		r.decode(t, &pat)
	}
	if r := s.req("POST", configPath(p, "checkout", "development")+"/toggle", pat.Token, map[string]any{"on": true}); r.Status != 200 {
		t.Fatalf("developer in development: %d %s", r.Status, r.Body)
	}
	r := s.req("POST", configPath(p, "checkout", "production")+"/toggle", pat.Token, map[string]any{"on": true})
	if r.Status != 403 || !strings.Contains(r.errorBody(t).Message, "critical") {
		t.Fatalf("developer in production: %d %s", r.Status, r.Body)
	}
	// Promotion takes effect at once; removal revokes access.
	s.must(200, "PATCH", "/api/v1/members/"+m.ID, map[string]any{"role": "project_admin"}, nil)
	if r := s.req("POST", configPath(p, "checkout", "production")+"/toggle", pat.Token, map[string]any{"on": true}); r.Status != 200 {
		t.Fatalf("promoted user in production: %d %s", r.Status, r.Body)
	}
	s.must(204, "DELETE", "/api/v1/members/"+m.ID, nil, nil)
	if r := s.req("GET", "/api/v1/me", pat.Token, nil); r.Status != 401 {
		t.Fatalf("removed member's token: %d", r.Status)
	}

	for name, tok := range map[string]string{"none": "", "garbage": "hello", "wrong secret": otherLastChar(s.owner)} {
		if r := s.req("GET", "/api/v1/me", tok, nil); r.Status != 401 || r.errorBody(t).Code != "unauthenticated" {
			t.Fatalf("%s token: %d %s", name, r.Status, r.Body)
		}
	}
	var tk domain.APIToken
	s.must(201, "POST", "/api/v1/tokens", map[string]any{"kind": "service", "name": "short", "role": "viewer"}, &tk)
	s.must(204, "DELETE", "/api/v1/tokens/"+tk.ID, nil, nil)
	if r := s.req("GET", "/api/v1/me", tk.Token, nil); r.Status != 401 {
		t.Fatalf("revoked token: %d", r.Status)
	}
	r = s.req("POST", "/api/v1/tokens", s.serviceToken(domain.RoleAdmin, "", ""), map[string]any{"kind": "service", "name": "escalate", "role": "owner"})
	if r.Status != 403 {
		t.Fatalf("admin granting owner: %d %s", r.Status, r.Body)
	}
}

// TestSecretsAreHashedAtRest: no token or server key appears in the database in clear.
func TestSecretsAreHashedAtRest(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	var tk domain.APIToken
	s.must(201, "POST", "/api/v1/tokens", map[string]any{"kind": "service", "name": "ci", "role": "developer", "expires_in": "1h"}, &tk)
	var key domain.SDKKey
	s.must(201, "POST", "/api/v1/projects/"+p+"/environments/production/sdk-keys", map[string]any{"kind": "server"}, &key)
	if !strings.HasPrefix(key.Key, "sdk-srv-") || !strings.HasPrefix(tk.Token, "sy_svc_") {
		t.Fatalf("secrets not returned at creation: %q %q", key.Key, tk.Token)
	}
	var dump string
	if err := s.app.Store.Pool.QueryRow(t.Context(), `SELECT concat((SELECT string_agg(t::text, ',') FROM api_tokens t),
		(SELECT string_agg(k::text, ',') FROM sdk_keys k), (SELECT string_agg(a::text, ',') FROM audit_log a))`).Scan(&dump); err != nil {
		t.Fatal(err)
	}
	secret := tk.Token[strings.LastIndex(tk.Token, "_")+1:]
	for name, v := range map[string]string{"API token secret": secret, "server key": key.Key, "owner token": s.owner[strings.LastIndex(s.owner, "_")+1:]} {
		if strings.Contains(dump, v) {
			t.Fatalf("%s stored in clear", name)
		}
	}
	var listed struct {
		Items []domain.SDKKey `json:"items"`
	}
	s.must(200, "GET", "/api/v1/projects/"+p+"/environments/production/sdk-keys", nil, &listed)
	if len(listed.Items) != 1 || listed.Items[0].Key != "" || listed.Items[0].Prefix == "" {
		t.Fatalf("listing shows a server key: %+v", listed.Items)
	}
}

// otherLastChar returns tok with its last character replaced by a different one: a fixed
// replacement would leave a token that already ends in it unchanged (one run in 62).
func otherLastChar(tok string) string {
	last := byte('x')
	if tok[len(tok)-1] == last {
		last = 'y'
	}
	return tok[:len(tok)-1] + string(last)
}
