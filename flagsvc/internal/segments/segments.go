// Package segments manages segments: reusable sets of contexts per environment, defined by
// included and excluded key lists (importable from CSV, up to a million keys, streamed) and
// rules that may nest other segments (cycles are rejected).
package segments

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/switchyard-io/switchyard/flagsvc/internal/access"
	"github.com/switchyard-io/switchyard/flagsvc/internal/audit"
	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
	"github.com/switchyard-io/switchyard/flagsvc/internal/store"
	"github.com/switchyard-io/switchyard/platform/errs"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// Limits.
const (
	// MaxInlineMembers is the most keys a JSON create/update may carry; larger lists use the CSV import.
	MaxInlineMembers = 10000
	// MaxImportKeys is the most keys one CSV import may carry.
	MaxImportKeys = 1_000_000
	// MaxSegmentKeys is the most keys a segment may hold, included and excluded together, however
	// many imports added them. The SDKs' ruleset rules set no segment limit, but every SDK and
	// relay receives the whole environment's ruleset as one message (the publisher's Kafka batch
	// and the relay's partition fetch are 64 MiB); a million typical keys (~40 bytes of JSON each)
	// is about 40 MB. It equals MaxImportKeys so that one full replace import always fits.
	MaxSegmentKeys = 1_000_000
	// importBatch is how many keys are buffered before each COPY.
	importBatch = 50_000
)

// Service manages segments.
type Service struct {
	store *store.Store
}

// New returns the service.
func New(st *store.Store) *Service { return &Service{store: st} }

// Input creates or replaces a segment. Nil member lists are left unchanged on update.
type Input struct {
	Key         string                   `json:"key"`
	Name        string                   `json:"name"`
	Description string                   `json:"description"`
	Rules       []ruleset.SegmentRule    `json:"rules"`
	Included    *[]ruleset.SegmentTarget `json:"included"`
	Excluded    *[]ruleset.SegmentTarget `json:"excluded"`
	Version     *int64                   `json:"version"`
}

type scope struct {
	project domain.Project
	env     domain.Environment
}

// scope loads the project and environment and checks the caller may read them, or with write
// change the environment. A write holds a shared lock on the environment row (changes run in
// parallel; an edit of the environment waits); an exclusive write holds it exclusively, for a
// change whose checks read other segments and flags: two changes that each add an edge of the
// segment graph (or one deletes a segment the other adds a reference to) could otherwise both
// pass their checks on the state before the other and, together, leave a cycle or a reference to
// a missing segment.
func (s *Service) scope(ctx context.Context, tx *store.Tx, c audit.Caller, projectKey, envKey string, write, exclusive bool) (scope, error) {
	p, err := tx.ProjectByKey(ctx, c.P.OrgID, projectKey)
	if err != nil {
		return scope{}, err
	}
	if err := c.P.Require(access.ReadProject, access.Target{ProjectID: p.ID}); err != nil {
		return scope{}, err
	}
	e, err := tx.EnvironmentByKey(ctx, p.ID, envKey)
	if err != nil {
		return scope{}, err
	}
	if write {
		if err := c.P.Require(access.WriteEnvironment, access.Target{ProjectID: p.ID, EnvironmentID: e.ID, Critical: e.Critical, Resource: "segments"}); err != nil {
			return scope{}, err
		}
		lock := tx.ShareEnvironmentRow
		if exclusive {
			lock = tx.LockEnvironmentRow
		}
		if e, err = lock(ctx, e.ID); err != nil {
			return scope{}, err
		}
		if e.Locked {
			return scope{}, errs.PreconditionFailed("environment", "environment %q is locked: %s", e.Key, e.LockReason)
		}
	}
	return scope{project: p, env: e}, nil
}

