package store

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
	"github.com/switchyard-io/switchyard/platform/errs"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

const flagColumns = `f.id, f.project_id, f.key, f.name, f.description, f.tags, coalesce(f.owner_id::text, ''), f.kind,
	f.variations, f.temporary, coalesce(to_char(f.removal_date, 'YYYY-MM-DD'), ''), f.lifecycle, f.client_side, f.version,
	f.created_at, f.updated_at`

func scanFlag(row pgx.Row) (domain.Flag, error) { return scanFlagWith(row) }

func dateOrNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// InsertFlag inserts a flag definition.
func (t *Tx) InsertFlag(ctx context.Context, f domain.Flag) (domain.Flag, error) {
	vars, err := json.Marshal(f.Variations)
	if err != nil {
		return f, err
	}
	return scanFlag(t.q().QueryRow(ctx, `INSERT INTO flags AS f (project_id, key, name, description, tags, owner_id, kind,
		variations, temporary, removal_date, lifecycle, client_side) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		RETURNING `+flagColumns, f.ProjectID, f.Key, f.Name, f.Description, f.Tags, nullable(f.OwnerID), string(f.Kind), vars,
		f.Temporary, dateOrNil(f.RemovalDate), string(f.Lifecycle), f.ClientSide))
}

// FlagByKey returns a project's flag. lock is "" (none), "share" (the definition must not
// change until commit) or "update" (about to change it).
func (t *Tx) FlagByKey(ctx context.Context, projectID, key string, lock string) (domain.Flag, error) {
	q := `SELECT ` + flagColumns + ` FROM flags f WHERE f.project_id = $1 AND f.key = $2`
	switch lock {
	case "share":
		q += ` FOR SHARE`
	case "update":
		q += ` FOR UPDATE`
	}
	f, err := scanFlag(t.q().QueryRow(ctx, q, projectID, key))
	return f, notFound(err, "flag %q not found", key)
}

// ShareFlags returns a project's flags with the given keys (missing ones are left out) and
// holds a shared lock on each until commit: a change that comes to depend on them (a new
// prerequisite) waits for, or is waited for by, one that archives or deletes them (which lock
// the flag for update), so the later of the two sees what the earlier did.
func (t *Tx) ShareFlags(ctx context.Context, projectID string, keys []string) (map[string]domain.Flag, error) {
	if len(keys) == 0 {
		return map[string]domain.Flag{}, nil
	}
	rows, err := t.q().Query(ctx, `SELECT `+flagColumns+` FROM flags f WHERE f.project_id = $1 AND f.key = ANY($2)
		ORDER BY f.key FOR SHARE`, projectID, keys)
	if err != nil {
		return nil, err
	}
	flags, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Flag, error) { return scanFlag(r) })
	if err != nil {
		return nil, err
	}
	out := make(map[string]domain.Flag, len(flags))
	for _, f := range flags {
		out[f.Key] = f
	}
	return out, nil
}

// UpdateFlag saves a flag definition and increments its version.
func (t *Tx) UpdateFlag(ctx context.Context, f domain.Flag) (domain.Flag, error) {
	vars, err := json.Marshal(f.Variations)
	if err != nil {
		return f, err
	}
	return scanFlag(t.q().QueryRow(ctx, `UPDATE flags AS f SET name = $2, description = $3, tags = $4, owner_id = $5,
		variations = $6, temporary = $7, removal_date = $8, lifecycle = $9, client_side = $10, version = version + 1,
		updated_at = now() WHERE id = $1 RETURNING `+flagColumns, f.ID, f.Name, f.Description, f.Tags, nullable(f.OwnerID),
		vars, f.Temporary, dateOrNil(f.RemovalDate), string(f.Lifecycle), f.ClientSide))
}

// DeleteFlag deletes a flag and its configurations and history.
func (t *Tx) DeleteFlag(ctx context.Context, id string) error {
	_, err := t.q().Exec(ctx, `DELETE FROM flags WHERE id = $1`, id)
	return err
}

// FlagFilter selects and orders flags in a project.
type FlagFilter struct {
	ProjectID string
	Query     string
	Tag       string
	OwnerID   string
	Kind      string
	// Lifecycle filters by lifecycle; empty means everything except archived, "all" means all.
	Lifecycle string
	// EnvironmentID with On filters by the on/off state in that environment.
	EnvironmentID string
	On            *bool
	// Keys restricts to these flag keys.
	Keys []string
	// Sort is key, name, created_at or updated_at, with a leading '-' for descending.
	Sort   string
	Cursor string
	Limit  int
}

