package api

import (
	"context"
	"encoding/json"
	"strconv"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/gofiber/fiber/v2"

	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
	"github.com/switchyard-io/switchyard/flagsvc/internal/flags"
	"github.com/switchyard-io/switchyard/flagsvc/internal/store"
	"github.com/switchyard-io/switchyard/platform/errs"
	"github.com/switchyard-io/switchyard/platform/httpapi"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

func (a *API) listFlags(c *fiber.Ctx) error {
	limit, err := intQuery(c, "limit", 50)
	if err != nil {
		return err
	}
	on, err := boolQuery(c, "on")
	if err != nil {
		return err
	}
	kind := c.Query("kind")
	switch ruleset.FlagKind(kind) {
	case "", ruleset.KindBoolean, ruleset.KindString, ruleset.KindNumber, ruleset.KindJSON:
	default:
		return errs.Invalid("kind", "must be boolean, string, number or json")
	}
	lifecycle := c.Query("lifecycle")
	switch lifecycle {
	case "", "all", string(domain.LifecycleActive), string(domain.LifecycleDeprecated), string(domain.LifecycleArchived):
	default:
		return errs.Invalid("lifecycle", "must be active, deprecated, archived or all")
	}
	in := flags.ListInput{EnvironmentKey: c.Query("environment"), FlagFilter: store.FlagFilter{
		Query: c.Query("q"), Tag: c.Query("tag"), OwnerID: c.Query("owner"), Kind: kind, Lifecycle: lifecycle,
		On: on, Sort: c.Query("sort"), Cursor: c.Query("cursor"), Limit: limit,
	}}
	page, err := a.s.Flags.List(c.UserContext(), caller(c), c.Params("project"), in)
	if err != nil {
		return err
	}
	return c.JSON(page)
}

func (a *API) createFlag(c *fiber.Ctx) error {
	var in flags.CreateInput
	if err := httpapi.DecodeJSON(c, &in); err != nil {
		return err
	}
	f, err := a.s.Flags.Create(c.UserContext(), caller(c), c.Params("project"), in)
	if err != nil {
		return err
	}
	setETag(c, f.Version)
	return c.Status(fiber.StatusCreated).JSON(f)
}

func (a *API) getFlag(c *fiber.Ctx) error {
	f, err := a.s.Flags.Get(c.UserContext(), caller(c), c.Params("project"), c.Params("flag"))
	if err != nil {
		return err
	}
	setETag(c, f.Version)
	return c.JSON(f)
}

func (a *API) updateFlag(c *fiber.Ctx) error {
	var in flags.UpdateInput
	if err := httpapi.DecodeJSON(c, &in); err != nil {
		return err
	}
	v, err := version(c, in.Version)
	if err != nil {
		return err
	}
	in.Version = v
	f, err := a.s.Flags.Update(c.UserContext(), caller(c), c.Params("project"), c.Params("flag"), in)
	if err != nil {
		return err
	}
	setETag(c, f.Version)
	return c.JSON(f)
}

func (a *API) deleteFlag(c *fiber.Ctx) error {
	v, err := version(c, nil)
	if err != nil {
		return err
	}
	if err := a.s.Flags.Delete(c.UserContext(), caller(c), c.Params("project"), c.Params("flag"), v); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (a *API) bulkFlags(c *fiber.Ctx) error {
	var in flags.BulkInput
	if err := httpapi.DecodeJSON(c, &in); err != nil {
		return err
	}
	res, err := a.s.Flags.Bulk(c.UserContext(), caller(c), c.Params("project"), in)
	if err != nil {
		return err
	}
	return c.JSON(res)
}

func (a *API) sendConfig(c *fiber.Ctx, fe domain.FlagEnvironment) error {
	setETag(c, fe.Version)
	return c.JSON(fe)
}

func (a *API) getConfig(c *fiber.Ctx) error {
	fe, err := a.s.Flags.GetConfig(c.UserContext(), caller(c), c.Params("project"), c.Params("flag"), c.Params("env"))
	if err != nil {
		return err
	}
	return a.sendConfig(c, fe)
}

// configBody is a full configuration plus the version it is based on and a comment.
type configBody struct {
	domain.FlagConfig
	Version *int64 `json:"version"`
	Comment string `json:"comment"`
}

func (a *API) putConfig(c *fiber.Ctx) error {
	var in configBody
	if err := httpapi.DecodeJSON(c, &in); err != nil {
		return err
	}
	v, err := version(c, in.Version)
	if err != nil {
		return err
	}
	fe, err := a.s.Flags.UpdateConfig(c.UserContext(), caller(c), c.Params("project"), c.Params("flag"), c.Params("env"), in.FlagConfig, v, in.Comment)
	if err != nil {
		return err
	}
	return a.sendConfig(c, fe)
}

// patchConfig applies a JSON merge patch (RFC 7396) to the configuration. The top-level keys
// "version" and "comment" are not configuration: they say what the patch is based on and why.
func (a *API) patchConfig(c *fiber.Ctx) error {
	var doc map[string]json.RawMessage
	if err := httpapi.Decode(c.Body(), &doc); err != nil {
		return err
	}
	var meta struct {
		Version *int64
		Comment string
	}
	if raw, ok := doc["version"]; ok {
		if err := json.Unmarshal(raw, &meta.Version); err != nil {
			return errs.Malformed("version", "must be a number")
		}
		delete(doc, "version")
	}
	if raw, ok := doc["comment"]; ok {
		if err := json.Unmarshal(raw, &meta.Comment); err != nil {
			return errs.Malformed("comment", "must be a string")
		}
		delete(doc, "comment")
	}
	patch, _ := json.Marshal(doc)
	v, err := version(c, meta.Version)
	if err != nil {
		return err
	}
	fe, err := a.s.Flags.ChangeConfig(c.UserContext(), caller(c), c.Params("project"), c.Params("flag"), c.Params("env"), flags.ConfigChange{
		Version: v, Comment: meta.Comment, Change: flags.ChangeUpdate,
		Edit: func(_ context.Context, _ *store.Tx, cur *domain.FlagConfig, _ *domain.Flag, _ string) error {
			merged, err := jsonpatch.MergePatch(domain.ConfigJSON(cur), patch)
			if err != nil {
				return errs.Malformed("", "invalid merge patch: %v", err)
			}
			var next domain.FlagConfig
			if err := httpapi.Decode(merged, &next); err != nil {
				return err
			}
			*cur = next
			return nil
		}})
	if err != nil {
		return err
	}
	return a.sendConfig(c, fe)
}

func (a *API) toggle(c *fiber.Ctx) error {
	var in struct {
		On      *bool  `json:"on"`
		Version *int64 `json:"version"`
		Comment string `json:"comment"`
	}
	if err := httpapi.DecodeJSON(c, &in); err != nil {
		return err
	}
	if in.On == nil {
		return errs.Invalid("on", "is required (true or false)")
	}
	v, err := version(c, in.Version)
	if err != nil {
		return err
	}
	fe, err := a.s.Flags.Toggle(c.UserContext(), caller(c), c.Params("project"), c.Params("flag"), c.Params("env"), *in.On, v, in.Comment)
	if err != nil {
		return err
	}
	return a.sendConfig(c, fe)
}

func (a *API) kill(c *fiber.Ctx) error {
	var in struct {
		Reason string `json:"reason"`
	}
	if err := httpapi.DecodeJSON(c, &in); err != nil {
		return err
	}
	fe, err := a.s.Flags.Kill(c.UserContext(), caller(c), c.Params("project"), c.Params("flag"), c.Params("env"), in.Reason)
	if err != nil {
		return err
	}
	return a.sendConfig(c, fe)
}

func (a *API) rollback(c *fiber.Ctx) error {
	var in struct {
		ToVersion int64  `json:"to_version"`
		Version   *int64 `json:"version"`
		Comment   string `json:"comment"`
	}
	if err := httpapi.DecodeJSON(c, &in); err != nil {
		return err
	}
	v, err := version(c, in.Version)
	if err != nil {
		return err
	}
	fe, err := a.s.Flags.Rollback(c.UserContext(), caller(c), c.Params("project"), c.Params("flag"), c.Params("env"), in.ToVersion, v, in.Comment)
	if err != nil {
		return err
	}
	return a.sendConfig(c, fe)
}

func (a *API) history(c *fiber.Ctx) error {
	limit, err := intQuery(c, "limit", 50)
	if err != nil {
		return err
	}
	var before int64
	if s := c.Query("before"); s != "" {
		if before, err = strconv.ParseInt(s, 10, 64); err != nil {
			return errs.Malformed("before", "must be a version number")
		}
	}
	h, err := a.s.Flags.History(c.UserContext(), caller(c), c.Params("project"), c.Params("flag"), c.Params("env"), before, limit)
	if err != nil {
		return err
	}
	return c.JSON(h)
}
