package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/jobs/internal/settings"
	"github.com/switchyard-io/switchyard/jobs/internal/stacktest"
	"github.com/switchyard-io/switchyard/jobs/internal/stale"
)

// TestEveryEndpointChecksTheCallersRights: scheduling follows the flag service's roles —
// developers in non-critical environments, project admins in critical ones, service tokens in
// their scope — and every route needs a valid token.
func TestEveryEndpointChecksTheCallersRights(t *testing.T) {
	h := newHarness(t)
	h.fs.Owner.Must(t, "POST", "/api/v1/projects", map[string]any{"key": "other", "name": "Other"}, nil)
	tokens := map[string]string{
		"owner":          h.fs.Owner.Token,
		"project_admin":  h.fs.ServiceToken(t, "pa", "project_admin", "", ""),
		"developer":      h.fs.ServiceToken(t, "dev", "developer", "", ""),
		"viewer":         h.fs.ServiceToken(t, "viewer", "viewer", "", ""),
		"other project":  h.fs.ServiceToken(t, "scoped", "admin", "other", ""),
		"staging only":   h.fs.ServiceToken(t, "stg", "admin", "shop", "staging"),
		"invalid":        "sy_svc_00000000_nottherightsecret",
		"no token":       "",
		"production dev": h.fs.ServiceToken(t, "proddev", "developer", "shop", "production"),
	}
	at := h.clock.now().Add(time.Hour)
	schedule := func(env string) map[string]any {
		return map[string]any{"steps": []any{map[string]any{"at": at, "action": map[string]any{"type": "toggle", "on": true}}}}
	}
	cases := []struct {
		who, method, path string
		body              any
		want              int
	}{
		{"owner", "POST", fmt.Sprintf(changes, "production"), schedule("production"), 201},
		{"project_admin", "POST", fmt.Sprintf(changes, "production"), schedule("production"), 201},
		{"developer", "POST", fmt.Sprintf(changes, "staging"), schedule("staging"), 201},
		{"developer", "POST", fmt.Sprintf(changes, "production"), schedule("production"), 403},
		{"production dev", "POST", fmt.Sprintf(changes, "production"), schedule("production"), 403},
		{"viewer", "POST", fmt.Sprintf(changes, "staging"), schedule("staging"), 403},
		{"other project", "POST", fmt.Sprintf(changes, "staging"), schedule("staging"), 403},
		{"staging only", "POST", fmt.Sprintf(changes, "staging"), schedule("staging"), 201},
		{"staging only", "POST", fmt.Sprintf(changes, "development"), schedule("development"), 403},
		{"invalid", "POST", fmt.Sprintf(changes, "staging"), schedule("staging"), 401},
		{"no token", "POST", fmt.Sprintf(changes, "staging"), schedule("staging"), 401},
		{"viewer", "GET", "/v1/projects/shop/scheduled-changes", nil, 200},
		{"other project", "GET", "/v1/projects/shop/scheduled-changes", nil, 403},
		{"no token", "GET", "/v1/projects/shop/stale-flags", nil, 401},
		{"viewer", "PUT", "/v1/projects/shop/settings", map[string]any{"slack_channel": "C1"}, 403},
		{"developer", "PUT", "/v1/projects/shop/settings", map[string]any{"slack_channel": "C1"}, 403},
		{"project_admin", "PUT", "/v1/projects/shop/settings", map[string]any{"slack_channel": "C-SHOP"}, 200},
		{"viewer", "PUT", "/v1/projects/shop/flags/checkout/stale-settings", map[string]any{"ignore": true}, 403},
		{"developer", "PUT", "/v1/projects/shop/flags/checkout/stale-settings", map[string]any{"ignore": true}, 200},
		{"viewer", "POST", "/v1/projects/shop/stale-flags/checkout/archive", nil, 403},
		{"viewer", "GET", "/v1/projects/shop/alerts", nil, 200},
		{"viewer", "GET", "/v1/projects/shop/breaches", nil, 200},
		{"no token", "GET", "/v1/openapi.json", nil, 200},
	}
	for _, tc := range cases {
		t.Run(tc.who+" "+tc.method+" "+tc.path, func(t *testing.T) {
			r := h.call(t, tokens[tc.who], tc.method, tc.path, tc.body)
			if r.Status != tc.want {
				t.Fatalf("%d %s, want %d", r.Status, r.Body, tc.want)
			}
			if r.Status >= 400 {
				var e struct {
					Error struct{ Code, Message string } `json:"error"`
				}
				if err := json.Unmarshal(r.Body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
					t.Fatalf("error body: %s", r.Body)
				}
			}
		})
	}
}

