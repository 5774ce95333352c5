// Package api is the jobs service's HTTP API (/v1, Fiber via platform/httpapi): scheduled
// changes, stale-flag reports and archiving, per-project Slack and stale-flag settings, and
// the alert history. Every route but the OpenAPI document needs the caller's flag service API
// token (Bearer), verified with the flag service, and the caller's right for the project or
// environment, checked the way the flag service checks it.
package api

import (
	"context"
	_ "embed"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/switchyard-io/switchyard/jobs/internal/authz"
	"github.com/switchyard-io/switchyard/jobs/internal/flagsvc"
	"github.com/switchyard-io/switchyard/jobs/internal/schedule"
	"github.com/switchyard-io/switchyard/jobs/internal/settings"
	"github.com/switchyard-io/switchyard/jobs/internal/stale"
	"github.com/switchyard-io/switchyard/jobs/internal/store/postgres"
	"github.com/switchyard-io/switchyard/platform/errs"
	"github.com/switchyard-io/switchyard/platform/httpapi"
)

// OpenAPI is the API's OpenAPI 3 document, served at /v1/openapi.json.
//
//go:embed openapi.json
var OpenAPI []byte

// Deps are what the handlers use.
type Deps struct {
	Store *postgres.Store
	// Flags is the flag service client; handlers act with the caller's token (WithToken).
	Flags    *flagsvc.Client
	Auth     *authz.Authorizer
	Reporter *stale.Reporter
	Now      func() time.Time
}

type handlers struct{ d Deps }

const callerKey = "caller"

// Mount registers the routes.
func Mount(app fiber.Router, d Deps) {
	if d.Now == nil {
		d.Now = time.Now
	}
	h := &handlers{d: d}
	v1 := app.Group("/v1")
	v1.Get("/openapi.json", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
		return c.Send(OpenAPI)
	})
	v1.Use(h.authenticate)
	p := "/projects/:project"
	v1.Get(p+"/scheduled-changes", h.listChanges)
	v1.Post(p+"/environments/:env/flags/:flag/scheduled-changes", h.createChange)
	v1.Get(p+"/scheduled-changes/:id", h.getChange)
	v1.Post(p+"/scheduled-changes/:id/cancel", h.cancelChange)
	v1.Get(p+"/stale-flags", h.staleReport)
	v1.Post(p+"/stale-flags/:flag/archive", h.archive)
	v1.Get(p+"/settings", h.getSettings)
	v1.Put(p+"/settings", h.putSettings)
	v1.Get(p+"/flags/:flag/stale-settings", h.getFlagSettings)
	v1.Put(p+"/flags/:flag/stale-settings", h.putFlagSettings)
	v1.Delete(p+"/flags/:flag/stale-settings", h.deleteFlagSettings)
	v1.Get(p+"/alerts", h.listAlerts)
	v1.Get(p+"/breaches", h.listBreaches)
}

func (h *handlers) authenticate(c *fiber.Ctx) error {
	token, ok := strings.CutPrefix(c.Get(fiber.HeaderAuthorization), "Bearer ")
	if !ok || strings.TrimSpace(token) == "" {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="switchyard"`)
		return errs.Unauthenticated("send your Switchyard API token as Authorization: Bearer <token>")
	}
	caller, err := h.d.Auth.Authenticate(c.UserContext(), strings.TrimSpace(token))
	if err != nil {
		if errs.KindOf(err) == errs.KindUnauthenticated {
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="switchyard", error="invalid_token"`)
		}
		return err
	}
	c.Locals(callerKey, caller)
	return c.Next()
}

func caller(c *fiber.Ctx) authz.Caller {
	cl, _ := c.Locals(callerKey).(authz.Caller)
	return cl
}

func ctx(c *fiber.Ctx) context.Context { return c.UserContext() }

type items[T any] struct {
	Items []T `json:"items"`
}

func list[T any](v []T) items[T] {
	if v == nil {
		v = []T{}
	}
	return items[T]{Items: v}
}

