package http

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/switchyard-io/switchyard/platform/errs"
	"github.com/switchyard-io/switchyard/stats/engine"
	"github.com/switchyard-io/switchyard/stats/internal/flagsvc"
	"github.com/switchyard-io/switchyard/stats/internal/results"
)

// Authorizer verifies a caller's API token.
type Authorizer interface {
	Authorize(ctx context.Context, token string) error
}

func bearer(c *fiber.Ctx) string {
	t, _ := strings.CutPrefix(c.Get(fiber.HeaderAuthorization), "Bearer ")
	return strings.TrimSpace(t)
}

// RequireToken rejects requests without a valid flag service API token.
func RequireToken(a Authorizer) fiber.Handler {
	return func(c *fiber.Ctx) error {
		err := a.Authorize(c.UserContext(), bearer(c))
		switch {
		case err == nil:
			return c.Next()
		case errors.Is(err, flagsvc.ErrForbidden):
			return errs.Unauthenticated("send a Switchyard API token as Authorization: Bearer <token>")
		default:
			return errs.Unavailable(err, "cannot verify the token now")
		}
	}
}

// callerError is the caller-facing error of a flag service read made with the caller's token.
func callerError(err error, what string) error {
	switch {
	case errors.Is(err, flagsvc.ErrNotFound):
		return errs.NotFound("%s not found", what)
	case errors.Is(err, flagsvc.ErrForbidden):
		return errs.PermissionDenied("your token may not read %s", what)
	}
	return errs.Unavailable(err, "the flag service is not answering")
}

// ResultsService is what the results routes need.
type ResultsService struct {
	Flags  *flagsvc.Client
	Store  *results.Store
	Worker *results.Worker
	// Estimator answers sample-size estimates for drafts.
	Estimator *results.Estimator
	// RefreshWait bounds how long POST …/refresh waits for a slot, for another refresh of the
	// experiment to end, and for its own snapshot (default 2 minutes).
	RefreshWait time.Duration
}

