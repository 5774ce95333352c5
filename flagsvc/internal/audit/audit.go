// Package audit builds the entries of the append-only audit log (who did what to which
// resource, before and after, from where) and exports them. Entries are written by the
// feature services in the same transaction as the change they record.
package audit

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"strconv"
	"time"

	"github.com/switchyard-io/switchyard/flagsvc/internal/access"
	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
)

// Request is where a change came from.
type Request struct {
	IP        string
	UserAgent string
}

// Caller is the principal making a change and where the request came from.
type Caller struct {
	P   *access.Principal
	Req Request
	// Origin marks changes made on someone's behalf by a service ("scheduled" for the jobs
	// service's scheduled changes); empty for direct changes.
	Origin string
	// Comment is the request's own comment (the X-Switchyard-Comment header), recorded on every
	// entry the request writes, after the entry's own comment if it has one.
	Comment string
}

// Resource identifies what an entry is about.
type Resource struct {
	Type, ID, Key            string
	ProjectID, EnvironmentID string
}

// Entry builds an audit entry; before and after are marshalled to JSON (nil stays empty). The
// comment is the entry's own (a body's "comment", or what the service says of it), followed by
// the caller's (Caller.Comment) when that says something else.
func Entry(c Caller, action string, r Resource, before, after any, comment string) domain.AuditEntry {
	switch {
	case comment == "":
		comment = c.Comment
	case c.Comment != "" && c.Comment != comment:
		comment += " — " + c.Comment
	}
	return domain.AuditEntry{
		Actor:         c.P.Actor,
		Action:        action,
		ResourceType:  r.Type,
		ResourceID:    r.ID,
		ResourceKey:   r.Key,
		ProjectID:     r.ProjectID,
		EnvironmentID: r.EnvironmentID,
		Before:        marshal(before),
		After:         marshal(after),
		Comment:       comment,
		IP:            c.Req.IP,
		UserAgent:     c.Req.UserAgent,
	}
}

func marshal(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	if raw, ok := v.(json.RawMessage); ok {
		return raw
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}

// CSVHeader is the header row of CSV exports.
var CSVHeader = []string{"id", "at", "actor_type", "actor_id", "actor_name", "action", "resource_type", "resource_id",
	"resource_key", "project_id", "environment_id", "comment", "ip", "user_agent", "before", "after"}

// CSVWriter writes entries as CSV rows.
type CSVWriter struct{ w *csv.Writer }

// NewCSVWriter writes the header and returns a writer.
func NewCSVWriter(w io.Writer) (*CSVWriter, error) {
	cw := csv.NewWriter(w)
	return &CSVWriter{w: cw}, cw.Write(CSVHeader)
}

// Write writes one entry.
func (c *CSVWriter) Write(e domain.AuditEntry) error {
	return c.w.Write([]string{strconv.FormatInt(e.ID, 10), e.At.UTC().Format(time.RFC3339Nano), e.Actor.Type, e.Actor.ID,
		e.Actor.Name, e.Action, e.ResourceType, e.ResourceID, e.ResourceKey, e.ProjectID, e.EnvironmentID, e.Comment, e.IP,
		e.UserAgent, string(e.Before), string(e.After)})
}

// Flush flushes buffered rows.
func (c *CSVWriter) Flush() error {
	c.w.Flush()
	return c.w.Error()
}