func intQuery(c *fiber.Ctx, name string, def, maxv int) (int, error) {
	s := c.Query(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxv {
		return 0, errs.Malformed(name, "must be an integer between 1 and %d", maxv)
	}
	return n, nil
}

func actor(cl authz.Caller) schedule.Actor {
	return schedule.Actor{Type: cl.Me.Actor.Type, ID: cl.Me.Actor.ID, Name: cl.Me.Actor.Name}
}

// --- scheduled changes ---

func (h *handlers) listChanges(c *fiber.Ctx) error {
	project := c.Params("project")
	if _, err := h.d.Auth.ReadProject(ctx(c), caller(c), project); err != nil {
		return err
	}
	status := c.Query("status")
	switch status {
	case "", schedule.StatusPending, schedule.StatusRunning, schedule.StatusDone, schedule.StatusFailed, schedule.StatusCancelled:
	default:
		return errs.Invalid("status", "must be pending, running, done, failed or cancelled")
	}
	limit, err := intQuery(c, "limit", 100, 500)
	if err != nil {
		return err
	}
	cs, err := h.d.Store.Changes(ctx(c), postgres.ChangeFilter{Project: project, Environment: c.Query("environment"),
		Flag: c.Query("flag"), Status: status, Limit: limit})
	if err != nil {
		return err
	}
	return c.JSON(list(cs))
}

func (h *handlers) createChange(c *fiber.Ctx) error {
	cl := caller(c)
	project, envKey, flagKey := c.Params("project"), c.Params("env"), c.Params("flag")
	var in schedule.CreateInput
	if err := httpapi.DecodeJSON(c, &in); err != nil {
		return err
	}
	env, err := h.d.Auth.RequireEnvironment(ctx(c), cl, project, envKey)
	if err != nil {
		return err
	}
	steps, err := in.Plan(h.d.Now())
	if err != nil {
		return err
	}
	// The flag as the caller sees it now: the version the change is based on, and the
	// variations a rollout may name.
	f, err := h.d.Flags.WithToken(cl.Token).Flag(ctx(c), project, flagKey)
	if err != nil {
		return err
	}
	cfg, ok := f.Configs[envKey]
	if !ok {
		return errs.NotFound("flag %q has no configuration in environment %q", flagKey, envKey)
	}
	known := map[string]bool{}
	for _, v := range f.Variations {
		known[v.Key] = true
	}
	for i, st := range steps {
		for j, w := range st.Action.Weights {
			if !known[w.Variation] {
				field := "steps[" + strconv.Itoa(i) + "].action.weights[" + strconv.Itoa(j) + "].variation"
				if in.Ramp != nil {
					field = "ramp.variation"
					if w.Variation == in.Ramp.Rest {
						field = "ramp.rest"
					}
				}
				return errs.Invalid(field, "flag %q has no variation %q", flagKey, w.Variation)
			}
		}
	}
	kind := "change"
	if len(steps) > 1 {
		kind = "ramp"
	}
	ch, err := h.d.Store.CreateChange(ctx(c), schedule.Change{Project: project, Environment: envKey, EnvironmentID: env.ID, Flag: flagKey,
		Kind: kind, Comment: in.Comment, BaseVersion: cfg.Version, CreatedBy: actor(cl), CreatedAt: h.d.Now().UTC(), Steps: steps})
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(ch)
}

func changeID(c *fiber.Ctx) (int64, error) {
	id, err := strconv.ParseInt(c.Params("id"), 10, 64)
	if err != nil || id < 1 {
		return 0, errs.Malformed("id", "must be a scheduled change id")
	}
	return id, nil
}

func (h *handlers) getChange(c *fiber.Ctx) error {
	id, err := changeID(c)
	if err != nil {
		return err
	}
	project := c.Params("project")
	if _, err := h.d.Auth.ReadProject(ctx(c), caller(c), project); err != nil {
		return err
	}
	ch, err := h.d.Store.Change(ctx(c), project, id)
	if err != nil {
		return err
	}
	return c.JSON(ch)
}

func (h *handlers) cancelChange(c *fiber.Ctx) error {
	id, err := changeID(c)
	if err != nil {
		return err
	}
	cl, project := caller(c), c.Params("project")
	if _, err := h.d.Auth.ReadProject(ctx(c), cl, project); err != nil {
		return err
	}
	ch, err := h.d.Store.Change(ctx(c), project, id)
	if err != nil {
		return err
	}
	if _, err := h.d.Auth.RequireEnvironment(ctx(c), cl, project, ch.Environment); err != nil {
		return err
	}
	ch, err = h.d.Store.CancelChange(ctx(c), project, id, actor(cl))
	if err != nil {
		return err
	}
	return c.JSON(ch)
}

// --- stale flags ---

func (h *handlers) staleReport(c *fiber.Ctx) error {
	cl, project := caller(c), c.Params("project")
	if _, err := h.d.Auth.ReadProject(ctx(c), cl, project); err != nil {
		return err
	}
	rep, err := h.d.Reporter.Report(ctx(c), h.d.Flags.WithToken(cl.Token), stale.Query{Project: project, Environment: c.Query("environment")})
	if err != nil {
		return err
	}
	return c.JSON(rep)
}

func (h *handlers) archive(c *fiber.Ctx) error {
	cl, project, flagKey := caller(c), c.Params("project"), c.Params("flag")
	var in struct {
		Comment string `json:"comment"`
	}
	if len(c.Body()) > 0 {
		if err := httpapi.DecodeJSON(c, &in); err != nil {
			return err
		}
	}
	if _, err := h.d.Auth.RequireProject(ctx(c), cl, project, authz.WriteFlag); err != nil {
		return err
	}
	fs := h.d.Flags.WithToken(cl.Token)
	rep, err := h.d.Reporter.Report(ctx(c), fs, stale.Query{Project: project, Flag: flagKey})
	if err != nil {
		return err
	}
	if len(rep.Items) == 0 {
		return stale.ErrNotStale
	}
	comment := stale.ArchiveComment(cl.Label(), rep.Items[0])
	if in.Comment != "" {
		comment += " — " + in.Comment
	}
	f, err := fs.ArchiveFlag(ctx(c), project, flagKey, comment)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"flag": f.Key, "lifecycle": f.Lifecycle, "stale": rep.Items[0], "comment": comment})
}

