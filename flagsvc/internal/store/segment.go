package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

const segmentColumns = `s.id, s.environment_id, s.key, s.name, s.description, s.rules, s.version, s.created_at, s.updated_at,
	(SELECT count(*) FROM segment_members m WHERE m.segment_id = s.id AND m.list = 'included'),
	(SELECT count(*) FROM segment_members m WHERE m.segment_id = s.id AND m.list = 'excluded')`

func scanSegment(row pgx.Row) (domain.Segment, error) {
	var s domain.Segment
	var rules []byte
	err := row.Scan(&s.ID, &s.EnvironmentID, &s.Key, &s.Name, &s.Description, &rules, &s.Version, &s.CreatedAt, &s.UpdatedAt,
		&s.IncludedCount, &s.ExcludedCount)
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(rules, &s.Rules)
}

func rulesJSON(r []ruleset.SegmentRule) []byte {
	if r == nil {
		r = []ruleset.SegmentRule{}
	}
	b, _ := json.Marshal(r)
	return b
}

// InsertSegment inserts a segment (without members).
func (t *Tx) InsertSegment(ctx context.Context, s domain.Segment) (domain.Segment, error) {
	var id string
	if err := t.q().QueryRow(ctx, `INSERT INTO segments (environment_id, key, name, description, rules) VALUES ($1, $2, $3, $4, $5)
		RETURNING id`, s.EnvironmentID, s.Key, s.Name, s.Description, rulesJSON(s.Rules)).Scan(&id); err != nil {
		return s, err
	}
	return t.SegmentByID(ctx, id)
}

// SegmentByID returns a segment.
func (t *Tx) SegmentByID(ctx context.Context, id string) (domain.Segment, error) {
	s, err := scanSegment(t.q().QueryRow(ctx, `SELECT `+segmentColumns+` FROM segments s WHERE s.id = $1`, id))
	return s, notFound(err, "segment not found")
}

// SegmentByKey returns an environment's segment; forUpdate locks it.
func (t *Tx) SegmentByKey(ctx context.Context, envID, key string, forUpdate bool) (domain.Segment, error) {
	q := `SELECT ` + segmentColumns + ` FROM segments s WHERE s.environment_id = $1 AND s.key = $2`
	if forUpdate {
		q += ` FOR UPDATE OF s`
	}
	s, err := scanSegment(t.q().QueryRow(ctx, q, envID, key))
	return s, notFound(err, "segment %q not found", key)
}

// ListSegments lists an environment's segments by key.
func (t *Tx) ListSegments(ctx context.Context, envID string) ([]domain.Segment, error) {
	rows, err := t.q().Query(ctx, listSegmentsSQL, envID)
	if err != nil {
		return nil, err
	}
	return collectSegments(rows)
}

const listSegmentsSQL = `SELECT ` + segmentColumns + ` FROM segments s WHERE s.environment_id = $1 ORDER BY s.key`

func collectSegments(rows pgx.Rows) ([]domain.Segment, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Segment, error) { return scanSegment(r) })
}

// UpdateSegment saves a segment's name, description and rules and increments its version.
func (t *Tx) UpdateSegment(ctx context.Context, s domain.Segment) (domain.Segment, error) {
	if _, err := t.q().Exec(ctx, `UPDATE segments SET name = $2, description = $3, rules = $4, version = version + 1,
		updated_at = now() WHERE id = $1`, s.ID, s.Name, s.Description, rulesJSON(s.Rules)); err != nil {
		return s, err
	}
	return t.SegmentByID(ctx, s.ID)
}

// TouchSegment increments a segment's version (after its members changed).
func (t *Tx) TouchSegment(ctx context.Context, id string) error {
	_, err := t.q().Exec(ctx, `UPDATE segments SET version = version + 1, updated_at = now() WHERE id = $1`, id)
	return err
}

// DeleteSegment deletes a segment and its members.
func (t *Tx) DeleteSegment(ctx context.Context, id string) error {
	_, err := t.q().Exec(ctx, `DELETE FROM segments WHERE id = $1`, id)
	return err
}

// MemberRow is one context key in a segment list.
type MemberRow struct {
	List, ContextKind, ContextKey string
}

// ReplaceMembers replaces every member of the listed lists with rows (COPY, so millions of
// keys are cheap). lists are "included" and/or "excluded".
func (t *Tx) ReplaceMembers(ctx context.Context, segmentID string, lists []string, rows []MemberRow) error {
	if _, err := t.q().Exec(ctx, `DELETE FROM segment_members WHERE segment_id = $1 AND list = ANY($2)`, segmentID, lists); err != nil {
		return err
	}
	return t.AddMembers(ctx, segmentID, rows)
}