// FlagPage is one page of flags.
type FlagPage struct {
	Items      []domain.Flag `json:"items"`
	NextCursor string        `json:"next_cursor,omitempty"`
	Total      int           `json:"total"`
}

var sortColumns = map[string]string{"key": "f.key", "name": "f.name", "created_at": "f.created_at", "updated_at": "f.updated_at"}

type cursor struct {
	V  string `json:"v"`
	ID string `json:"id"`
}

var wordPattern = regexp.MustCompile(`[\p{L}\p{N}_]+`)

// PrefixQuery turns free text into a tsquery that matches every word as a prefix.
func PrefixQuery(q string) string {
	words := wordPattern.FindAllString(strings.ToLower(q), 16)
	for i, w := range words {
		words[i] = w + ":*"
	}
	return strings.Join(words, " & ")
}

// ListFlags returns one page of a project's flags with their per-environment on/off state.
func (t *Tx) ListFlags(ctx context.Context, f FlagFilter) (FlagPage, error) {
	sortKey, desc := strings.TrimPrefix(f.Sort, "-"), strings.HasPrefix(f.Sort, "-")
	if sortKey == "" {
		sortKey = "key"
	}
	col, ok := sortColumns[sortKey]
	if !ok {
		return FlagPage{}, errs.Invalid("sort", "must be one of key, name, created_at, updated_at (prefix - for descending)")
	}
	if f.Limit <= 0 {
		f.Limit = 50
	}
	if f.Limit > 500 {
		return FlagPage{}, errs.Invalid("limit", "at most 500")
	}
	args := []any{f.ProjectID}
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	where := []string{"f.project_id = $1"}
	if tsq := PrefixQuery(f.Query); tsq != "" {
		where = append(where, "f.search @@ to_tsquery('simple', "+arg(tsq)+")")
	} else if strings.TrimSpace(f.Query) != "" {
		where = append(where, "false")
	}
	if f.Tag != "" {
		where = append(where, "f.tags @> ARRAY["+arg(f.Tag)+"]::text[]")
	}
	if f.OwnerID != "" {
		where = append(where, "f.owner_id = "+arg(f.OwnerID)+"::uuid")
	}
	if f.Kind != "" {
		where = append(where, "f.kind = "+arg(f.Kind))
	}
	switch f.Lifecycle {
	case "":
		where = append(where, "f.lifecycle <> 'archived'")
	case "all":
	default:
		where = append(where, "f.lifecycle = "+arg(f.Lifecycle))
	}
	if len(f.Keys) > 0 {
		where = append(where, "f.key = ANY("+arg(f.Keys)+")")
	}
	if f.EnvironmentID != "" && f.On != nil {
		where = append(where, "EXISTS (SELECT 1 FROM flag_configs c WHERE c.flag_id = f.id AND c.environment_id = "+
			arg(f.EnvironmentID)+" AND c.\"on\" = "+arg(*f.On)+")")
	}
	cond := strings.Join(where, " AND ")
	var total int
	if err := t.q().QueryRow(ctx, "SELECT count(*) FROM flags f WHERE "+cond, args...).Scan(&total); err != nil {
		return FlagPage{}, err
	}
	if f.Cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(f.Cursor)
		var c cursor
		if err != nil || json.Unmarshal(raw, &c) != nil || c.ID == "" {
			return FlagPage{}, errs.Invalid("cursor", "is not a cursor returned by this API")
		}
		op := ">"
		if desc {
			op = "<"
		}
		cast := ""
		if sortKey == "created_at" || sortKey == "updated_at" {
			cast = "::timestamptz"
		}
		cond += fmt.Sprintf(" AND (%s, f.id) %s (%s%s, %s::uuid)", col, op, arg(c.V), cast, arg(c.ID))
	}
	dir := "ASC"
	if desc {
		dir = "DESC"
	}
	q := fmt.Sprintf("SELECT %s FROM flags f WHERE %s ORDER BY %s %s, f.id %s LIMIT %d", flagColumns, cond, col, dir, dir, f.Limit+1)
	rows, err := t.q().Query(ctx, q, args...)
	if err != nil {
		return FlagPage{}, err
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Flag, error) { return scanFlag(r) })
	if err != nil {
		return FlagPage{}, err
	}
	page := FlagPage{Items: items, Total: total}
	if len(items) > f.Limit {
		page.Items = items[:f.Limit]
		last := page.Items[f.Limit-1]
		var v string
		switch sortKey {
		case "key":
			v = last.Key
		case "name":
			v = last.Name
		case "created_at":
			v = last.CreatedAt.Format(time.RFC3339Nano)
		case "updated_at":
			v = last.UpdatedAt.Format(time.RFC3339Nano)
		}
		raw, _ := json.Marshal(cursor{V: v, ID: last.ID})
		page.NextCursor = base64.RawURLEncoding.EncodeToString(raw)
	}
	if page.Items == nil {
		page.Items = []domain.Flag{}
	}
	return page, t.attachSummaries(ctx, page.Items)
}

