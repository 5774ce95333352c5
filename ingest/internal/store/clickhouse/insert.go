package clickhouse

import (
	"context"
	"fmt"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/switchyard-io/switchyard/ingest/internal/event"
)

// Table names of the raw event tables.
const (
	TableExposures = "exposures"
	TableTracks    = "tracks"
	TableSummaries = "evaluation_summaries"
)

// Rows buffers one writer batch column by column, one set of columns per table, so that the
// insert hands clickhouse-go whole columns (no per-row reflection).
type Rows struct {
	Exposures exposureCols
	Tracks    trackCols
	Summaries summaryCols
}

type common struct {
	env        []string
	id         []uuid.UUID
	ts         []int64 // seconds
	receivedAt []int64 // seconds
	clamped    []uint8
	ctxKind    []string
	ctxKey     []string
	sdkName    []string
	sdkVersion []string
}

func (c *common) add(r *event.Record, ts int64) {
	c.env = append(c.env, r.EnvironmentID)
	c.id = append(c.id, uuid.UUID(r.ID))
	c.ts = append(c.ts, ts/1000)
	c.receivedAt = append(c.receivedAt, r.ReceivedAt/1000)
	var cl uint8
	if r.Clamped {
		cl = 1
	}
	c.clamped = append(c.clamped, cl)
	c.ctxKind = append(c.ctxKind, r.ContextKind)
	c.ctxKey = append(c.ctxKey, r.ContextKey)
	c.sdkName = append(c.sdkName, r.SDKName)
	c.sdkVersion = append(c.sdkVersion, r.SDKVersion)
}

func (c *common) reset() {
	c.env, c.id, c.ts, c.receivedAt, c.clamped = c.env[:0], c.id[:0], c.ts[:0], c.receivedAt[:0], c.clamped[:0]
	c.ctxKind, c.ctxKey, c.sdkName, c.sdkVersion = c.ctxKind[:0], c.ctxKey[:0], c.sdkName[:0], c.sdkVersion[:0]
}

type exposureCols struct {
	common
	tsMS, flagVersion                                 []uint64
	clientTS                                          []int64
	flagKey, variationKey, reason, ruleID, experiment []string
}

type trackCols struct {
	common
	tsMS                          []uint64
	clientTS                      []int64
	eventKey                      []string
	value                         []float64
	hasValue                      []uint8
	propKeys, propTypes, propVals [][]string
}

type summaryCols struct {
	common
	start, end            []int64
	flagKey, variationKey []string
	flagVersion, count    []uint64
}

// Add appends one record's rows (a summary adds one row per counter).
func (r *Rows) Add(rec *event.Record) {
	switch rec.Type {
	case event.TypeExposure:
		c := &r.Exposures
		c.add(rec, rec.Timestamp)
		c.tsMS = append(c.tsMS, uint64(rec.Timestamp))
		c.clientTS = append(c.clientTS, rec.ClientTimestamp)
		c.flagKey = append(c.flagKey, rec.FlagKey)
		c.variationKey = append(c.variationKey, rec.VariationKey)
		c.flagVersion = append(c.flagVersion, uint64(rec.FlagVersion))
		c.reason = append(c.reason, rec.Reason)
		c.ruleID = append(c.ruleID, rec.RuleID)
		c.experiment = append(c.experiment, rec.ExperimentKey)
	case event.TypeTrack:
		c := &r.Tracks
		c.add(rec, rec.Timestamp)
		c.tsMS = append(c.tsMS, uint64(rec.Timestamp))
		c.clientTS = append(c.clientTS, rec.ClientTimestamp)
		c.eventKey = append(c.eventKey, rec.EventKey)
		var hv uint8
		if rec.HasValue {
			hv = 1
		}
		c.value = append(c.value, rec.Value)
		c.hasValue = append(c.hasValue, hv)
		keys := make([]string, len(rec.Properties))
		types := make([]string, len(rec.Properties))
		vals := make([]string, len(rec.Properties))
		for i, p := range rec.Properties {
			keys[i], types[i], vals[i] = p.Key, p.Kind.String(), p.Text()
		}
		c.propKeys = append(c.propKeys, keys)
		c.propTypes = append(c.propTypes, types)
		c.propVals = append(c.propVals, vals)
	case event.TypeSummary:
		c := &r.Summaries
		for _, k := range rec.Counters {
			c.add(rec, rec.Timestamp)
			c.start = append(c.start, rec.Start/1000)
			c.end = append(c.end, rec.End/1000)
			c.flagKey = append(c.flagKey, k.FlagKey)
			c.variationKey = append(c.variationKey, k.VariationKey)
			c.flagVersion = append(c.flagVersion, uint64(k.FlagVersion))
			c.count = append(c.count, uint64(k.Count))
		}
	}
}

