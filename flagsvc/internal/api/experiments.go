package api

import (
	"encoding/json"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
	"github.com/switchyard-io/switchyard/flagsvc/internal/experiments"
	"github.com/switchyard-io/switchyard/flagsvc/internal/guardrails"
	"github.com/switchyard-io/switchyard/platform/errs"
	"github.com/switchyard-io/switchyard/platform/httpapi"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

func (a *API) listMetrics(c *fiber.Ctx) error {
	all, err := boolQuery(c, "include_archived")
	if err != nil {
		return err
	}
	ms, err := a.s.Metrics.List(c.UserContext(), caller(c), c.Params("project"), all != nil && *all)
	if err != nil {
		return err
	}
	return c.JSON(list(ms))
}

// metricServerFields are a metric's fields only the server sets: archived (by DELETE, which
// has no undo) and the timestamps.
type metricServerFields struct {
	Archived  json.RawMessage `json:"archived"`
	CreatedAt json.RawMessage `json:"created_at"`
	UpdatedAt json.RawMessage `json:"updated_at"`
}

// decodeMetric decodes a metric; server-managed fields (archived, timestamps) are refused
// whenever they are sent, whatever their value — `"archived": false` as much as true, so that
// no value suggests the field is settable — and version is taken as the If-Match equivalent.
func decodeMetric(c *fiber.Ctx) (domain.Metric, *int64, error) {
	var m domain.Metric
	if err := httpapi.DecodeJSON(c, &m); err != nil {
		return m, nil, err
	}
	// Decoded the same (case-insensitive) way as m, so a field m took is seen here too.
	var sent metricServerFields
	if err := json.Unmarshal(c.Body(), &sent); err != nil {
		return m, nil, httpapi.DecodeError(err)
	}
	switch {
	case sent.Archived != nil:
		return m, nil, errs.Invalid("archived", "archived is set by the server, not by a request (DELETE archives a metric); leave it out")
	case sent.CreatedAt != nil:
		return m, nil, errs.Invalid("created_at", "created_at is set by the server; leave it out")
	case sent.UpdatedAt != nil:
		return m, nil, errs.Invalid("updated_at", "updated_at is set by the server; leave it out")
	}
	var body *int64
	if m.Version != 0 {
		v := m.Version
		body = &v
	}
	v, err := version(c, body)
	return m, v, err
}

func (a *API) createMetric(c *fiber.Ctx) error {
	m, _, err := decodeMetric(c)
	if err != nil {
		return err
	}
	out, err := a.s.Metrics.Create(c.UserContext(), caller(c), c.Params("project"), m)
	if err != nil {
		return err
	}
	setETag(c, out.Version)
	return c.Status(fiber.StatusCreated).JSON(out)
}

func (a *API) getMetric(c *fiber.Ctx) error {
	m, err := a.s.Metrics.Get(c.UserContext(), caller(c), c.Params("project"), c.Params("metric"))
	if err != nil {
		return err
	}
	setETag(c, m.Version)
	return c.JSON(m)
}

func (a *API) updateMetric(c *fiber.Ctx) error {
	m, v, err := decodeMetric(c)
	if err != nil {
		return err
	}
	out, err := a.s.Metrics.Update(c.UserContext(), caller(c), c.Params("project"), c.Params("metric"), m, v)
	if err != nil {
		return err
	}
	setETag(c, out.Version)
	return c.JSON(out)
}

func (a *API) archiveMetric(c *fiber.Ctx) error {
	if err := a.s.Metrics.Archive(c.UserContext(), caller(c), c.Params("project"), c.Params("metric")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (a *API) metricVersions(c *fiber.Ctx) error {
	vs, err := a.s.Metrics.Versions(c.UserContext(), caller(c), c.Params("project"), c.Params("metric"))
	if err != nil {
		return err
	}
	return c.JSON(list(vs))
}

func experimentStatus(c *fiber.Ctx) (string, error) {
	st := c.Query("status")
	switch st {
	case "", domain.ExperimentDraft, domain.ExperimentRunning, domain.ExperimentStopped, domain.ExperimentConcluded:
		return st, nil
	}
	return "", errs.Invalid("status", "must be draft, running, stopped or concluded")
}

// timeQuery reads an optional RFC 3339 time query parameter (nil when absent).
func timeQuery(c *fiber.Ctx, name string) (*time.Time, error) {
	s := c.Query(name)
	if s == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil, errs.Malformed(name, "must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z")
	}
	return &t, nil
}

func (a *API) listOrgExperiments(c *fiber.Ctx) error {
	st, err := experimentStatus(c)
	if err != nil {
		return err
	}
	after, err := timeQuery(c, "stopped_after")
	if err != nil {
		return err
	}
	xs, err := a.s.Experiments.ListOrg(c.UserContext(), caller(c), st, after)
	if err != nil {
		return err
	}
	return c.JSON(list(xs))
}

func (a *API) listExperiments(c *fiber.Ctx) error {
	st, err := experimentStatus(c)
	if err != nil {
		return err
	}
	xs, err := a.s.Experiments.List(c.UserContext(), caller(c), c.Params("project"), st, c.Query("environment"))
	if err != nil {
		return err
	}
	return c.JSON(list(xs))
}

// experimentInput is what clients may set when creating an experiment.
type experimentInput struct {
	Key             string                      `json:"key"`
	Name            string                      `json:"name"`
	Hypothesis      string                      `json:"hypothesis"`
	OwnerID         string                      `json:"owner_id"`
	Environment     string                      `json:"environment"`
	Flag            string                      `json:"flag"`
	Control         string                      `json:"control"`
	Variations      []ruleset.WeightedVariation `json:"variations"`
	ContextKind     string                      `json:"context_kind"`
	Salt            string                      `json:"salt"`
	Metrics         domain.ExperimentMetrics    `json:"metrics"`
	Analysis        domain.Analysis             `json:"analysis"`
	PlannedDuration domain.Duration             `json:"planned_duration"`
}

func (a *API) createExperiment(c *fiber.Ctx) error {
	var in experimentInput
	if err := httpapi.DecodeJSON(c, &in); err != nil {
		return err
	}
	if in.Environment == "" {
		return errs.Invalid("environment", "is required")
	}
	if in.Flag == "" {
		return errs.Invalid("flag", "is required")
	}
	x := domain.Experiment{Key: in.Key, Name: in.Name, Hypothesis: in.Hypothesis, OwnerID: in.OwnerID, Environment: in.Environment,
		Flag: in.Flag, Control: in.Control, ContextKind: in.ContextKind, Salt: in.Salt, Metrics: in.Metrics, Analysis: in.Analysis,
		PlannedDuration: in.PlannedDuration, Variations: in.Variations}
	out, err := a.s.Experiments.Create(c.UserContext(), caller(c), c.Params("project"), x)
	if err != nil {
		return err
	}
	setETag(c, out.Version)
	return c.Status(fiber.StatusCreated).JSON(out)
}

func (a *API) sendExperiment(c *fiber.Ctx, x domain.Experiment, err error) error {
	if err != nil {
		return err
	}
	setETag(c, x.Version)
	return c.JSON(x)
}

func (a *API) getExperiment(c *fiber.Ctx) error {
	x, err := a.s.Experiments.Get(c.UserContext(), caller(c), c.Params("project"), c.Params("experiment"))
	return a.sendExperiment(c, x, err)
}

func (a *API) updateExperiment(c *fiber.Ctx) error {
	var in experiments.UpdateInput
	if err := httpapi.DecodeJSON(c, &in); err != nil {
		return err
	}
	v, err := version(c, in.Version)
	if err != nil {
		return err
	}
	in.Version = v
	x, err := a.s.Experiments.Update(c.UserContext(), caller(c), c.Params("project"), c.Params("experiment"), in)
	return a.sendExperiment(c, x, err)
}

func (a *API) deleteExperiment(c *fiber.Ctx) error {
	if err := a.s.Experiments.Delete(c.UserContext(), caller(c), c.Params("project"), c.Params("experiment")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (a *API) startExperiment(c *fiber.Ctx) error {
	x, err := a.s.Experiments.Start(c.UserContext(), caller(c), c.Params("project"), c.Params("experiment"))
	return a.sendExperiment(c, x, err)
}

func (a *API) stopExperiment(c *fiber.Ctx) error {
	x, err := a.s.Experiments.Stop(c.UserContext(), caller(c), c.Params("project"), c.Params("experiment"))
	return a.sendExperiment(c, x, err)
}

func (a *API) concludeExperiment(c *fiber.Ctx) error {
	var in experiments.ConcludeInput
	if err := httpapi.DecodeJSON(c, &in); err != nil {
		return err
	}
	x, err := a.s.Experiments.Conclude(c.UserContext(), caller(c), c.Params("project"), c.Params("experiment"), in)
	return a.sendExperiment(c, x, err)
}

func (a *API) listOrgGuardrails(c *fiber.Ctx) error {
	gs, err := a.s.Guardrails.ListOrg(c.UserContext(), caller(c), c.Query("status"))
	if err != nil {
		return err
	}
	return c.JSON(list(gs))
}

func (a *API) listGuardrails(c *fiber.Ctx) error {
	gs, err := a.s.Guardrails.List(c.UserContext(), caller(c), c.Params("project"), c.Params("env"))
	if err != nil {
		return err
	}
	return c.JSON(list(gs))
}

func (a *API) createGuardrail(c *fiber.Ctx) error {
	var in guardrails.Input
	if err := httpapi.DecodeJSON(c, &in); err != nil {
		return err
	}
	g, err := a.s.Guardrails.Create(c.UserContext(), caller(c), c.Params("project"), c.Params("env"), in)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(g)
}

func (a *API) disableGuardrail(c *fiber.Ctx) error {
	if err := a.s.Guardrails.Disable(c.UserContext(), caller(c), c.Params("project"), c.Params("env"), c.Params("guardrail")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (a *API) breachGuardrail(c *fiber.Ctx) error {
	var in guardrails.BreachInput
	if err := httpapi.DecodeJSON(c, &in); err != nil {
		return err
	}
	g, err := a.s.Guardrails.Breach(c.UserContext(), caller(c), c.Params("project"), c.Params("env"), c.Params("guardrail"), in)
	if err != nil {
		return err
	}
	return c.JSON(g)
}
