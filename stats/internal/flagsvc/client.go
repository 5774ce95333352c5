// Package flagsvc is the stats service's client of the flag service API: the running
// experiments and the exact metric versions they recorded (with the service's token), and
// authorization of API callers (with theirs).
package flagsvc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-io/switchyard/platform/roles"
	"github.com/switchyard-io/switchyard/stats/metricsql"
)

// Variation is a variation's share of an experiment.
type Variation struct {
	Variation string `json:"variation"`
	Weight    int    `json:"weight"`
}

// Guardrail is a guardrail metric of an experiment.
type Guardrail struct {
	Metric    string  `json:"metric"`
	Tolerance float64 `json:"tolerance"`
	Action    string  `json:"action"`
}

// Analysis is how an experiment is analysed.
type Analysis struct {
	Engine           string  `json:"engine"`
	Alpha            float64 `json:"alpha"`
	Sided            string  `json:"sided"`
	Sequential       bool    `json:"sequential"`
	SequentialTuning float64 `json:"sequential_tuning"`
	CUPED            bool    `json:"cuped"`
	Correction       string  `json:"correction"`
}

// Experiment is what the results workers need of an experiment.
type Experiment struct {
	ID            string      `json:"id"`
	Key           string      `json:"key"`
	Name          string      `json:"name"`
	Project       string      `json:"project"`
	Environment   string      `json:"environment"`
	EnvironmentID string      `json:"environment_id"`
	Flag          string      `json:"flag"`
	Status        string      `json:"status"`
	Control       string      `json:"control"`
	Variations    []Variation `json:"variations"`
	ContextKind   string      `json:"context_kind"`
	Metrics       struct {
		Primary    []string    `json:"primary"`
		Secondary  []string    `json:"secondary"`
		Guardrails []Guardrail `json:"guardrails"`
	} `json:"metrics"`
	Analysis        Analysis         `json:"analysis"`
	PlannedDuration string           `json:"planned_duration"`
	StartedAt       *time.Time       `json:"started_at"`
	StoppedAt       *time.Time       `json:"stopped_at"`
	MetricVersions  map[string]int64 `json:"metric_versions"`
}

// Metric is one version of a metric definition; Filter is one of its event filters.
type (
	Metric = metricsql.Definition
	Filter = metricsql.Filter
)

// ErrNotFound is returned for a 404, ErrForbidden for 401/403.
var (
	ErrNotFound  = errors.New("flagsvc: not found")
	ErrForbidden = errors.New("flagsvc: not allowed")
)

// Client calls the flag service.
type Client struct {
	Base string
	// TokenFile holds the service's own API token (re-read on every call, so it can be
	// written after the service started).
	TokenFile string
	// Token is used when TokenFile is empty.
	Token string
	HTTP  *http.Client
}

// New returns a client.
func New(base, token, tokenFile string) *Client {
	return &Client{Base: strings.TrimRight(base, "/"), Token: token, TokenFile: tokenFile, HTTP: &http.Client{Timeout: 15 * time.Second}}
}