// --- settings ---

func (h *handlers) getSettings(c *fiber.Ctx) error {
	project := c.Params("project")
	if _, err := h.d.Auth.ReadProject(ctx(c), caller(c), project); err != nil {
		return err
	}
	s, err := h.d.Store.ProjectSettings(ctx(c), project)
	if err != nil {
		return err
	}
	return c.JSON(s)
}

func (h *handlers) putSettings(c *fiber.Ctx) error {
	cl, project := caller(c), c.Params("project")
	var in struct {
		SlackChannel             string `json:"slack_channel"`
		StaleNoEvaluationsDays   *int   `json:"stale_no_evaluations_days"`
		StaleSingleVariationDays *int   `json:"stale_single_variation_days"`
		DigestEnabled            *bool  `json:"digest_enabled"`
	}
	if err := httpapi.DecodeJSON(c, &in); err != nil {
		return err
	}
	if err := settings.ValidateChannel(in.SlackChannel); err != nil {
		return err
	}
	if err := settings.ValidateDays("stale_no_evaluations_days", in.StaleNoEvaluationsDays); err != nil {
		return err
	}
	if err := settings.ValidateDays("stale_single_variation_days", in.StaleSingleVariationDays); err != nil {
		return err
	}
	if _, err := h.d.Auth.RequireProject(ctx(c), cl, project, authz.ManageProject); err != nil {
		return err
	}
	digest := true
	if in.DigestEnabled != nil {
		digest = *in.DigestEnabled
	}
	s, err := h.d.Store.PutProjectSettings(ctx(c), settings.Project{Project: project, SlackChannel: in.SlackChannel,
		StaleNoEvaluationsDays: in.StaleNoEvaluationsDays, StaleSingleVariationDays: in.StaleSingleVariationDays,
		DigestEnabled: digest, UpdatedBy: cl.Label()})
	if err != nil {
		return err
	}
	return c.JSON(s)
}

func (h *handlers) getFlagSettings(c *fiber.Ctx) error {
	project, flagKey := c.Params("project"), c.Params("flag")
	if _, err := h.d.Auth.ReadProject(ctx(c), caller(c), project); err != nil {
		return err
	}
	all, err := h.d.Store.FlagSettings(ctx(c), project)
	if err != nil {
		return err
	}
	f, ok := all[flagKey]
	if !ok {
		return errs.NotFound("flag %q has no stale-flag settings of its own", flagKey)
	}
	return c.JSON(f)
}

func (h *handlers) putFlagSettings(c *fiber.Ctx) error {
	cl, project, flagKey := caller(c), c.Params("project"), c.Params("flag")
	var in struct {
		NoEvaluationsDays   *int `json:"no_evaluations_days"`
		SingleVariationDays *int `json:"single_variation_days"`
		Ignore              bool `json:"ignore"`
	}
	if err := httpapi.DecodeJSON(c, &in); err != nil {
		return err
	}
	if err := settings.ValidateDays("no_evaluations_days", in.NoEvaluationsDays); err != nil {
		return err
	}
	if err := settings.ValidateDays("single_variation_days", in.SingleVariationDays); err != nil {
		return err
	}
	if _, err := h.d.Auth.RequireProject(ctx(c), cl, project, authz.WriteFlag); err != nil {
		return err
	}
	if _, err := h.d.Flags.WithToken(cl.Token).Flag(ctx(c), project, flagKey); err != nil {
		return err
	}
	f, err := h.d.Store.PutFlagSettings(ctx(c), settings.Flag{Project: project, Flag: flagKey, NoEvaluationsDays: in.NoEvaluationsDays,
		SingleVariationDays: in.SingleVariationDays, Ignore: in.Ignore, UpdatedBy: cl.Label()})
	if err != nil {
		return err
	}
	return c.JSON(f)
}

func (h *handlers) deleteFlagSettings(c *fiber.Ctx) error {
	cl, project, flagKey := caller(c), c.Params("project"), c.Params("flag")
	if _, err := h.d.Auth.RequireProject(ctx(c), cl, project, authz.WriteFlag); err != nil {
		return err
	}
	if err := h.d.Store.DeleteFlagSettings(ctx(c), project, flagKey); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// --- alerts and breaches ---

func (h *handlers) listAlerts(c *fiber.Ctx) error {
	project := c.Params("project")
	if _, err := h.d.Auth.ReadProject(ctx(c), caller(c), project); err != nil {
		return err
	}
	limit, err := intQuery(c, "limit", 100, 500)
	if err != nil {
		return err
	}
	as, err := h.d.Store.Alerts(ctx(c), project, limit)
	if err != nil {
		return err
	}
	return c.JSON(list(as))
}

func (h *handlers) listBreaches(c *fiber.Ctx) error {
	project := c.Params("project")
	if _, err := h.d.Auth.ReadProject(ctx(c), caller(c), project); err != nil {
		return err
	}
	all, err := h.d.Store.Breaches(ctx(c))
	if err != nil {
		return err
	}
	var out []postgres.Breach
	for _, b := range all {
		if b.Project == project {
			out = append(out, b)
		}
	}
	return c.JSON(list(out))
}
