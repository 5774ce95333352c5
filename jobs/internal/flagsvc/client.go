// Package flagsvc is the jobs service's client of the flag service's public API (/api/v1). The
// jobs service changes flags only through it, with its service token (scheduled changes,
// breach reports) or with the caller's own token (archiving a stale flag), so the flag
// service's RBAC and audit log always hold.
package flagsvc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-io/switchyard/platform/errs"
	"github.com/switchyard-io/switchyard/platform/httpapi"
)

// OriginHeader marks a write as made on someone's behalf; "scheduled" makes the flag service
// record the change as scheduled (history change "scheduled", audit flag_config.scheduled).
const OriginHeader = "X-Switchyard-Origin"

// Client calls the flag service.
type Client struct {
	BaseURL string
	// Token authenticates the calls; when empty, TokenFile is read (on every call, so the file
	// may be written after the service started, and rotated). Neither: no credentials.
	Token     string
	TokenFile string
	HTTP      *http.Client
}

// New returns a client of the flag service at baseURL authenticating with token (or the
// token in tokenFile).
func New(baseURL, token, tokenFile string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Token: token, TokenFile: tokenFile, HTTP: &http.Client{Timeout: 30 * time.Second}}
}

// WithToken returns a client that authenticates with another token (a caller's).
func (c *Client) WithToken(token string) *Client {
	cp := *c
	cp.Token, cp.TokenFile = token, ""
	return &cp
}

// ErrNoToken is returned when the client has no token (none configured, or the token file is
// missing or empty).
var ErrNoToken = errs.Unavailable(nil, "the jobs service has no flag service token (set -flagsvc-token or -flagsvc-token-file)")

func (c *Client) token() (string, error) {
	if c.Token != "" || c.TokenFile == "" {
		return c.Token, nil
	}
	b, err := os.ReadFile(c.TokenFile)
	if err != nil || strings.TrimSpace(string(b)) == "" {
		return "", ErrNoToken
	}
	return strings.TrimSpace(string(b)), nil
}

// ServiceToken returns the token the client authenticates with (for calls to other
// Switchyard services that accept flag service tokens).
func (c *Client) ServiceToken() (string, error) { return c.token() }

// HasToken reports whether the client can authenticate now.
func (c *Client) HasToken() bool {
	t, err := c.token()
	return err == nil && t != ""
}

// request is one call.
type request struct {
	method, path string
	query        url.Values
	body         any
	ifMatch      int64
	origin       string
}

// do sends the request and decodes a 2xx JSON answer into out. Errors are *errs.Error with
// the kind of the flag service's status and its message; transport failures and 5xx are
// KindUnavailable.
func (c *Client) do(ctx context.Context, r request, out any) (http.Header, error) {
	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	u := c.BaseURL + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return nil, err
	}
	token, err := c.token()
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "switchyard-jobs")
	if r.ifMatch > 0 {
		req.Header.Set("If-Match", `"`+strconv.FormatInt(r.ifMatch, 10)+`"`)
	}
	if r.origin != "" {
		req.Header.Set(OriginHeader, r.origin)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, errs.Unavailable(err, "flag service unreachable")
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, errs.Unavailable(err, "flag service: reading the answer")
	}
	if resp.StatusCode >= 300 {
		return resp.Header, apiError(resp.StatusCode, resp.Header, raw, r)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.Header, errs.Internal(err, "flag service: unexpected answer to %s %s", r.method, r.path)
		}
	}
	return resp.Header, nil
}

// apiError maps the flag service's error answer to the platform's vocabulary. The cause is a
// *statusError, which keeps the answer's Retry-After (see RetryAfter).
func apiError(status int, h http.Header, raw []byte, r request) error {
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Field   string `json:"field"`
		} `json:"error"`
	}
	_ = json.Unmarshal(raw, &body)
	msg := body.Error.Message
	if msg == "" {
		msg = http.StatusText(status)
	}
	return &errs.Error{Kind: httpapi.KindForStatus(status), Field: body.Error.Field, Message: "flag service: " + msg,
		Err: &statusError{method: r.method, path: r.path, status: status, code: body.Error.Code, retryAfter: retryAfterOf(h)}}
}

