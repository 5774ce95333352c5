package server

import (
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/switchyard-io/switchyard/platform/errs"
)

// usageGate guards ingest's usage API. That API has one shared query token, which only this
// server holds; a browser reaches it with its own API token, which must be valid for the flag
// service and see the environment asked about (environment_id). What a token may see is cached
// briefly, keyed by the token's hash, so a page of charts costs one flag-service call.
type usageGate struct {
	flagsvc *upstream
	ingest  *upstream
	token   string // ingest's query token; empty disables the API
	ttl     time.Duration
	now     func() time.Time

	mu    sync.Mutex
	cache map[[32]byte]visibleEnvs
}

type visibleEnvs struct {
	ids     map[string]bool
	expires time.Time
}

// usageEndpoints are the read-only usage queries the web app may make (ingest /v1/usage/*).
var usageEndpoints = map[string]bool{"evaluations": true, "contexts": true, "active-contexts": true}

func (g *usageGate) handle(c *fiber.Ctx) error {
	endpoint := c.Params("endpoint")
	if !usageEndpoints[endpoint] {
		return errs.NotFound("no usage endpoint %q (evaluations, contexts, active-contexts)", endpoint)
	}
	if g.token == "" {
		return errs.Unavailable(nil, "evaluation counts are not configured on the dashboards server (set -ingest-query-token to ingest's -query-token)")
	}
	auth := c.Get(fiber.HeaderAuthorization)
	if !strings.HasPrefix(auth, "Bearer ") || len(auth) <= len("Bearer ") {
		return errs.Unauthenticated("an API token is required (Authorization: Bearer <token>)")
	}
	envID := c.Query("environment_id")
	if envID == "" {
		return errs.Invalid("environment_id", "is required")
	}
	envs, err := g.visible(c, auth)
	if err != nil {
		return err
	}
	if !envs[envID] {
		return errs.NotFound("environment %q not found", envID)
	}
	return g.ingest.forward(c, "/v1/usage/"+endpoint, "Bearer "+g.token)
}

// visible returns the ids of the environments the token can see, from the flag service's
// project list (which lists only projects visible to the caller).
func (g *usageGate) visible(c *fiber.Ctx, auth string) (map[string]bool, error) {
	key := sha256.Sum256([]byte(auth))
	now := g.now()
	g.mu.Lock()
	if e, ok := g.cache[key]; ok && now.Before(e.expires) {
		g.mu.Unlock()
		return e.ids, nil
	}
	g.mu.Unlock()
	status, body, err := g.flagsvc.get(c.UserContext(), "/api/v1/projects", auth)
	if err != nil {
		return nil, errs.Unavailable(err, "the flag service did not answer")
	}
	switch {
	case status == http.StatusUnauthorized:
		return nil, errs.Unauthenticated("the API token is not valid")
	case status == http.StatusForbidden:
		return nil, errs.PermissionDenied("the API token may not read projects")
	case status != http.StatusOK:
		return nil, errs.Unavailable(nil, "the flag service answered %d", status)
	}
	var projects struct {
		Items []struct {
			Environments []struct {
				ID string `json:"id"`
			} `json:"environments"`
		} `json:"items"`
	}
	if err := json.Unmarshal(body, &projects); err != nil {
		return nil, errs.Unavailable(err, "the flag service's project list could not be read")
	}
	ids := map[string]bool{}
	for _, p := range projects.Items {
		for _, e := range p.Environments {
			ids[e.ID] = true
		}
	}
	g.mu.Lock()
	if len(g.cache) > 10000 { // many distinct tokens: start over rather than grow without bound
		g.cache = map[[32]byte]visibleEnvs{}
	}
	g.cache[key] = visibleEnvs{ids: ids, expires: now.Add(g.ttl)}
	g.mu.Unlock()
	return ids, nil
}