// TestScheduleRejectsBadInput: malformed and invalid requests name the field.
func TestScheduleRejectsBadInput(t *testing.T) {
	h := newHarness(t)
	at := h.clock.now().Add(time.Hour)
	toggle := map[string]any{"type": "toggle", "on": true}
	cases := []struct {
		name  string
		path  string
		body  any
		want  int
		field string
	}{
		{"not JSON", fmt.Sprintf(changes, "staging"), `{"steps": [`, 400, ""},
		{"unknown field", fmt.Sprintf(changes, "staging"), map[string]any{"steps": []any{map[string]any{"at": at, "action": toggle}}, "when": "soon"}, 400, "when"},
		{"no steps", fmt.Sprintf(changes, "staging"), map[string]any{}, 422, "steps"},
		{"in the past", fmt.Sprintf(changes, "staging"), map[string]any{"steps": []any{map[string]any{"at": at.Add(-3 * time.Hour), "action": toggle}}}, 422, "steps[0].at"},
		{"out of order", fmt.Sprintf(changes, "staging"), map[string]any{"steps": []any{map[string]any{"at": at, "action": toggle},
			map[string]any{"at": at.Add(-time.Minute), "action": toggle}}}, 422, "steps[1].at"},
		{"toggle without on", fmt.Sprintf(changes, "staging"), map[string]any{"steps": []any{map[string]any{"at": at, "action": map[string]any{"type": "toggle"}}}}, 422, "steps[0].action.on"},
		{"weights not summing to 100%", fmt.Sprintf(changes, "staging"), map[string]any{"steps": []any{map[string]any{"at": at, "action": map[string]any{
			"type": "rollout", "weights": []any{map[string]any{"variation": "on", "weight": 50000}}}}}}, 422, "steps[0].action.weights"},
		{"unknown variation", fmt.Sprintf(changes, "staging"), map[string]any{"steps": []any{map[string]any{"at": at, "action": map[string]any{
			"type": "rollout", "weights": []any{map[string]any{"variation": "maybe", "weight": 100000}}}}}}, 422, "steps[0].action.weights[0].variation"},
		{"ramp of an unknown variation", fmt.Sprintf(changes, "staging"), map[string]any{"ramp": map[string]any{"variation": "blue", "rest": "off",
			"steps": []any{map[string]any{"at": at, "percent": 10}}}}, 422, "ramp.variation"},
		{"ramp over 100%", fmt.Sprintf(changes, "staging"), map[string]any{"ramp": map[string]any{"variation": "on", "rest": "off",
			"steps": []any{map[string]any{"at": at, "percent": 120}}}}, 422, "ramp.steps[0].percent"},
		{"patch of a non-configuration field", fmt.Sprintf(changes, "staging"), map[string]any{"steps": []any{map[string]any{"at": at, "action": map[string]any{
			"type": "patch", "patch": map[string]any{"name": "x"}}}}}, 422, "steps[0].action.patch.name"},
		{"unknown flag", "/v1/projects/shop/environments/staging/flags/nope/scheduled-changes", map[string]any{"steps": []any{map[string]any{"at": at, "action": toggle}}}, 404, ""},
		{"unknown environment", fmt.Sprintf(changes, "moon"), map[string]any{"steps": []any{map[string]any{"at": at, "action": toggle}}}, 404, ""},
		{"bad id", "/v1/projects/shop/scheduled-changes/abc", nil, 400, "id"},
		{"unknown id", "/v1/projects/shop/scheduled-changes/999", nil, 404, ""},
		{"bad channel", "/v1/projects/shop/settings", map[string]any{"slack_channel": "two words"}, 422, "slack_channel"},
		{"threshold out of range", "/v1/projects/shop/settings", map[string]any{"stale_no_evaluations_days": 0}, 422, "stale_no_evaluations_days"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := "POST"
			switch {
			case strings.HasSuffix(tc.path, "/settings"):
				method = "PUT"
			case tc.body == nil:
				method = "GET"
			}
			r := h.call(t, h.fs.Owner.Token, method, tc.path, tc.body)
			if r.Status != tc.want {
				t.Fatalf("%d %s, want %d", r.Status, r.Body, tc.want)
			}
			var e struct {
				Error struct{ Code, Message, Field string } `json:"error"`
			}
			_ = json.Unmarshal(r.Body, &e)
			if e.Error.Field != tc.field {
				t.Fatalf("field %q, want %q (%s)", e.Error.Field, tc.field, r.Body)
			}
		})
	}
}

