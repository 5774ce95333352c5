package api

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/switchyard-io/switchyard/flagsvc/internal/access"
	"github.com/switchyard-io/switchyard/flagsvc/internal/environments"
	"github.com/switchyard-io/switchyard/flagsvc/internal/publisher"
	"github.com/switchyard-io/switchyard/flagsvc/internal/sdkkeys"
	"github.com/switchyard-io/switchyard/platform/errs"
	"github.com/switchyard-io/switchyard/platform/httpapi"
)

func (a *API) listProjects(c *fiber.Ctx) error {
	ps, err := a.s.Environments.ListProjects(c.UserContext(), caller(c))
	if err != nil {
		return err
	}
	return c.JSON(list(ps))
}

func (a *API) createProject(c *fiber.Ctx) error {
	var in environments.ProjectInput
	if err := httpapi.DecodeJSON(c, &in); err != nil {
		return err
	}
	p, err := a.s.Environments.CreateProject(c.UserContext(), caller(c), in)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(p)
}

func (a *API) getProject(c *fiber.Ctx) error {
	p, err := a.s.Environments.GetProject(c.UserContext(), caller(c), c.Params("project"))
	if err != nil {
		return err
	}
	return c.JSON(p)
}

func (a *API) updateProject(c *fiber.Ctx) error {
	var in environments.ProjectPatch
	if err := httpapi.DecodeJSON(c, &in); err != nil {
		return err
	}
	p, err := a.s.Environments.UpdateProject(c.UserContext(), caller(c), c.Params("project"), in)
	if err != nil {
		return err
	}
	return c.JSON(p)
}

func (a *API) deleteProject(c *fiber.Ctx) error {
	if err := a.s.Environments.DeleteProject(c.UserContext(), caller(c), c.Params("project")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (a *API) listEnvironments(c *fiber.Ctx) error {
	es, err := a.s.Environments.ListEnvironments(c.UserContext(), caller(c), c.Params("project"))
	if err != nil {
		return err
	}
	return c.JSON(list(es))
}

func (a *API) createEnvironment(c *fiber.Ctx) error {
	var in environments.EnvironmentInput
	if err := httpapi.DecodeJSON(c, &in); err != nil {
		return err
	}
	e, err := a.s.Environments.CreateEnvironment(c.UserContext(), caller(c), c.Params("project"), in)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(e)
}

func (a *API) getEnvironment(c *fiber.Ctx) error {
	e, err := a.s.Environments.GetEnvironment(c.UserContext(), caller(c), c.Params("project"), c.Params("env"))
	if err != nil {
		return err
	}
	return c.JSON(e)
}

func (a *API) updateEnvironment(c *fiber.Ctx) error {
	var in environments.EnvironmentInput
	if err := httpapi.DecodeJSON(c, &in); err != nil {
		return err
	}
	e, err := a.s.Environments.UpdateEnvironment(c.UserContext(), caller(c), c.Params("project"), c.Params("env"), in)
	if err != nil {
		return err
	}
	return c.JSON(e)
}

func (a *API) deleteEnvironment(c *fiber.Ctx) error {
	if err := a.s.Environments.DeleteEnvironment(c.UserContext(), caller(c), c.Params("project"), c.Params("env")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (a *API) cloneEnvironment(c *fiber.Ctx) error {
	var in environments.EnvironmentInput
	if err := httpapi.DecodeJSON(c, &in); err != nil {
		return err
	}
	e, err := a.s.Environments.CloneEnvironment(c.UserContext(), caller(c), c.Params("project"), c.Params("env"), in)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(e)
}

func (a *API) lockEnvironment(c *fiber.Ctx) error {
	var in environments.LockInput
	if err := httpapi.DecodeJSON(c, &in); err != nil {
		return err
	}
	e, err := a.s.Environments.SetLock(c.UserContext(), caller(c), c.Params("project"), c.Params("env"), in)
	if err != nil {
		return err
	}
	return c.JSON(e)
}

// previewRuleset shows the compiled ruleset SDKs get, without the SDK key hashes.
func (a *API) previewRuleset(c *fiber.Ctx) error {
	e, err := a.s.Environments.GetEnvironment(c.UserContext(), caller(c), c.Params("project"), c.Params("env"))
	if err != nil {
		return err
	}
	p := caller(c).P
	if err := p.Require(access.ReadProject, access.Target{ProjectID: e.ProjectID}); err != nil {
		return err
	}
	rs, found, err := publisher.Compile(c.UserContext(), a.s.Store, e.ID, time.Now())
	if err != nil {
		return err
	}
	if !found {
		return errs.NotFound("environment not found")
	}
	rs.SDKKeys = nil
	return c.JSON(rs)
}

func (a *API) listSDKKeys(c *fiber.Ctx) error {
	all, err := boolQuery(c, "include_revoked")
	if err != nil {
		return err
	}
	ks, err := a.s.SDKKeys.List(c.UserContext(), caller(c), c.Params("project"), c.Params("env"), all != nil && *all)
	if err != nil {
		return err
	}
	return c.JSON(list(ks))
}

func (a *API) createSDKKey(c *fiber.Ctx) error {
	var in sdkkeys.CreateInput
	if err := httpapi.DecodeJSON(c, &in); err != nil {
		return err
	}
	k, err := a.s.SDKKeys.Create(c.UserContext(), caller(c), c.Params("project"), c.Params("env"), in)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusCreated).JSON(k)
}

func (a *API) rotateSDKKey(c *fiber.Ctx) error {
	var in struct {
		Grace string `json:"grace"`
	}
	if len(c.Body()) > 0 {
		if err := httpapi.DecodeJSON(c, &in); err != nil {
			return err
		}
	}
	grace := sdkkeys.DefaultGrace
	if in.Grace != "" {
		d, err := time.ParseDuration(in.Grace)
		if err != nil {
			return errs.Invalid("grace", "must be a duration such as 24h")
		}
		grace = d
	}
	k, err := a.s.SDKKeys.Rotate(c.UserContext(), caller(c), c.Params("project"), c.Params("env"), c.Params("key"), grace)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusCreated).JSON(k)
}

func (a *API) revokeSDKKey(c *fiber.Ctx) error {
	if err := a.s.SDKKeys.Revoke(c.UserContext(), caller(c), c.Params("project"), c.Params("env"), c.Params("key")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
