package api

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
	"github.com/switchyard-io/switchyard/flagsvc/internal/orgs"
	"github.com/switchyard-io/switchyard/flagsvc/internal/tokens"
	"github.com/switchyard-io/switchyard/platform/httpapi"
)

// items wraps a list response.
type items[T any] struct {
	Items []T `json:"items"`
}

func list[T any](v []T) items[T] {
	if v == nil {
		v = []T{}
	}
	return items[T]{Items: v}
}

// meResponse is GET /me: the caller, and the expiry of the token this request was made with
// (never the token or its hash). A client learns from it the longest-lived token POST /tokens
// will let it create, instead of finding out from a 422.
type meResponse struct {
	orgs.Me
	Token callerToken `json:"token"`
}

type callerToken struct {
	// ExpiresAt is null for a token that does not expire.
	ExpiresAt *time.Time `json:"expires_at"`
}

func (a *API) me(c *fiber.Ctx) error {
	cl := caller(c)
	me, err := a.s.Orgs.WhoAmI(c.UserContext(), cl)
	if err != nil {
		return err
	}
	out := meResponse{Me: me}
	if at := cl.P.TokenExpiresAt; at != nil {
		utc := at.UTC()
		out.Token.ExpiresAt = &utc
	}
	return c.JSON(out)
}

func (a *API) listMembers(c *fiber.Ctx) error {
	ms, err := a.s.Orgs.ListMembers(c.UserContext(), caller(c))
	if err != nil {
		return err
	}
	return c.JSON(list(ms))
}

func (a *API) addMember(c *fiber.Ctx) error {
	var in orgs.MemberInput
	if err := httpapi.DecodeJSON(c, &in); err != nil {
		return err
	}
	m, err := a.s.Orgs.AddMember(c.UserContext(), caller(c), in)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(m)
}

func (a *API) updateMember(c *fiber.Ctx) error {
	var in struct {
		Role       domain.Role `json:"role"`
		ProjectIDs []string    `json:"project_ids"`
	}
	if err := httpapi.DecodeJSON(c, &in); err != nil {
		return err
	}
	m, err := a.s.Orgs.UpdateMember(c.UserContext(), caller(c), c.Params("user"), in.Role, in.ProjectIDs)
	if err != nil {
		return err
	}
	return c.JSON(m)
}

func (a *API) removeMember(c *fiber.Ctx) error {
	if err := a.s.Orgs.RemoveMember(c.UserContext(), caller(c), c.Params("user")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (a *API) listTokens(c *fiber.Ctx) error {
	ts, err := a.s.Tokens.List(c.UserContext(), caller(c))
	if err != nil {
		return err
	}
	return c.JSON(list(ts))
}

func (a *API) createToken(c *fiber.Ctx) error {
	var in tokens.CreateInput
	if err := httpapi.DecodeJSON(c, &in); err != nil {
		return err
	}
	t, err := a.s.Tokens.Create(c.UserContext(), caller(c), in)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusCreated).JSON(t)
}

func (a *API) tokenDescendants(c *fiber.Ctx) error {
	ts, err := a.s.Tokens.Descendants(c.UserContext(), caller(c), c.Params("token"))
	if err != nil {
		return err
	}
	return c.JSON(list(ts))
}

func (a *API) revokeToken(c *fiber.Ctx) error {
	cascade, err := boolQuery(c, "cascade")
	if err != nil {
		return err
	}
	if err := a.s.Tokens.Revoke(c.UserContext(), caller(c), c.Params("token"), cascade != nil && *cascade); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