func (t *Tx) attachSummaries(ctx context.Context, flags []domain.Flag) error {
	if len(flags) == 0 {
		return nil
	}
	ids := make([]string, len(flags))
	byID := make(map[string]*domain.Flag, len(flags))
	for i := range flags {
		ids[i] = flags[i].ID
		byID[flags[i].ID] = &flags[i]
		flags[i].Environments = map[string]domain.FlagEnvironmentSummary{}
	}
	rows, err := t.q().Query(ctx, `SELECT c.flag_id, e.key, c."on", c.version FROM flag_configs c
		JOIN environments e ON e.id = c.environment_id WHERE c.flag_id = ANY($1)`, ids)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id, env string
		var s domain.FlagEnvironmentSummary
		if err := rows.Scan(&id, &env, &s.On, &s.Version); err != nil {
			return err
		}
		byID[id].Environments[env] = s
	}
	return rows.Err()
}

// InsertFlagConfig creates a flag's configuration in an environment at version 1.
func (t *Tx) InsertFlagConfig(ctx context.Context, flagID, envID string, c domain.FlagConfig) error {
	_, err := t.q().Exec(ctx, `INSERT INTO flag_configs (flag_id, environment_id, version, "on", config) VALUES ($1, $2, 1, $3, $4)`,
		flagID, envID, c.On, domain.ConfigJSON(&c))
	return err
}

// FlagConfig returns a flag's configuration in an environment; forUpdate locks it.
func (t *Tx) FlagConfig(ctx context.Context, flagID, envID string, forUpdate bool) (domain.FlagConfig, int64, time.Time, error) {
	q := `SELECT config, version, updated_at FROM flag_configs WHERE flag_id = $1 AND environment_id = $2`
	if forUpdate {
		q += ` FOR UPDATE`
	}
	var raw []byte
	var v int64
	var at time.Time
	if err := t.q().QueryRow(ctx, q, flagID, envID).Scan(&raw, &v, &at); err != nil {
		return domain.FlagConfig{}, 0, at, notFound(err, "flag configuration not found")
	}
	var c domain.FlagConfig
	err := json.Unmarshal(raw, &c)
	return c, v, at, err
}

// InsertConfigVersion appends a version to a configuration's history.
func (t *Tx) InsertConfigVersion(ctx context.Context, flagID, envID string, v domain.ConfigVersion) error {
	_, err := t.q().Exec(ctx, insertConfigVersionSQL, configVersionArgs(flagID, envID, v)...)
	return err
}

const insertConfigVersionSQL = `INSERT INTO flag_config_versions (flag_id, environment_id, version, config, change, comment, diff,
	actor_type, actor_id, actor_name) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`

func configVersionArgs(flagID, envID string, v domain.ConfigVersion) []any {
	diff := v.Diff
	if len(diff) == 0 {
		diff = json.RawMessage("[]")
	}
	return []any{flagID, envID, v.Version, domain.ConfigJSON(&v.Config), v.Change, v.Comment, []byte(diff), v.Actor.Type, v.Actor.ID, v.Actor.Name}
}

// ConfigTarget is what a change of a flag's configuration in an environment works on.
type ConfigTarget struct {
	Project   domain.Project
	Flag      domain.Flag
	Env       domain.Environment
	Config    domain.FlagConfig
	Version   int64
	UpdatedAt time.Time
}