// AddMembers adds members, ignoring ones already present.
func (t *Tx) AddMembers(ctx context.Context, segmentID string, rows []MemberRow) error {
	if len(rows) == 0 {
		return nil
	}
	tmp := "segment_members_import"
	if _, err := t.q().Exec(ctx, fmt.Sprintf(`CREATE TEMP TABLE IF NOT EXISTS %s (list text, context_kind text, context_key text) ON COMMIT DROP`, tmp)); err != nil {
		return err
	}
	if _, err := t.q().Exec(ctx, `TRUNCATE `+tmp); err != nil {
		return err
	}
	_, err := t.tx.CopyFrom(ctx, pgx.Identifier{tmp}, []string{"list", "context_kind", "context_key"},
		pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
			return []any{rows[i].List, rows[i].ContextKind, rows[i].ContextKey}, nil
		}))
	if err != nil {
		return err
	}
	_, err = t.q().Exec(ctx, `INSERT INTO segment_members (segment_id, list, context_kind, context_key)
		SELECT DISTINCT $1::uuid, list, context_kind, context_key FROM `+tmp+` ON CONFLICT DO NOTHING`, segmentID)
	return err
}

// RemoveMembers removes the given members.
func (t *Tx) RemoveMembers(ctx context.Context, segmentID string, rows []MemberRow) error {
	b := &pgx.Batch{}
	for _, r := range rows {
		b.Queue(`DELETE FROM segment_members WHERE segment_id = $1 AND list = $2 AND context_kind = $3 AND context_key = $4`,
			segmentID, r.List, r.ContextKind, r.ContextKey)
	}
	return t.tx.SendBatch(ctx, b).Close()
}

// SegmentMembers returns a segment's member lists grouped by context kind, up to limit keys
// per list (0: all).
func (t *Tx) SegmentMembers(ctx context.Context, segmentID string, limit int) (included, excluded []ruleset.SegmentTarget, err error) {
	q := `SELECT list, context_kind, context_key FROM segment_members WHERE segment_id = $1 ORDER BY list, context_kind, context_key`
	if limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", limit)
	}
	rows, err := t.q().Query(ctx, q, segmentID)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var m memberLists
	for rows.Next() {
		var list, kind, key string
		if err := rows.Scan(&list, &kind, &key); err != nil {
			return nil, nil, err
		}
		m.add(list, kind, key)
	}
	return m.build("included"), m.build("excluded"), rows.Err()
}

// SegmentLists are a segment's members as a ruleset carries them.
type SegmentLists struct {
	Included, Excluded []ruleset.SegmentTarget
}

// environmentMembersSQL reads the members of every segment of an environment, in the order
// memberLists groups them.
const environmentMembersSQL = `SELECT m.segment_id, m.list, m.context_kind, m.context_key FROM segment_members m
	JOIN segments s ON s.id = m.segment_id WHERE s.environment_id = $1
	ORDER BY m.segment_id, m.list, m.context_kind, m.context_key`

// collectEnvironmentMembers groups environmentMembersSQL's rows by segment id.
func collectEnvironmentMembers(rows pgx.Rows) (map[string]SegmentLists, error) {
	defer rows.Close()
	out := map[string]SegmentLists{}
	var cur string
	var m memberLists
	flush := func() {
		if cur != "" {
			out[cur] = SegmentLists{Included: m.build("included"), Excluded: m.build("excluded")}
		}
	}
	for rows.Next() {
		var id, list, kind, key string
		if err := rows.Scan(&id, &list, &kind, &key); err != nil {
			return nil, err
		}
		if id != cur {
			flush()
			cur, m = id, memberLists{}
		}
		m.add(list, kind, key)
	}
	flush()
	return out, rows.Err()
}

// memberLists groups member rows, read in (list, context kind, key) order, by list and kind.
type memberLists struct {
	groups map[string]map[string][]string // list → kind → keys
	order  map[string][]string            // list → kinds in order
}

func (m *memberLists) add(list, kind, key string) {
	if m.groups == nil {
		m.groups = map[string]map[string][]string{"included": {}, "excluded": {}}
		m.order = map[string][]string{}
	}
	if m.groups[list] == nil {
		m.groups[list] = map[string][]string{}
	}
	if _, ok := m.groups[list][kind]; !ok {
		m.order[list] = append(m.order[list], kind)
	}
	m.groups[list][kind] = append(m.groups[list][kind], key)
}

func (m *memberLists) build(list string) []ruleset.SegmentTarget {
	var out []ruleset.SegmentTarget
	for _, kind := range m.order[list] {
		out = append(out, ruleset.SegmentTarget{ContextKind: kind, Values: m.groups[list][kind]})
	}
	return out
}

// CopySegments copies every segment with its members from one environment to another.
func (t *Tx) CopySegments(ctx context.Context, fromEnv, toEnv string) error {
	_, err := t.q().Exec(ctx, `WITH src AS (
			SELECT id AS old_id, gen_random_uuid() AS new_id, key, name, description, rules FROM segments WHERE environment_id = $1
		), ins AS (
			INSERT INTO segments (id, environment_id, key, name, description, rules)
			SELECT new_id, $2, key, name, description, rules FROM src RETURNING id
		)
		INSERT INTO segment_members (segment_id, list, context_kind, context_key)
		SELECT src.new_id, m.list, m.context_kind, m.context_key FROM segment_members m JOIN src ON src.old_id = m.segment_id`,
		fromEnv, toEnv)
	return err
}