// statusError is the flag service's error answer to one call.
type statusError struct {
	method, path string
	status       int
	code         string
	retryAfter   time.Duration
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.method, e.path, e.status, e.code)
}

func retryAfterOf(h http.Header) time.Duration {
	d, _ := httpapi.RetryAfter(h)
	return d
}

// RetryAfter is how long the flag service asked the caller to wait before trying again (the
// Retry-After of its error answer, typically a 429), or 0 when it did not say.
func RetryAfter(err error) time.Duration {
	var se *statusError
	if errors.As(err, &se) {
		return se.retryAfter
	}
	return 0
}

// TokenRejected reports whether the flag service refused the client's token itself (401: the
// token was revoked or has expired), as opposed to a token lacking a right (403).
func TokenRejected(err error) bool {
	return errs.KindOf(err) == errs.KindUnauthenticated
}

// Retryable reports whether an error from the client may go away by itself (the flag service
// is down, overloaded or rate limiting).
func Retryable(err error) bool {
	switch errs.KindOf(err) {
	case errs.KindUnavailable, errs.KindRateLimited:
		return true
	}
	return false
}

func esc(s string) string { return url.PathEscape(s) }

func projectPath(p string) string { return "/api/v1/projects/" + esc(p) }

func envPath(p, env string) string { return projectPath(p) + "/environments/" + esc(env) }

func configPath(p, flag, env string) string {
	return projectPath(p) + "/flags/" + esc(flag) + "/environments/" + esc(env)
}

type items[T any] struct {
	Items []T `json:"items"`
}

// Me is the caller behind a token.
func (c *Client) Me(ctx context.Context) (Me, error) {
	var me Me
	_, err := c.do(ctx, request{method: "GET", path: "/api/v1/me"}, &me)
	return me, err
}

// Projects lists the organization's projects.
func (c *Client) Projects(ctx context.Context) ([]Project, error) {
	var out items[Project]
	_, err := c.do(ctx, request{method: "GET", path: "/api/v1/projects"}, &out)
	return out.Items, err
}

// Project returns one project.
func (c *Client) Project(ctx context.Context, project string) (Project, error) {
	var p Project
	_, err := c.do(ctx, request{method: "GET", path: projectPath(project)}, &p)
	return p, err
}

// Environments lists a project's environments.
func (c *Client) Environments(ctx context.Context, project string) ([]Environment, error) {
	var out items[Environment]
	_, err := c.do(ctx, request{method: "GET", path: projectPath(project) + "/environments"}, &out)
	return out.Items, err
}

// Environment returns one environment (with its critical mark).
func (c *Client) Environment(ctx context.Context, project, env string) (Environment, error) {
	var e Environment
	_, err := c.do(ctx, request{method: "GET", path: envPath(project, env)}, &e)
	return e, err
}

// Members lists the organization's members (to name flag owners).
func (c *Client) Members(ctx context.Context) ([]Member, error) {
	var out items[Member]
	_, err := c.do(ctx, request{method: "GET", path: "/api/v1/members"}, &out)
	return out.Items, err
}