func validate(in *Input) error {
	if in.Name == "" {
		in.Name = in.Key
	}
	if len(in.Name) > domain.MaxNameLength {
		return errs.Invalid("name", "at most %d characters", domain.MaxNameLength)
	}
	for i := range in.Rules {
		if in.Rules[i].ID == "" {
			in.Rules[i].ID = domain.NewRuleID()
		}
	}
	seg := ruleset.Segment{Key: in.Key, Rules: in.Rules}
	if in.Included != nil {
		seg.Included = *in.Included
	}
	if in.Excluded != nil {
		seg.Excluded = *in.Excluded
	}
	for _, l := range []struct {
		name    string
		targets []ruleset.SegmentTarget
	}{{"included", seg.Included}, {"excluded", seg.Excluded}} {
		n := 0
		for _, t := range l.targets {
			n += len(t.Values)
		}
		if n > MaxInlineMembers {
			return errs.Invalid(l.name, "at most %d keys inline; use the CSV import for larger lists", MaxInlineMembers)
		}
	}
	for _, l := range []*[]ruleset.SegmentTarget{in.Included, in.Excluded} {
		if l == nil {
			continue
		}
		for i := range *l {
			if (*l)[i].ContextKind == "" {
				(*l)[i].ContextKind = ruleset.DefaultContextKind
			}
		}
	}
	if e := ruleset.ValidateSegment(&seg); len(e) > 0 {
		return errs.Invalid(e[0].Field, "%s", e[0].Message)
	}
	return nil
}

// checkGraph checks segment_match references and cycles among the environment's segments with
// the candidate in place.
func checkGraph(ctx context.Context, tx *store.Tx, envID string, candidate ruleset.Segment) error {
	segs, err := tx.ListSegments(ctx, envID)
	if err != nil {
		return err
	}
	all := []ruleset.Segment{candidate}
	have := map[string]bool{candidate.Key: true}
	for _, s := range segs {
		if s.Key != candidate.Key {
			all = append(all, ruleset.Segment{Key: s.Key, Rules: s.Rules})
			have[s.Key] = true
		}
	}
	for i, r := range candidate.Rules {
		for j, cl := range r.Clauses {
			if cl.Op != ruleset.OpSegmentMatch {
				continue
			}
			for k, v := range cl.Values {
				if key, _ := v.(string); !have[key] {
					return errs.Invalid(fmt.Sprintf("rules[%d].clauses[%d].values[%d]", i, j, k), "unknown segment %q", key)
				}
			}
		}
	}
	if cycle := ruleset.SegmentCycle(all); cycle != nil {
		return errs.Invalid("rules", "segments would form a cycle: %s", strings.Join(cycle, " -> "))
	}
	return nil
}

func memberRows(list string, targets []ruleset.SegmentTarget) []store.MemberRow {
	var rows []store.MemberRow
	for _, t := range targets {
		for _, k := range t.Values {
			rows = append(rows, store.MemberRow{List: list, ContextKind: t.ContextKind, ContextKey: k})
		}
	}
	return rows
}

func (s *Service) writeMembers(ctx context.Context, tx *store.Tx, id string, in *Input) error {
	var lists []string
	var rows []store.MemberRow
	if in.Included != nil {
		lists = append(lists, "included")
		rows = append(rows, memberRows("included", *in.Included)...)
	}
	if in.Excluded != nil {
		lists = append(lists, "excluded")
		rows = append(rows, memberRows("excluded", *in.Excluded)...)
	}
	if len(lists) == 0 {
		return nil
	}
	return tx.ReplaceMembers(ctx, id, lists, rows)
}

func resource(sc scope, seg domain.Segment) audit.Resource {
	return audit.Resource{Type: "segment", ID: seg.ID, Key: seg.Key, ProjectID: sc.project.ID, EnvironmentID: sc.env.ID}
}

