package api

import (
	"bytes"
	"io"

	"github.com/gofiber/fiber/v2"

	"github.com/switchyard-io/switchyard/flagsvc/internal/segments"
	"github.com/switchyard-io/switchyard/platform/httpapi"
)

func (a *API) listSegments(c *fiber.Ctx) error {
	ss, err := a.s.Segments.List(c.UserContext(), caller(c), c.Params("project"), c.Params("env"))
	if err != nil {
		return err
	}
	return c.JSON(list(ss))
}

func (a *API) createSegment(c *fiber.Ctx) error {
	var in segments.Input
	if err := httpapi.DecodeJSON(c, &in); err != nil {
		return err
	}
	s, err := a.s.Segments.Create(c.UserContext(), caller(c), c.Params("project"), c.Params("env"), in)
	if err != nil {
		return err
	}
	setETag(c, s.Version)
	return c.Status(fiber.StatusCreated).JSON(s)
}

func (a *API) getSegment(c *fiber.Ctx) error {
	s, err := a.s.Segments.Get(c.UserContext(), caller(c), c.Params("project"), c.Params("env"), c.Params("segment"))
	if err != nil {
		return err
	}
	setETag(c, s.Version)
	return c.JSON(s)
}

func (a *API) updateSegment(c *fiber.Ctx) error {
	var in segments.Input
	if err := httpapi.DecodeJSON(c, &in); err != nil {
		return err
	}
	v, err := version(c, in.Version)
	if err != nil {
		return err
	}
	in.Version = v
	s, err := a.s.Segments.Update(c.UserContext(), caller(c), c.Params("project"), c.Params("env"), c.Params("segment"), in)
	if err != nil {
		return err
	}
	setETag(c, s.Version)
	return c.JSON(s)
}

func (a *API) deleteSegment(c *fiber.Ctx) error {
	v, err := version(c, nil)
	if err != nil {
		return err
	}
	if err := a.s.Segments.Delete(c.UserContext(), caller(c), c.Params("project"), c.Params("env"), c.Params("segment"), v); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// importSegment streams a CSV body (one key, or context_kind,key, per line) into a list. The
// body has no version field: If-Match carries the segment version the import is based on.
func (a *API) importSegment(c *fiber.Ctx) error {
	v, err := version(c, nil)
	if err != nil {
		return err
	}
	var body io.Reader = c.Context().RequestBodyStream()
	if body == nil {
		body = bytes.NewReader(c.Body())
	}
	in := segments.ImportInput{List: c.Query("list", "included"), ContextKind: c.Query("context_kind"), Mode: c.Query("mode"), Version: v}
	res, err := a.s.Segments.Import(c.UserContext(), caller(c), c.Params("project"), c.Params("env"), c.Params("segment"), in, body)
	if err != nil {
		return err
	}
	setETag(c, res.Segment.Version)
	return c.JSON(res)
}