// LockConfigTarget reads a project's flag, environment and the flag's configuration there in
// one round trip, locking them in the order every writer uses (flag and environment shared,
// configuration for update). found is false when any of them does not exist; the caller then
// looks them up one at a time for the precise error.
func (t *Tx) LockConfigTarget(ctx context.Context, orgID, projectKey, flagKey, envKey string) (ConfigTarget, bool, error) {
	var ct ConfigTarget
	var raw []byte
	dest := append(append(projectDest(&ct.Project), envDest(&ct.Env)...), &raw, &ct.Version, &ct.UpdatedAt)
	f, err := scanFlagWith(t.q().QueryRow(ctx, `SELECT `+flagColumns+`,
		p.id, p.org_id, p.key, p.name, p.description, p.created_at, p.updated_at, `+envColumns+`, c.config, c.version, c.updated_at
		FROM projects p
		JOIN flags f ON f.project_id = p.id AND f.key = $3
		JOIN environments e ON e.project_id = p.id AND e.key = $4
		JOIN flag_configs c ON c.flag_id = f.id AND c.environment_id = e.id
		LEFT JOIN published_rulesets pr ON pr.environment_id = e.id
		WHERE p.org_id = $1 AND p.key = $2
		FOR SHARE OF f, e FOR UPDATE OF c`, orgID, projectKey, flagKey, envKey), dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return ct, false, nil
	}
	if err != nil {
		return ct, false, err
	}
	ct.Flag = f
	return ct, true, json.Unmarshal(raw, &ct.Config)
}

// SaveConfigChange writes a new configuration version in one round trip: the configuration
// (if it is still at version expected), its history row, the outbox row (see BumpRuleset), and
// the audit entry. It returns the configuration's new updated_at, or a
// conflict when the version moved (the caller normally holds the row lock, so it cannot).
func (t *Tx) SaveConfigChange(ctx context.Context, orgID, flagID, envID string, expected int64, v domain.ConfigVersion, entry domain.AuditEntry) (time.Time, error) {
	var at time.Time
	b := &pgx.Batch{}
	b.Queue(`UPDATE flag_configs SET config = $4, "on" = $5, version = version + 1, updated_at = now()
		WHERE flag_id = $1 AND environment_id = $2 AND version = $3 RETURNING updated_at`,
		flagID, envID, expected, domain.ConfigJSON(&v.Config), v.Config.On).QueryRow(func(row pgx.Row) error {
		err := row.Scan(&at)
		if errors.Is(err, pgx.ErrNoRows) {
			return errs.Conflict("version", "the configuration changed concurrently; reload and retry")
		}
		return err
	})
	b.Queue(insertConfigVersionSQL, configVersionArgs(flagID, envID, v)...)
	b.Queue(bumpRulesetSQL, []string{envID})
	t.bumped = append(t.bumped, envID)
	b.Queue(insertAuditSQL, auditArgs(orgID, entry)...)
	return at, t.tx.SendBatch(ctx, b).Close()
}

// ConfigVersion returns one historical version.
func (t *Tx) ConfigVersion(ctx context.Context, flagID, envID string, version int64) (domain.ConfigVersion, error) {
	rows, err := t.q().Query(ctx, `SELECT version, config, change, comment, diff, actor_type, actor_id, actor_name, created_at
		FROM flag_config_versions WHERE flag_id = $1 AND environment_id = $2 AND version = $3`, flagID, envID, version)
	if err != nil {
		return domain.ConfigVersion{}, err
	}
	v, err := pgx.CollectExactlyOneRow(rows, scanVersion)
	return v, notFound(err, "version %d not found", version)
}

func scanVersion(r pgx.CollectableRow) (domain.ConfigVersion, error) {
	var v domain.ConfigVersion
	var cfg, diff []byte
	err := r.Scan(&v.Version, &cfg, &v.Change, &v.Comment, &diff, &v.Actor.Type, &v.Actor.ID, &v.Actor.Name, &v.CreatedAt)
	if err != nil {
		return v, err
	}
	v.Diff = diff
	return v, json.Unmarshal(cfg, &v.Config)
}

// ListConfigVersions returns history newest first, before a version (0: from the newest).
func (t *Tx) ListConfigVersions(ctx context.Context, flagID, envID string, before int64, limit int) ([]domain.ConfigVersion, error) {
	rows, err := t.q().Query(ctx, `SELECT version, config, change, comment, diff, actor_type, actor_id, actor_name, created_at
		FROM flag_config_versions WHERE flag_id = $1 AND environment_id = $2 AND ($3 = 0 OR version < $3)
		ORDER BY version DESC LIMIT $4`, flagID, envID, before, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanVersion)
}

// EnvironmentFlags returns every flag of the environment's project with its configuration in
// the environment (archived flags included; the caller filters).
func (t *Tx) EnvironmentFlags(ctx context.Context, envID string) ([]domain.Flag, []domain.FlagConfig, []int64, error) {
	rows, err := t.q().Query(ctx, environmentFlagsSQL, envID)
	if err != nil {
		return nil, nil, nil, err
	}
	return collectEnvironmentFlags(rows)
}

