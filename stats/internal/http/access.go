package http

import (
	"context"

	"github.com/switchyard-io/switchyard/platform/errs"
	"github.com/switchyard-io/switchyard/stats/internal/flagsvc"
)

// requireWrite checks that the caller may change the experiment's environment, the right the
// flag service asks for to start or stop the experiment (roles.Grant.ChangeEnvironment). The
// flag service has no endpoint answering this for another service, so its rule is applied to
// the caller's grant (GET /api/v1/me) and the environment, both read with the caller's token.
func requireWrite(ctx context.Context, fc *flagsvc.Client, token string, x flagsvc.Experiment) error {
	grant, err := fc.Grant(ctx, token)
	if err != nil {
		return callerError(err, "its own grant (/api/v1/me)")
	}
	env, err := fc.Environment(ctx, token, x.Project, x.Environment)
	if err != nil {
		return callerError(err, "environment "+x.Environment)
	}
	if why := grant.ChangeEnvironment(env.ProjectID, env.ID, env.Critical); why != "" {
		return errs.PermissionDenied("refreshing results of %q needs the right to change environment %q: %s", x.Key, x.Environment, why)
	}
	return nil
}