// Create creates a segment.
func (s *Service) Create(ctx context.Context, c audit.Caller, projectKey, envKey string, in Input) (domain.Segment, error) {
	if err := validate(&in); err != nil {
		return domain.Segment{}, err
	}
	var out domain.Segment
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		sc, err := s.scope(ctx, tx, c, projectKey, envKey, true, nestsSegments(in.Rules))
		if err != nil {
			return err
		}
		if err := checkGraph(ctx, tx, sc.env.ID, ruleset.Segment{Key: in.Key, Rules: in.Rules}); err != nil {
			return err
		}
		seg, err := tx.InsertSegment(ctx, domain.Segment{EnvironmentID: sc.env.ID, Key: in.Key, Name: in.Name, Description: in.Description, Rules: in.Rules})
		if err != nil {
			return err
		}
		if err := s.writeMembers(ctx, tx, seg.ID, &in); err != nil {
			return err
		}
		if out, err = s.load(ctx, tx, seg.ID); err != nil {
			return err
		}
		if err := tx.BumpRuleset(ctx, sc.env.ID); err != nil {
			return err
		}
		return tx.InsertAudit(ctx, c.P.OrgID, audit.Entry(c, "segment.create", resource(sc, out), nil, out, ""))
	})
	return out, err
}

func (s *Service) load(ctx context.Context, tx *store.Tx, id string) (domain.Segment, error) {
	seg, err := tx.SegmentByID(ctx, id)
	if err != nil {
		return seg, err
	}
	if seg.IncludedCount+seg.ExcludedCount <= MaxInlineMembers {
		seg.Included, seg.Excluded, err = tx.SegmentMembers(ctx, id, 0)
	}
	return seg, err
}

// Get returns a segment (with its member lists when they are small).
func (s *Service) Get(ctx context.Context, c audit.Caller, projectKey, envKey, key string) (domain.Segment, error) {
	var out domain.Segment
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		sc, err := s.scope(ctx, tx, c, projectKey, envKey, false, false)
		if err != nil {
			return err
		}
		seg, err := tx.SegmentByKey(ctx, sc.env.ID, key, false)
		if err != nil {
			return err
		}
		out, err = s.load(ctx, tx, seg.ID)
		return err
	})
	return out, err
}

// List lists an environment's segments (without member lists).
func (s *Service) List(ctx context.Context, c audit.Caller, projectKey, envKey string) ([]domain.Segment, error) {
	var out []domain.Segment
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		sc, err := s.scope(ctx, tx, c, projectKey, envKey, false, false)
		if err != nil {
			return err
		}
		out, err = tx.ListSegments(ctx, sc.env.ID)
		return err
	})
	return out, err
}

// Update replaces a segment's name, description and rules, and its member lists when given.
func (s *Service) Update(ctx context.Context, c audit.Caller, projectKey, envKey, key string, in Input) (domain.Segment, error) {
	if in.Key != "" && in.Key != key {
		return domain.Segment{}, errs.Invalid("key", "segment keys cannot change")
	}
	in.Key = key
	if err := validate(&in); err != nil {
		return domain.Segment{}, err
	}
	var out domain.Segment
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		sc, err := s.scope(ctx, tx, c, projectKey, envKey, true, nestsSegments(in.Rules))
		if err != nil {
			return err
		}
		before, err := tx.SegmentByKey(ctx, sc.env.ID, key, true)
		if err != nil {
			return err
		}
		if err := checkVersion(key, in.Version, before.Version); err != nil {
			return err
		}
		if err := checkGraph(ctx, tx, sc.env.ID, ruleset.Segment{Key: key, Rules: in.Rules}); err != nil {
			return err
		}
		next := before
		next.Name, next.Description, next.Rules = in.Name, in.Description, in.Rules
		if _, err := tx.UpdateSegment(ctx, next); err != nil {
			return err
		}
		if err := s.writeMembers(ctx, tx, before.ID, &in); err != nil {
			return err
		}
		if out, err = s.load(ctx, tx, before.ID); err != nil {
			return err
		}
		if in.Included != nil || in.Excluded != nil {
			field := "included"
			if in.Included == nil {
				field = "excluded"
			}
			if err := checkSize(out, field); err != nil {
				return err
			}
		}
		if err := tx.BumpRuleset(ctx, sc.env.ID); err != nil {
			return err
		}
		return tx.InsertAudit(ctx, c.P.OrgID, audit.Entry(c, "segment.update", resource(sc, out), before, out, ""))
	})
	return out, err
}

