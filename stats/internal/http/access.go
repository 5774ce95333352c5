package http

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	nethttp "net/http"
	"net/url"

	"github.com/switchyard-io/switchyard/platform/errs"
	"github.com/switchyard-io/switchyard/platform/roles"
	"github.com/switchyard-io/switchyard/stats/internal/flagsvc"
)

// requireWrite checks that the caller may change the experiment's environment, the right the
// flag service asks for to start or stop the experiment (roles.Grant.ChangeEnvironment). The
// flag service has no endpoint answering this for another service, so its rule is applied to
// the caller's GET /api/v1/me and the environment, both read with the caller's token.
func requireWrite(ctx context.Context, fc *flagsvc.Client, token string, x flagsvc.Experiment) error {
	var me struct {
		Role       string            `json:"role"`
		ProjectIDs []string          `json:"project_ids"`
		Scope      map[string]string `json:"scope"`
	}
	if err := callerGet(ctx, fc, token, "/api/v1/me", &me); err != nil {
		return err
	}
	var env struct {
		ID        string `json:"id"`
		ProjectID string `json:"project_id"`
		Critical  bool   `json:"critical"`
	}
	if err := callerGet(ctx, fc, token, "/api/v1/projects/"+url.PathEscape(x.Project)+"/environments/"+url.PathEscape(x.Environment), &env); err != nil {
		return err
	}
	grant := roles.Grant{Role: me.Role, ProjectIDs: me.ProjectIDs, Scope: me.Scope}
	if why := grant.ChangeEnvironment(env.ProjectID, env.ID, env.Critical); why != "" {
		return errs.PermissionDenied("refreshing results of %q needs the right to change environment %q: %s", x.Key, x.Environment, why)
	}
	return nil
}

// callerGet reads a flag service resource with the caller's token, with the caller-facing error
// kinds.
func callerGet(ctx context.Context, fc *flagsvc.Client, token, path string, out any) error {
	req, err := nethttp.NewRequestWithContext(ctx, "GET", fc.Base+path, nil)
	if err != nil {
		return errs.Internal(err, "building a flag service request")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	client := fc.HTTP
	if client == nil {
		client = nethttp.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return errs.Unavailable(err, "the flag service is not answering")
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == nethttp.StatusNotFound:
		return errs.NotFound("not found in the flag service: %s", path)
	case resp.StatusCode == nethttp.StatusUnauthorized:
		return errs.Unauthenticated("the API token was not accepted by the flag service")
	case resp.StatusCode == nethttp.StatusForbidden:
		return errs.PermissionDenied("your token may not read %s", path)
	case resp.StatusCode != nethttp.StatusOK:
		return errs.Unavailable(fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, raw), "the flag service gave an unexpected answer")
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return errs.Unavailable(err, "the flag service gave an unexpected answer")
	}
	return nil
}