// Len is the number of rows buffered in all tables.
func (r *Rows) Len() int { return len(r.Exposures.id) + len(r.Tracks.id) + len(r.Summaries.id) }

// Reset empties the buffers, keeping their capacity.
func (r *Rows) Reset() {
	e := &r.Exposures
	e.common.reset()
	e.tsMS, e.clientTS, e.flagKey, e.variationKey, e.flagVersion = e.tsMS[:0], e.clientTS[:0], e.flagKey[:0], e.variationKey[:0], e.flagVersion[:0]
	e.reason, e.ruleID, e.experiment = e.reason[:0], e.ruleID[:0], e.experiment[:0]
	t := &r.Tracks
	t.common.reset()
	t.tsMS, t.clientTS, t.eventKey, t.value, t.hasValue = t.tsMS[:0], t.clientTS[:0], t.eventKey[:0], t.value[:0], t.hasValue[:0]
	clear(t.propKeys)
	clear(t.propTypes)
	clear(t.propVals)
	t.propKeys, t.propTypes, t.propVals = t.propKeys[:0], t.propTypes[:0], t.propVals[:0]
	s := &r.Summaries
	s.common.reset()
	s.start, s.end, s.flagKey, s.variationKey, s.flagVersion, s.count = s.start[:0], s.end[:0], s.flagKey[:0], s.variationKey[:0], s.flagVersion[:0], s.count[:0]
}

// Column binds a column name to the slice appended for it.
type Column struct {
	Name string
	Data any
}

// Columns returns, per non-empty table, the explicit column list and data of its insert.
func (r *Rows) Columns() map[string][]Column {
	out := map[string][]Column{}
	if e := &r.Exposures; len(e.id) > 0 {
		out[TableExposures] = []Column{
			{"environment_id", e.env}, {"event_id", e.id}, {"timestamp", e.ts}, {"timestamp_ms", e.tsMS},
			{"client_timestamp_ms", e.clientTS}, {"received_at", e.receivedAt}, {"clamped", e.clamped},
			{"context_kind", e.ctxKind}, {"context_key", e.ctxKey}, {"flag_key", e.flagKey},
			{"variation_key", e.variationKey}, {"flag_version", e.flagVersion}, {"reason", e.reason},
			{"rule_id", e.ruleID}, {"experiment_key", e.experiment}, {"sdk_name", e.sdkName}, {"sdk_version", e.sdkVersion},
		}
	}
	if t := &r.Tracks; len(t.id) > 0 {
		out[TableTracks] = []Column{
			{"environment_id", t.env}, {"event_id", t.id}, {"timestamp", t.ts}, {"timestamp_ms", t.tsMS},
			{"client_timestamp_ms", t.clientTS}, {"received_at", t.receivedAt}, {"clamped", t.clamped},
			{"context_kind", t.ctxKind}, {"context_key", t.ctxKey}, {"event_key", t.eventKey},
			{"value", t.value}, {"has_value", t.hasValue}, {"properties.key", t.propKeys},
			{"properties.type", t.propTypes}, {"properties.value", t.propVals},
			{"sdk_name", t.sdkName}, {"sdk_version", t.sdkVersion},
		}
	}
	if s := &r.Summaries; len(s.id) > 0 {
		out[TableSummaries] = []Column{
			{"environment_id", s.env}, {"event_id", s.id}, {"timestamp", s.ts}, {"received_at", s.receivedAt},
			{"clamped", s.clamped}, {"window_start", s.start}, {"window_end", s.end}, {"flag_key", s.flagKey},
			{"variation_key", s.variationKey}, {"flag_version", s.flagVersion}, {"count", s.count},
			{"context_kind", s.ctxKind}, {"context_key", s.ctxKey}, {"sdk_name", s.sdkName}, {"sdk_version", s.sdkVersion},
		}
	}
	return out
}

// InsertColumns inserts one table's columns with a native-protocol batch (one INSERT naming
// every column).
func InsertColumns(ctx context.Context, conn driver.Conn, table string, cols []Column) error {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+table+" ("+strings.Join(names, ", ")+")")
	if err != nil {
		return fmt.Errorf("clickhouse: prepare insert into %s: %w", table, err)
	}
	for i, c := range cols {
		if err := b.Column(i).Append(c.Data); err != nil {
			_ = b.Abort()
			return fmt.Errorf("clickhouse: append %s.%s: %w", table, c.Name, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("clickhouse: insert into %s: %w", table, err)
	}
	return nil
}