// Delete deletes a segment unless a flag or another segment uses it. version (If-Match) is the
// segment version the deletion is based on; a newer one is a 409, nil skips the check.
func (s *Service) Delete(ctx context.Context, c audit.Caller, projectKey, envKey, key string, version *int64) error {
	return s.store.InTx(ctx, func(tx *store.Tx) error {
		sc, err := s.scope(ctx, tx, c, projectKey, envKey, true, false)
		if err != nil {
			return err
		}
		seg, err := tx.SegmentByKey(ctx, sc.env.ID, key, true)
		if err != nil {
			return err
		}
		if err := checkVersion(key, version, seg.Version); err != nil {
			return err
		}
		flags, configs, _, err := tx.EnvironmentFlags(ctx, sc.env.ID)
		if err != nil {
			return err
		}
		for i := range flags {
			if usesSegment(rulesClauses(configs[i].Rules), key) {
				return errs.Conflict("key", "flag %q uses segment %q", flags[i].Key, key)
			}
		}
		others, err := tx.ListSegments(ctx, sc.env.ID)
		if err != nil {
			return err
		}
		for _, o := range others {
			if o.Key != key && usesSegment(segmentClauses(o.Rules), key) {
				return errs.Conflict("key", "segment %q uses segment %q", o.Key, key)
			}
		}
		if err := tx.DeleteSegment(ctx, seg.ID); err != nil {
			return err
		}
		if err := tx.BumpRuleset(ctx, sc.env.ID); err != nil {
			return err
		}
		return tx.InsertAudit(ctx, c.P.OrgID, audit.Entry(c, "segment.delete", resource(sc, seg), seg, nil, ""))
	})
}

// checkSize refuses a change that leaves the segment with more than MaxSegmentKeys keys; field
// names the input that added them. Keys already present are not counted twice (an import of
// existing keys adds nothing), so it counts what was written.
func checkSize(seg domain.Segment, field string) error {
	if n := seg.IncludedCount + seg.ExcludedCount; n > MaxSegmentKeys {
		return errs.Invalid(field, "segment %q would hold %d keys; at most %d per segment (included and excluded together)",
			seg.Key, n, MaxSegmentKeys)
	}
	return nil
}

// checkVersion refuses a change based on a version of the segment other than the current one
// (nil: the caller did not say, and the change is not checked).
func checkVersion(key string, expected *int64, current int64) error {
	if expected != nil && *expected != current {
		return errs.Conflict("version", "segment %q was changed since version %d (now %d); reload and retry", key, *expected, current)
	}
	return nil
}

func rulesClauses(rules []ruleset.Rule) []ruleset.Clause {
	var out []ruleset.Clause
	for _, r := range rules {
		out = append(out, r.Clauses...)
	}
	return out
}

func segmentClauses(rules []ruleset.SegmentRule) []ruleset.Clause {
	var out []ruleset.Clause
	for _, r := range rules {
		out = append(out, r.Clauses...)
	}
	return out
}

// nestsSegments reports whether rules use segment_match.
func nestsSegments(rules []ruleset.SegmentRule) bool {
	for _, cl := range segmentClauses(rules) {
		if cl.Op == ruleset.OpSegmentMatch {
			return true
		}
	}
	return false
}

func usesSegment(clauses []ruleset.Clause, key string) bool {
	for _, cl := range clauses {
		if cl.Op != ruleset.OpSegmentMatch {
			continue
		}
		for _, v := range cl.Values {
			if v == key {
				return true
			}
		}
	}
	return false
}

// ImportInput says where imported keys go.
type ImportInput struct {
	List        string // included | excluded
	ContextKind string // default for rows without a kind column
	// Mode "replace" empties the list first; "add" keeps existing keys.
	Mode string
	// Version is the segment version the import is based on (If-Match); a newer one is a 409,
	// nil skips the check.
	Version *int64
}

// ImportResult reports an import.
type ImportResult struct {
	Imported int64          `json:"imported"`
	Segment  domain.Segment `json:"segment"`
}