const environmentFlagsSQL = `SELECT ` + flagColumns + `, c.config, c.version FROM flag_configs c
	JOIN flags f ON f.id = c.flag_id WHERE c.environment_id = $1 ORDER BY f.key`

func collectEnvironmentFlags(rows pgx.Rows) (flags []domain.Flag, configs []domain.FlagConfig, versions []int64, err error) {
	flags, configs, versions, _, _, err = collectDecodedFlags(rows, nil)
	return flags, configs, versions, err
}

// FlagDecodes keeps the decoded variations and configuration of each environment's flags with
// the stored JSON they were decoded from, so that reading an environment again decodes only the
// flags whose JSON changed: the publisher reads the whole environment for every change, and
// decoding every flag's JSON was most of compiling a large environment's ruleset. What it hands
// out is shared between reads and must not be modified. It keeps at most MaxBytes of stored JSON
// (the decoded values and the flags' encoded JSON, FlagJSON, take a few times that), dropping the
// environments read longest ago first. Safe for concurrent use; the zero value is ready.
type FlagDecodes struct {
	// MaxBytes bounds the JSON kept; 0 means 32 MiB.
	MaxBytes int
	mu       sync.Mutex
	envs     map[string]*envDecodes
	bytes    int    // JSON kept, over every environment
	clock    uint64 // counts reads, to find the environment read longest ago
}

type envDecodes struct {
	flags    map[string]*flagDecode // flag id → its last decoding
	bytes    int
	lastRead uint64
}

type flagDecode struct {
	variationsJSON, configJSON []byte
	variations                 []ruleset.Variation
	config                     domain.FlagConfig
	// encoded is the flag's ruleset JSON made from this decoding (see FlagJSON).
	encoded FlagJSON
}

// FlagJSON keeps a flag's JSON in the ruleset (domain.RulesetFlag, encoded) with the decoding it
// was made from, so that publishing an environment again encodes only the flags that changed:
// encoding/json took ~2.5 ms per publish of an environment of 1,000 flags. A decoding stands for
// the flag's stored variations and configuration; what else the ruleset's flag takes from the
// flag's row — key, kind, client_side — and the configuration's version are compared on Get, so
// the JSON returned is what encoding the flag now would give. Safe for concurrent use.
type FlagJSON struct {
	p atomic.Pointer[encodedFlag]
}

type encodedFlag struct {
	key, kind  string
	clientSide bool
	version    int64
	json       []byte
}

// Get returns the JSON kept for the flag as it is now, if any.
func (j *FlagJSON) Get(f *domain.Flag, version int64) ([]byte, bool) {
	if j == nil {
		return nil, false
	}
	e := j.p.Load()
	if e == nil || e.key != f.Key || e.kind != string(f.Kind) || e.clientSide != f.ClientSide || e.version != version {
		return nil, false
	}
	return e.json, true
}

// Set keeps the flag's JSON (never modified afterwards).
func (j *FlagJSON) Set(f *domain.Flag, version int64, b []byte) {
	if j != nil {
		j.p.Store(&encodedFlag{key: f.Key, kind: string(f.Kind), clientSide: f.ClientSide, version: version, json: b})
	}
}

func (d *FlagDecodes) of(envID string) map[string]*flagDecode {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.envs[envID]
	if e == nil {
		return nil
	}
	d.clock++
	e.lastRead = d.clock
	return e.flags
}

// keep replaces what is kept for an environment (nil: forget it), so deleted flags and
// environments are dropped, then drops the environments read longest ago while over MaxBytes.
func (d *FlagDecodes) keep(envID string, flags map[string]*flagDecode) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if old := d.envs[envID]; old != nil {
		d.bytes -= old.bytes
		delete(d.envs, envID)
	}
	limit := d.MaxBytes
	if limit <= 0 {
		limit = 32 << 20
	}
	e := &envDecodes{flags: flags}
	for _, f := range flags {
		e.bytes += len(f.variationsJSON) + len(f.configJSON)
	}
	if flags == nil || e.bytes > limit { // an environment larger than the budget is not kept
		return
	}
	if d.envs == nil {
		d.envs = map[string]*envDecodes{}
	}
	d.clock++
	e.lastRead = d.clock
	d.envs[envID], d.bytes = e, d.bytes+e.bytes
	for d.bytes > limit {
		var oldest string
		for id, x := range d.envs {
			if oldest == "" || x.lastRead < d.envs[oldest].lastRead {
				oldest = id
			}
		}
		d.bytes -= d.envs[oldest].bytes
		delete(d.envs, oldest)
	}
}