func (c *Client) serviceToken() (string, error) {
	if c.TokenFile == "" {
		if c.Token == "" {
			return "", errors.New("flagsvc: no service token configured")
		}
		return c.Token, nil
	}
	b, err := os.ReadFile(c.TokenFile)
	if err != nil {
		return "", fmt.Errorf("flagsvc: service token: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (c *Client) get(ctx context.Context, token, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, "GET", c.Base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("flagsvc: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return ErrNotFound
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return ErrForbidden
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("flagsvc: GET %s: %d %s", path, resp.StatusCode, raw)
	}
	return json.Unmarshal(raw, out)
}

// RunningExperiments lists every running experiment the service token can read.
func (c *Client) RunningExperiments(ctx context.Context) ([]Experiment, error) {
	return c.ExperimentsWithStatus(ctx, "running")
}

// ExperimentsWithStatus lists the experiments of every project in a status (service token).
// Only for statuses whose experiments stay few (running): the stopped and concluded ones only
// ever grow in number, list them with ExperimentsStoppedAfter.
func (c *Client) ExperimentsWithStatus(ctx context.Context, status string) ([]Experiment, error) {
	return c.listExperiments(ctx, url.Values{"status": {status}})
}

// ExperimentsStoppedAfter lists the experiments of every project in a status stopped at or
// after a time (service token): the answer is bounded by how many stopped since, not by every
// experiment ever stopped.
func (c *Client) ExperimentsStoppedAfter(ctx context.Context, status string, after time.Time) ([]Experiment, error) {
	return c.listExperiments(ctx, url.Values{"status": {status}, "stopped_after": {after.UTC().Format(time.RFC3339Nano)}})
}

func (c *Client) listExperiments(ctx context.Context, q url.Values) ([]Experiment, error) {
	token, err := c.serviceToken()
	if err != nil {
		return nil, err
	}
	var out struct {
		Items []Experiment `json:"items"`
	}
	return out.Items, c.get(ctx, token, "/api/v1/experiments?"+q.Encode(), &out)
}

// Experiment reads an experiment with a caller's token: it fails with ErrForbidden or
// ErrNotFound when the caller may not read it, which is how results requests are authorized.
func (c *Client) Experiment(ctx context.Context, token, project, key string) (Experiment, error) {
	var x Experiment
	return x, c.get(ctx, token, "/api/v1/projects/"+url.PathEscape(project)+"/experiments/"+url.PathEscape(key), &x)
}

// Grant reads what the flag service says of a caller (GET /api/v1/me) that its rights depend
// on, with the caller's token.
func (c *Client) Grant(ctx context.Context, token string) (roles.Grant, error) {
	var me struct {
		Role       string            `json:"role"`
		ProjectIDs []string          `json:"project_ids"`
		Scope      map[string]string `json:"scope"`
	}
	err := c.get(ctx, token, "/api/v1/me", &me)
	return roles.Grant{Role: me.Role, ProjectIDs: me.ProjectIDs, Scope: me.Scope}, err
}

// Environment is what rights to an environment depend on.
type Environment struct {
	ID        string `json:"id"`
	ProjectID string `json:"project_id"`
	Critical  bool   `json:"critical"`
}

// Environment reads an environment with a caller's token.
func (c *Client) Environment(ctx context.Context, token, project, key string) (Environment, error) {
	var e Environment
	return e, c.get(ctx, token, "/api/v1/projects/"+url.PathEscape(project)+"/environments/"+url.PathEscape(key), &e)
}

// ServiceExperiment reads an experiment with the service token.
func (c *Client) ServiceExperiment(ctx context.Context, project, key string) (Experiment, error) {
	token, err := c.serviceToken()
	if err != nil {
		return Experiment{}, err
	}
	return c.Experiment(ctx, token, project, key)
}

// MetricVersion reads one version of a metric's definition (the service token).
func (c *Client) MetricVersion(ctx context.Context, project, key string, version int64) (Metric, error) {
	token, err := c.serviceToken()
	if err != nil {
		return Metric{}, err
	}
	var out struct {
		Items []struct {
			Version    int64  `json:"version"`
			Definition Metric `json:"definition"`
		} `json:"items"`
	}
	if err := c.get(ctx, token, "/api/v1/projects/"+url.PathEscape(project)+"/metrics/"+url.PathEscape(key)+"/versions", &out); err != nil {
		return Metric{}, err
	}
	for _, v := range out.Items {
		if v.Version == version || version == 0 {
			m := v.Definition
			m.Key, m.Version = key, v.Version
			return m, nil
		}
	}
	return Metric{}, fmt.Errorf("%w: metric %s has no version %d", ErrNotFound, key, version)
}

// Authorizer verifies API tokens of callers against the flag service (GET /api/v1/me),
// remembering a verified token briefly.
type Authorizer struct {
	Client *Client
	TTL    time.Duration

	mu   sync.Mutex
	seen map[string]time.Time
}

// Authorize returns nil when the token is a valid API token of the flag service.
func (a *Authorizer) Authorize(ctx context.Context, token string) error {
	if token == "" {
		return ErrForbidden
	}
	key := sha256.Sum256([]byte(token))
	id := hex.EncodeToString(key[:])
	now := time.Now()
	a.mu.Lock()
	if a.seen == nil {
		a.seen = map[string]time.Time{}
	}
	until, ok := a.seen[id]
	a.mu.Unlock()
	if ok && now.Before(until) {
		return nil
	}
	var me map[string]any
	if err := a.Client.get(ctx, token, "/api/v1/me", &me); err != nil {
		return err
	}
	ttl := a.TTL
	if ttl == 0 {
		ttl = 2 * time.Second
	}
	a.mu.Lock()
	if len(a.seen) > 10000 {
		a.seen = map[string]time.Time{}
	}
	a.seen[id] = now.Add(ttl)
	a.mu.Unlock()
	return nil
}