// TestProjectSettingsRouteAlerts: a project's channel set through the API is where its alerts
// go; per-flag overrides are read back.
func TestProjectSettingsRouteAlerts(t *testing.T) {
	h := newHarness(t)
	var s settings.Project
	h.must(t, 200, h.fs.Owner.Token, "PUT", "/v1/projects/shop/settings", map[string]any{"slack_channel": "C-SHOP-ONCALL",
		"stale_no_evaluations_days": 60, "digest_enabled": false}, &s)
	if s.SlackChannel != "C-SHOP-ONCALL" || *s.StaleNoEvaluationsDays != 60 || s.StaleSingleVariationDays != nil || s.DigestEnabled {
		t.Fatalf("settings: %+v", s)
	}
	var got settings.Project
	h.must(t, 200, h.fs.Owner.Token, "GET", "/v1/projects/shop/settings", nil, &got)
	if got.SlackChannel != "C-SHOP-ONCALL" || got.UpdatedBy == "" {
		t.Fatalf("read back: %+v", got)
	}
	var fset settings.Flag
	h.must(t, 200, h.fs.Owner.Token, "PUT", "/v1/projects/shop/flags/checkout/stale-settings", map[string]any{"single_variation_days": 3}, &fset)
	h.must(t, 200, h.fs.Owner.Token, "GET", "/v1/projects/shop/flags/checkout/stale-settings", nil, &fset)
	if *fset.SingleVariationDays != 3 || fset.Ignore {
		t.Fatalf("flag settings: %+v", fset)
	}
	h.must(t, 404, h.fs.Owner.Token, "PUT", "/v1/projects/shop/flags/nope/stale-settings", map[string]any{"ignore": true}, nil)
	h.must(t, 204, h.fs.Owner.Token, "DELETE", "/v1/projects/shop/flags/checkout/stale-settings", nil, nil)
	h.must(t, 404, h.fs.Owner.Token, "GET", "/v1/projects/shop/flags/checkout/stale-settings", nil, nil)
	// A failed scheduled change of this project alerts its channel.
	var ch struct{ ID int64 }
	h.must(t, 201, h.fs.Owner.Token, "POST", fmt.Sprintf(changes, "staging"), map[string]any{"steps": []any{
		map[string]any{"at": h.clock.now().Add(time.Hour), "action": map[string]any{"type": "toggle", "on": true}}}}, &ch)
	h.fs.Owner.Must(t, "POST", stacktest.ConfigPath("shop", "checkout", "staging")+"/toggle", map[string]any{"on": true, "comment": "edit"}, nil)
	h.clock.add(2 * time.Hour)
	h.runDue(t)
	h.deliverAll(t)
	if n := len(h.slack.Messages("C-SHOP-ONCALL")); n != 1 {
		t.Fatalf("%d messages in the project's channel", n)
	}
}