// Flags lists every flag of a project that is not archived, following the cursor.
func (c *Client) Flags(ctx context.Context, project string) ([]Flag, error) {
	var all []Flag
	cursor := ""
	for {
		q := url.Values{"limit": {"500"}, "sort": {"key"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Items      []Flag `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		if _, err := c.do(ctx, request{method: "GET", path: projectPath(project) + "/flags", query: q}, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.NextCursor == "" || len(page.Items) == 0 {
			return all, nil
		}
		cursor = page.NextCursor
	}
}

// Flag returns a flag with its configuration in every environment.
func (c *Client) Flag(ctx context.Context, project, flag string) (FlagDetail, error) {
	var f FlagDetail
	_, err := c.do(ctx, request{method: "GET", path: projectPath(project) + "/flags/" + esc(flag)}, &f)
	return f, err
}

// ArchiveFlag sets a flag's lifecycle to archived (the flag service audits it).
func (c *Client) ArchiveFlag(ctx context.Context, project, flag, comment string) (FlagDetail, error) {
	var f FlagDetail
	_, err := c.do(ctx, request{method: "PATCH", path: projectPath(project) + "/flags/" + esc(flag),
		body: map[string]any{"lifecycle": "archived", "comment": comment}}, &f)
	return f, err
}

// Config returns a flag's configuration in one environment.
func (c *Client) Config(ctx context.Context, project, flag, env string) (FlagEnvironment, error) {
	var fe FlagEnvironment
	_, err := c.do(ctx, request{method: "GET", path: configPath(project, flag, env)}, &fe)
	return fe, err
}

// Write says how a configuration write is made: the version it is based on (If-Match; a newer
// one is a conflict), its comment, and whether it is a scheduled change.
type Write struct {
	IfMatch   int64
	Comment   string
	Scheduled bool
}

func (w Write) origin() string {
	if w.Scheduled {
		return "scheduled"
	}
	return ""
}

// Toggle turns a flag on or off in an environment.
func (c *Client) Toggle(ctx context.Context, project, flag, env string, on bool, w Write) (FlagEnvironment, error) {
	var fe FlagEnvironment
	_, err := c.do(ctx, request{method: "POST", path: configPath(project, flag, env) + "/toggle",
		body: map[string]any{"on": on, "comment": w.Comment}, ifMatch: w.IfMatch, origin: w.origin()}, &fe)
	return fe, err
}

// PatchConfig applies a JSON merge patch to a flag's configuration in an environment.
func (c *Client) PatchConfig(ctx context.Context, project, flag, env string, patch json.RawMessage, w Write) (FlagEnvironment, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(patch, &doc); err != nil {
		return FlagEnvironment{}, errs.Invalid("patch", "must be a JSON object")
	}
	if w.Comment != "" {
		doc["comment"], _ = json.Marshal(w.Comment)
	}
	var fe FlagEnvironment
	_, err := c.do(ctx, request{method: "PATCH", path: configPath(project, flag, env), body: doc, ifMatch: w.IfMatch, origin: w.origin()}, &fe)
	return fe, err
}

// History returns a flag's configuration versions in an environment, newest first: the newest
// limit, or with before > 0 the newest limit of those older than version before.
func (c *Client) History(ctx context.Context, project, flag, env string, before int64, limit int) ([]ConfigVersion, error) {
	var out items[ConfigVersion]
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if before > 0 {
		q.Set("before", strconv.FormatInt(before, 10))
	}
	_, err := c.do(ctx, request{method: "GET", path: configPath(project, flag, env) + "/history", query: q}, &out)
	return out.Items, err
}

// Ruleset returns the environment's current compiled ruleset (the preview endpoint).
func (c *Client) Ruleset(ctx context.Context, project, env string) (Ruleset, error) {
	var rs Ruleset
	_, err := c.do(ctx, request{method: "GET", path: envPath(project, env) + "/ruleset"}, &rs)
	return rs, err
}

// Experiments lists a project's experiments with a status ("" for all) in an environment ("" for all).
func (c *Client) Experiments(ctx context.Context, project, status, env string) ([]Experiment, error) {
	q := url.Values{}
	if status != "" {
		q.Set("status", status)
	}
	if env != "" {
		q.Set("environment", env)
	}
	var out items[Experiment]
	_, err := c.do(ctx, request{method: "GET", path: projectPath(project) + "/experiments", query: q}, &out)
	return out.Items, err
}

// Experiment returns one experiment.
func (c *Client) Experiment(ctx context.Context, project, key string) (Experiment, error) {
	var x Experiment
	_, err := c.do(ctx, request{method: "GET", path: projectPath(project) + "/experiments/" + esc(key)}, &x)
	return x, err
}

// MetricVersion returns one version of a metric definition (0: the newest).
func (c *Client) MetricVersion(ctx context.Context, project, key string, version int64) (Metric, error) {
	var out struct {
		Items []struct {
			Version    int64           `json:"version"`
			Definition json.RawMessage `json:"definition"`
		} `json:"items"`
	}
	if _, err := c.do(ctx, request{method: "GET", path: projectPath(project) + "/metrics/" + esc(key) + "/versions"}, &out); err != nil {
		return Metric{}, err
	}
	best := -1
	for i, v := range out.Items {
		if v.Version == version || (version == 0 && (best < 0 || v.Version > out.Items[best].Version)) {
			best = i
		}
	}
	if best < 0 {
		return Metric{}, errs.NotFound("metric %s has no version %d", key, version)
	}
	var m Metric
	if err := json.Unmarshal(out.Items[best].Definition, &m); err != nil {
		return m, errs.Internal(err, "flag service: metric %s version %d", key, version)
	}
	m.Key, m.Version = key, out.Items[best].Version
	return m, nil
}

// Metric returns a metric definition.
func (c *Client) Metric(ctx context.Context, project, key string) (Metric, error) {
	var m Metric
	_, err := c.do(ctx, request{method: "GET", path: projectPath(project) + "/metrics/" + esc(key)}, &m)
	return m, err
}

// Guardrails lists the organization's guardrails with a status ("active", "breached"; "" for all).
func (c *Client) Guardrails(ctx context.Context, status string) ([]Guardrail, error) {
	q := url.Values{}
	if status != "" {
		q.Set("status", status)
	}
	var out items[Guardrail]
	_, err := c.do(ctx, request{method: "GET", path: "/api/v1/guardrails", query: q}, &out)
	return out.Items, err
}

// EnvironmentGuardrails lists the guardrails of one environment.
func (c *Client) EnvironmentGuardrails(ctx context.Context, project, env string) ([]Guardrail, error) {
	var out items[Guardrail]
	_, err := c.do(ctx, request{method: "GET", path: envPath(project, env) + "/guardrails"}, &out)
	return out.Items, err
}

// ReportBreach tells the flag service a guardrail is breached. It records the breach once (a
// second report is errs.KindConflict) and, for action rollback, rolls the flag back as one
// audited change. The answer is the guardrail with its breach record.
func (c *Client) ReportBreach(ctx context.Context, g Guardrail, r BreachReport) (Guardrail, error) {
	var raw json.RawMessage
	_, err := c.do(ctx, request{method: "POST", path: envPath(g.Project, g.Environment) + "/guardrails/" + esc(g.ID) + "/breach", body: r}, &raw)
	if err != nil {
		return Guardrail{}, err
	}
	return decodeBreachAnswer(raw)
}

// decodeBreachAnswer reads the answer to a breach report: the guardrail itself, or an object
// holding it under "guardrail" (with "action_taken" beside it).
func decodeBreachAnswer(raw json.RawMessage) (Guardrail, error) {
	var wrapped struct {
		Guardrail   *Guardrail `json:"guardrail"`
		ActionTaken string     `json:"action_taken"`
	}
	if err := json.Unmarshal(raw, &wrapped); err == nil && wrapped.Guardrail != nil {
		g := *wrapped.Guardrail
		if g.Breach != nil && g.Breach.ActionTaken == "" {
			g.Breach.ActionTaken = wrapped.ActionTaken
		}
		return g, nil
	}
	var g Guardrail
	if err := json.Unmarshal(raw, &g); err != nil {
		return g, errs.Internal(err, "flag service: unexpected answer to a breach report")
	}
	return g, nil
}
