package api

import (
	"bufio"
	"context"
	"encoding/json"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/switchyard-io/switchyard/flagsvc/internal/access"
	"github.com/switchyard-io/switchyard/flagsvc/internal/audit"
	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
	"github.com/switchyard-io/switchyard/flagsvc/internal/store"
	"github.com/switchyard-io/switchyard/platform/errs"
)

// auditFilter reads the audit filters shared by the query and the export: actor, action
// (exact, or a prefix ending in '.'), resource_type, resource (id or key), project (key),
// from and to (RFC 3339).
func (a *API) auditFilter(c *fiber.Ctx) (store.AuditFilter, error) {
	cl := caller(c)
	f := store.AuditFilter{OrgID: cl.P.OrgID, Actor: c.Query("actor"), Action: c.Query("action"),
		ResourceType: c.Query("resource_type"), Resource: c.Query("resource")}
	for name, dst := range map[string]*time.Time{"from": &f.From, "to": &f.To} {
		if s := c.Query(name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return f, errs.Malformed(name, "must be an RFC 3339 time")
			}
			*dst = t
		}
	}
	target := access.Target{}
	if key := c.Query("project"); key != "" {
		d, err := a.s.Environments.GetProject(c.UserContext(), cl, key)
		if err != nil {
			return f, err
		}
		f.ProjectID, target.ProjectID = d.ID, d.ID
	}
	// Organization-wide audit needs organization rights; a project's needs project rights.
	action := access.ReadProject
	if target.ProjectID == "" {
		action = access.ManageOrg
	}
	return f, cl.P.Require(action, target)
}

func (a *API) queryAudit(c *fiber.Ctx) error {
	f, err := a.auditFilter(c)
	if err != nil {
		return err
	}
	if f.Limit, err = intQuery(c, "limit", 50); err != nil {
		return err
	}
	if n, err := intQuery(c, "before_id", 0); err != nil {
		return err
	} else {
		f.BeforeID = int64(n)
	}
	var entries []domain.AuditEntry
	err = a.s.Store.Read(c.UserContext(), func(tx *store.Tx) error {
		var err error
		entries, err = tx.QueryAudit(c.UserContext(), f)
		return err
	})
	if err != nil {
		return err
	}
	out := struct {
		Items        []domain.AuditEntry `json:"items"`
		NextBeforeID int64               `json:"next_before_id,omitempty"`
	}{Items: entries}
	if out.Items == nil {
		out.Items = []domain.AuditEntry{}
	}
	if f.Limit > 0 && len(entries) == f.Limit {
		out.NextBeforeID = entries[len(entries)-1].ID
	}
	return c.JSON(out)
}

// exportAudit streams every matching entry as CSV or JSON lines without buffering them.
func (a *API) exportAudit(c *fiber.Ctx) error {
	f, err := a.auditFilter(c)
	if err != nil {
		return err
	}
	format := c.Query("format", "json")
	if format != "json" && format != "csv" {
		return errs.Invalid("format", "must be json or csv")
	}
	st := a.s.Store
	if format == "csv" {
		c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
		c.Set(fiber.HeaderContentDisposition, `attachment; filename="audit.csv"`)
	} else {
		c.Set(fiber.HeaderContentType, "application/x-ndjson")
		c.Set(fiber.HeaderContentDisposition, `attachment; filename="audit.jsonl"`)
	}
	// The stream writer runs after the handler returns, so it must not use the request context.
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		var write func(domain.AuditEntry) error
		flush := w.Flush
		if format == "csv" {
			cw, err := audit.NewCSVWriter(w)
			if err != nil {
				return
			}
			defer cw.Flush()
			write = cw.Write
			flush = func() error {
				if err := cw.Flush(); err != nil {
					return err
				}
				return w.Flush()
			}
		} else {
			enc := json.NewEncoder(w)
			write = func(e domain.AuditEntry) error { return enc.Encode(e) }
		}
		n := 0
		_ = st.StreamAudit(ctx, f, func(e domain.AuditEntry) error {
			if err := write(e); err != nil {
				return err
			}
			if n++; n%500 == 0 {
				return flush()
			}
			return nil
		})
	})
	return nil
}