// MountResults adds the experiment results routes under /v1/projects/:project/experiments/:experiment.
// Every call reads the experiment with the caller's token first, so the flag service decides
// who may see what.
func MountResults(r fiber.Router, s *ResultsService) {
	base := "/v1/projects/:project/experiments/:experiment"
	experiment := func(c *fiber.Ctx) (flagsvc.Experiment, error) {
		x, err := s.Flags.Experiment(c.UserContext(), bearer(c), c.Params("project"), c.Params("experiment"))
		if err != nil {
			return x, callerError(err, fmt.Sprintf("experiment %q", c.Params("experiment")))
		}
		return x, nil
	}
	r.Get(base+"/results", func(c *fiber.Ctx) error {
		x, err := experiment(c)
		if err != nil {
			return err
		}
		snaps, err := s.Store.Snapshots(c.UserContext(), x.ID, 1)
		if err != nil {
			return err
		}
		failure, err := s.Store.LastFailure(c.UserContext(), x.ID)
		if err != nil {
			return err
		}
		if len(snaps) == 0 {
			if failure != nil {
				return errs.NotFound("no results yet for %q: its last refresh failed at %s: %s", x.Key, failure.At.Format(time.RFC3339), failure.Message)
			}
			return errs.NotFound("no results yet for %q: they are computed every few minutes once it runs (POST …/refresh to compute now)", x.Key)
		}
		if failure != nil && failure.At.After(snaps[0].ComputedAt) {
			snaps[0].RefreshError = failure
		}
		return c.JSON(snaps[0])
	})
	r.Get(base+"/snapshots", func(c *fiber.Ctx) error {
		x, err := experiment(c)
		if err != nil {
			return err
		}
		limit, err := strconv.Atoi(c.Query("limit", "50"))
		if err != nil || limit < 1 || limit > 1000 {
			return errs.Malformed("limit", "must be between 1 and 1000")
		}
		snaps, err := s.Store.Snapshots(c.UserContext(), x.ID, limit)
		if err != nil {
			return err
		}
		if snaps == nil {
			snaps = []results.Snapshot{}
		}
		return c.JSON(fiber.Map{"items": snaps})
	})
	r.Get(base+"/timeseries", func(c *fiber.Ctx) error {
		x, err := experiment(c)
		if err != nil {
			return err
		}
		metric := c.Query("metric")
		if metric == "" {
			return errs.Malformed("metric", "name the metric (?metric=key)")
		}
		if !measures(x, metric) {
			return errs.Malformed("metric", "experiment %q has no metric %q", x.Key, metric)
		}
		var bounds [2]time.Time
		for i, name := range []string{"from", "to"} {
			if v := c.Query(name); v != "" {
				if bounds[i], err = time.Parse(time.RFC3339Nano, v); err != nil {
					return errs.Malformed(name, "an RFC 3339 time such as 2026-11-26T12:00:00Z, got %q", v)
				}
			}
		}
		from, to := bounds[0], bounds[1]
		if !from.IsZero() && !to.IsZero() && to.Before(from) {
			return errs.Malformed("to", "must not be before from")
		}
		points, err := s.Store.Series(c.UserContext(), x.ID, metric, from, to, results.MaxSeriesSnapshots)
		if err != nil {
			return err
		}
		return c.JSON(fiber.Map{"metric": metric, "points": points})
	})
	r.Post(base+"/refresh", func(c *fiber.Ctx) error {
		x, err := experiment(c)
		if err != nil {
			return err
		}
		// A refresh costs ClickHouse minutes at scale: only who may start or stop the
		// experiment may ask for one.
		if err := requireWrite(c.UserContext(), s.Flags, bearer(c), x); err != nil {
			return err
		}
		if x.StartedAt == nil {
			return errs.PreconditionFailed("status", "experiment %q has not started", x.Key)
		}
		wait := s.RefreshWait
		if wait <= 0 {
			wait = 2 * time.Minute
		}
		ctx, cancel := context.WithTimeout(c.UserContext(), wait)
		defer cancel()
		if err := s.Worker.Refresh(ctx, x.Project, x.Key); errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			return errs.Unavailable(err, "experiment %q: no new snapshot within %s (the refresh waited for another refresh of it, a sweep's or another replica's, or is still computing: a refresh under way stores its snapshot under …/results)", x.Key, wait)
		} else if errors.Is(err, results.ErrBusy) {
			return errs.Conflict("", "experiment %q is being refreshed already (by a scheduled sweep or another replica): its results appear under …/results when that refresh has stored its snapshot", x.Key)
		} else if errors.Is(err, results.ErrFinal) {
			return errs.Conflict("status", "experiment %q stopped more than its late window ago (-results-late-window: no event received since can count) and its last snapshot reaches the stop, or its daily rollups were deleted (-results-rollup-retention): its results are final and are not recomputed; its last snapshot under …/results stands", x.Key)
		} else if err != nil {
			return errs.Unavailable(err, "refresh failed")
		}
		snaps, err := s.Store.Snapshots(c.UserContext(), x.ID, 1)
		if err != nil || len(snaps) == 0 {
			return errs.Internal(err, "refresh produced no snapshot")
		}
		return c.JSON(snaps[0])
	})
	r.Get(base+"/estimate", func(c *fiber.Ctx) error {
		x, err := experiment(c)
		if err != nil {
			return err
		}
		effect := 0.05
		if v := c.Query("effect"); v != "" {
			if effect, err = strconv.ParseFloat(v, 64); err != nil || !(effect > 0 && effect <= 10) { // NaN too
				return errs.Malformed("effect", "a relative effect such as 0.05")
			}
		}
		est, err := s.Estimator.Estimate(c.UserContext(), x, effect)
		if err != nil {
			var inv *engine.InvalidError
			switch {
			case errors.As(err, &inv), errors.Is(err, results.ErrEffectTooSmall):
				return errs.Invalid("effect", "%v", err)
			case errors.Is(err, results.ErrNoPrimaryMetric), errors.Is(err, results.ErrRatioBaseline):
				return errs.Invalid("metrics.primary", "%v", err)
			case errors.Is(err, results.ErrNoBaseline):
				return errs.Invalid("", "%v", err)
			}
			return err
		}
		return c.JSON(est)
	})
}

// measures says whether the experiment has (or had) the metric: one of its metrics now, or
// one whose version it recorded (a secondary metric removed since keeps its history).
func measures(x flagsvc.Experiment, metric string) bool {
	if _, ok := x.MetricVersions[metric]; ok {
		return true
	}
	for _, g := range x.Metrics.Guardrails {
		if g.Metric == metric {
			return true
		}
	}
	return slices.Contains(x.Metrics.Primary, metric) || slices.Contains(x.Metrics.Secondary, metric)
}