// collectDecodedFlags reads environmentFlagsSQL's rows, taking from known the decodings of
// flags whose stored JSON is unchanged; it returns the decodings of every flag read.
func collectDecodedFlags(rows pgx.Rows, known map[string]*flagDecode) (flags []domain.Flag, configs []domain.FlagConfig,
	versions []int64, slots []*FlagJSON, decoded map[string]*flagDecode, err error) {
	defer rows.Close()
	decoded = make(map[string]*flagDecode, len(known))
	for rows.Next() {
		var variations, config []byte
		var v int64
		f, err := scanRawFlag(rows, &variations, &config, &v)
		if err != nil {
			return nil, nil, nil, nil, nil, err
		}
		d := known[f.ID]
		if d == nil || !bytes.Equal(d.variationsJSON, variations) || !bytes.Equal(d.configJSON, config) {
			d = &flagDecode{variationsJSON: variations, configJSON: config}
			if err := json.Unmarshal(variations, &d.variations); err != nil {
				return nil, nil, nil, nil, nil, err
			}
			if err := json.Unmarshal(config, &d.config); err != nil {
				return nil, nil, nil, nil, nil, err
			}
		}
		decoded[f.ID] = d
		f.Variations = d.variations
		flags, configs, versions = append(flags, f), append(configs, d.config), append(versions, v)
		slots = append(slots, &d.encoded)
	}
	return flags, configs, versions, slots, decoded, rows.Err()
}

func scanFlagWith(row pgx.Row, extra ...any) (domain.Flag, error) {
	var variations []byte
	f, err := scanRawFlag(row, &variations, extra...)
	if err != nil {
		return f, err
	}
	return f, json.Unmarshal(variations, &f.Variations)
}

// scanRawFlag scans flagColumns, leaving the variations as JSON, then the columns after them.
func scanRawFlag(row pgx.Row, variations *[]byte, extra ...any) (domain.Flag, error) {
	var f domain.Flag
	var kind, lifecycle string
	dest := append([]any{&f.ID, &f.ProjectID, &f.Key, &f.Name, &f.Description, &f.Tags, &f.OwnerID, &kind, variations,
		&f.Temporary, &f.RemovalDate, &lifecycle, &f.ClientSide, &f.Version, &f.CreatedAt, &f.UpdatedAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return f, err
	}
	f.Kind, f.Lifecycle = ruleset.FlagKind(kind), domain.Lifecycle(lifecycle)
	return f, nil
}

// FlagConfigs returns a flag's configuration in every environment (key → config).
func (t *Tx) FlagConfigs(ctx context.Context, flagID string) (map[string]domain.FlagEnvironment, error) {
	rows, err := t.q().Query(ctx, `SELECT e.key, c.config, c.version, c.updated_at FROM flag_configs c
		JOIN environments e ON e.id = c.environment_id WHERE c.flag_id = $1 ORDER BY e.position`, flagID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]domain.FlagEnvironment{}
	for rows.Next() {
		var fe domain.FlagEnvironment
		var raw []byte
		if err := rows.Scan(&fe.EnvironmentKey, &raw, &fe.Version, &fe.UpdatedAt); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(raw, &fe.FlagConfig); err != nil {
			return nil, err
		}
		out[fe.EnvironmentKey] = fe
	}
	return out, rows.Err()
}

// ProjectFlagsWithDefaults returns every flag of a project with the default configuration a
// new environment gives it.
func (t *Tx) ProjectFlagsWithDefaults(ctx context.Context, projectID string) ([]domain.Flag, []domain.FlagConfig, []int64, error) {
	rows, err := t.q().Query(ctx, `SELECT `+flagColumns+` FROM flags f WHERE f.project_id = $1 ORDER BY f.key`, projectID)
	if err != nil {
		return nil, nil, nil, err
	}
	flags, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Flag, error) { return scanFlag(r) })
	if err != nil {
		return nil, nil, nil, err
	}
	configs := make([]domain.FlagConfig, len(flags))
	versions := make([]int64, len(flags))
	for i := range flags {
		configs[i], versions[i] = domain.DefaultConfig(&flags[i]), 1
	}
	return flags, configs, versions, nil
}