// Import streams keys from CSV into a segment list in one transaction. Each row is either
// "key" or "context_kind,key"; a header row ("key" or "context_kind,key") is skipped. Nothing
// is written unless the whole file is valid.
func (s *Service) Import(ctx context.Context, c audit.Caller, projectKey, envKey, key string, in ImportInput, body io.Reader) (ImportResult, error) {
	var res ImportResult
	if in.List != "included" && in.List != "excluded" {
		return res, errs.Invalid("list", "must be included or excluded")
	}
	if in.Mode == "" {
		in.Mode = "add"
	}
	if in.Mode != "add" && in.Mode != "replace" {
		return res, errs.Invalid("mode", "must be add or replace")
	}
	if in.ContextKind == "" {
		in.ContextKind = ruleset.DefaultContextKind
	}
	if !ruleset.ValidContextKind(in.ContextKind) {
		return res, errs.Invalid("context_kind", "invalid context kind %q", in.ContextKind)
	}
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		sc, err := s.scope(ctx, tx, c, projectKey, envKey, true, false)
		if err != nil {
			return err
		}
		seg, err := tx.SegmentByKey(ctx, sc.env.ID, key, true)
		if err != nil {
			return err
		}
		if err := checkVersion(key, in.Version, seg.Version); err != nil {
			return err
		}
		if in.Mode == "replace" {
			if err := tx.ReplaceMembers(ctx, seg.ID, []string{in.List}, nil); err != nil {
				return err
			}
		}
		r := csv.NewReader(bufio.NewReaderSize(body, 64<<10))
		r.FieldsPerRecord = -1
		r.ReuseRecord = true
		batch := make([]store.MemberRow, 0, importBatch)
		line := 0
		for {
			rec, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			line++
			if err != nil {
				return errs.Malformed("body", "CSV line %d: %v", line, err)
			}
			row := store.MemberRow{List: in.List, ContextKind: in.ContextKind}
			switch len(rec) {
			case 1:
				row.ContextKey = strings.TrimSpace(rec[0])
				if line == 1 && row.ContextKey == "key" {
					continue
				}
			case 2:
				row.ContextKind, row.ContextKey = strings.TrimSpace(rec[0]), strings.TrimSpace(rec[1])
				if line == 1 && row.ContextKind == "context_kind" {
					continue
				}
				if !ruleset.ValidContextKind(row.ContextKind) {
					return errs.Invalid("body", "CSV line %d: invalid context kind %q", line, row.ContextKind)
				}
			default:
				return errs.Invalid("body", "CSV line %d: expected key or context_kind,key", line)
			}
			if row.ContextKey == "" {
				return errs.Invalid("body", "CSV line %d: empty key", line)
			}
			if !utf8.ValidString(row.ContextKey) || strings.IndexByte(row.ContextKey, 0) >= 0 {
				return errs.Invalid("body", "CSV line %d: keys must be UTF-8 text without NUL characters", line)
			}
			if res.Imported++; res.Imported > MaxImportKeys {
				return errs.TooLarge("body", "at most %d keys per import", MaxImportKeys)
			}
			batch = append(batch, row)
			if len(batch) == importBatch {
				if err := tx.AddMembers(ctx, seg.ID, batch); err != nil {
					return err
				}
				batch = batch[:0]
			}
		}
		if err := tx.AddMembers(ctx, seg.ID, batch); err != nil {
			return err
		}
		if err := tx.TouchSegment(ctx, seg.ID); err != nil {
			return err
		}
		if res.Segment, err = tx.SegmentByID(ctx, seg.ID); err != nil {
			return err
		}
		if err := checkSize(res.Segment, "body"); err != nil {
			return err
		}
		if err := tx.BumpRuleset(ctx, sc.env.ID); err != nil {
			return err
		}
		summary := map[string]any{"list": in.List, "mode": in.Mode, "keys": res.Imported}
		return tx.InsertAudit(ctx, c.P.OrgID, audit.Entry(c, "segment.import", resource(sc, seg), nil, summary, ""))
	})
	return res, err
}
