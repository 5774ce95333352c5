package metricsql

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Baseline is a metric's per-context distribution over the contexts that were served a flag
// in a period (whatever variation): what planning a new experiment on that flag starts from.
type Baseline struct {
	Units    int64   // contexts counted (for mean metrics: those with an event)
	Exposed  int64   // contexts served the flag
	Complete int64   // contexts whose conversion window had ended by the period's end
	Mean     float64 // per-context mean
	Variance float64 // per-context sample variance
}

// FlagBaseline computes a (non-ratio) metric's baseline over the contexts served the flag in
// [from, to), each measured in its conversion window after its first evaluation in the period.
// Only contexts whose window had ended by to are measured (Complete of Exposed; Units of
// them): a context exposed an hour before to has had no time to convert, and counting it would
// bias the mean down. When fewer than two such contexts have a value (a window as long as the
// period), every context is measured, windows cut or not.
func FlagBaseline(ctx context.Context, conn driver.Conn, env, flagKey string, m *Metric, from, to time.Time) (Baseline, error) {
	if m.Kind == Ratio {
		return Baseline{}, fmt.Errorf("metricsql: no baseline for ratio metric %q", m.Key)
	}
	var a args
	units := `SELECT context_kind, context_key, min(timestamp_ms) AS first_ms FROM exposures
		WHERE environment_id = ` + a.add(env) + ` AND flag_key = ` + a.add(flagKey) + ` AND timestamp >= toDateTime(` + a.add(from.Unix()) +
		`)` + beforeSQL(to, &a) + ` GROUP BY context_kind, context_key`
	events := `SELECT context_kind, context_key, event_id, any(value) AS value, any(timestamp_ms) AS ts FROM tracks
		WHERE environment_id = ` + a.add(env) + ` AND event_key = ` + a.add(m.EventKey) + ` AND timestamp >= toDateTime(` + a.add(from.Unix()) + `)` + daysSQL(from, time.Time{}, &a)
	filters, err := eventSQL(m, &a)
	if err != nil {
		return Baseline{}, err
	}
	events += ` AND ` + filters + ` GROUP BY context_kind, context_key, event_id`
	// Events in each context's window: join units to events (events left, one join level).
	window := fmt.Sprintf("ts >= first_ms + %d AND ts < first_ms + %d", m.WindowStart.Milliseconds(), m.WindowEnd.Milliseconds())
	unitsAgain := `SELECT context_kind, context_key, min(timestamp_ms) AS first_ms FROM exposures
		WHERE environment_id = ` + a.add(env) + ` AND flag_key = ` + a.add(flagKey) + ` AND timestamp >= toDateTime(` + a.add(from.Unix()) +
		`)` + beforeSQL(to, &a) + ` GROUP BY context_kind, context_key`
	totals := `SELECT context_kind, context_key, count() AS events, sum(value) AS value_sum FROM (` + events + `)
		ALL INNER JOIN (` + unitsAgain + `) USING (context_kind, context_key) WHERE ` + window + ` GROUP BY context_kind, context_key`
	perUnit := `SELECT ` + unitValue(m.Kind, "events", "value_sum") + ` AS v, ` + hasExpr(m.Kind, "events") + ` AS has,
		` + fmt.Sprintf("first_ms + %d <= %d", m.WindowEnd.Milliseconds(), to.UnixMilli()) + ` AS done FROM (
		SELECT context_kind, context_key, first_ms, events, value_sum FROM (` + units + `) ALL LEFT JOIN (` + totals + `) USING (context_kind, context_key))`
	q := `SELECT count(), toInt64(sum(has)), sum(has * v), sum(has * v * v),
		toInt64(sum(done)), toInt64(sum(has * done)), sum(has * done * v), sum(has * done * v * v) FROM (` + perUnit + `)`
	rows, err := conn.Query(ctx, q, a...)
	if err != nil {
		return Baseline{}, fmt.Errorf("metricsql: baseline of %s: %w", m.Key, err)
	}
	defer rows.Close()
	var b Baseline
	var exposed uint64
	var s, ss, doneS, doneSS float64
	var doneUnits int64
	if rows.Next() {
		if err := rows.Scan(&exposed, &b.Units, &s, &ss, &b.Complete, &doneUnits, &doneS, &doneSS); err != nil {
			return b, err
		}
	}
	b.Exposed = int64(exposed)
	if doneUnits >= 2 {
		b.Units, s, ss = doneUnits, doneS, doneSS
	} else {
		b.Complete = b.Exposed
	}
	if b.Units > 1 {
		n := float64(b.Units)
		b.Mean = s / n
		b.Variance = (ss - s*s/n) / (n - 1)
		if m.Kind == Proportion {
			b.Variance = b.Mean * (1 - b.Mean)
		}
	}
	return b, rows.Err()
}