// TestArchiveAStaleFlag: archiving is one call for a stale flag (audited by the flag service
// as the caller's change, with the reasons), and refused for a flag that is not stale.
func TestArchiveAStaleFlag(t *testing.T) {
	h := newHarness(t)
	yesterday := h.clock.now().AddDate(0, 0, -1).Format(time.DateOnly)
	h.fs.Owner.Must(t, "POST", "/api/v1/projects/shop/flags", map[string]any{"key": "old-banner", "name": "Old banner", "kind": "boolean",
		"temporary": true, "removal_date": yesterday,
		"variations": []any{map[string]any{"key": "on", "value": true}, map[string]any{"key": "off", "value": false}}}, nil)
	var rep stale.Report
	h.must(t, 200, h.fs.Owner.Token, "GET", "/v1/projects/shop/stale-flags?environment=production", nil, &rep)
	if len(rep.Items) != 1 || rep.Items[0].Flag != "old-banner" || rep.Items[0].FlagReasons[0].Code != stale.PastRemovalDate {
		t.Fatalf("report: %+v", rep.Items)
	}
	h.must(t, 404, h.fs.Owner.Token, "GET", "/v1/projects/shop/stale-flags?environment=moon", nil, nil)
	developer := h.fs.ServiceToken(t, "dev", "developer", "", "")
	h.must(t, 412, developer, "POST", "/v1/projects/shop/stale-flags/checkout/archive", nil, nil)
	var out struct {
		Flag, Lifecycle, Comment string
	}
	h.must(t, 200, developer, "POST", "/v1/projects/shop/stale-flags/old-banner/archive", map[string]any{"comment": "cleanup week"}, &out)
	if out.Lifecycle != "archived" || !strings.Contains(out.Comment, "past its planned removal date") {
		t.Fatalf("archive: %+v", out)
	}
	var flag struct{ Lifecycle string }
	h.fs.Owner.Must(t, "GET", "/api/v1/projects/shop/flags/old-banner", nil, &flag)
	if flag.Lifecycle != "archived" {
		t.Fatalf("flag: %+v", flag)
	}
	var audit struct {
		Items []struct {
			Action  string `json:"action"`
			Comment string `json:"comment"`
			Actor   struct{ Name string }
		} `json:"items"`
	}
	h.fs.Owner.Must(t, "GET", "/api/v1/audit?resource=old-banner", nil, &audit)
	found := false
	for _, e := range audit.Items {
		if strings.Contains(e.Comment, "archived as stale by dev") && strings.Contains(e.Comment, "cleanup week") && e.Actor.Name == "dev" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no audit entry of the archive: %+v", audit.Items)
	}
	// Archived flags leave the report.
	h.must(t, 200, h.fs.Owner.Token, "GET", "/v1/projects/shop/stale-flags", nil, &rep)
	for _, it := range rep.Items {
		if it.Flag == "old-banner" {
			t.Fatal("an archived flag is still reported")
		}
	}
}

// TestOpenAPIDescribesEveryRoute: every route the API registers is in openapi.json, and the
// document lists no route that does not exist.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	h := &harness{}
	h.app = newBareApp()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	registered := map[string]bool{}
	for _, r := range h.app.GetRoutes(true) {
		if !strings.HasPrefix(r.Path, "/v1/") || r.Method == http.MethodHead || r.Method == "USE" {
			continue
		}
		path := r.Path
		for _, p := range r.Params {
			path = strings.Replace(path, ":"+p, "{"+p+"}", 1)
		}
		key := strings.ToLower(r.Method) + " " + path
		registered[key] = true
		if _, ok := doc.Paths[path][strings.ToLower(r.Method)]; !ok {
			t.Errorf("%s %s is not in openapi.json", r.Method, path)
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if !registered[method+" "+path] {
				t.Errorf("openapi.json describes %s %s, which is not a route", method, path)
			}
		}
	}
	if len(registered) < 10 {
		t.Fatalf("only %d routes found", len(registered))
	}
}
