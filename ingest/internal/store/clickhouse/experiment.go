package clickhouse

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// VariantSumsQuery is the canonical per-variant metric query for the stats workers, exact with
// duplicate rows:
//   - units and their variation come from experiment_units (argMin/min are idempotent);
//   - tracks are deduplicated by event_id in a subquery before they are summed;
//   - only a unit's events at or after its first exposure count (the time condition is a
//     filter inside the aggregation because joins are equality-only on ClickHouse 18.16);
//   - units without events stay in n (ALL LEFT JOIN; unmatched right columns are 0, and a
//     timestamp of 0 never passes the time condition).
//
// Parameters: environment, experiment, environment, event key, then tracksWindowArgs(from, to).
const VariantSumsQuery = `
SELECT
    variation,
    count()                          AS n,
    countIf(unit_events > 0)         AS converted,
    sum(unit_total)                  AS sum_value,
    sum(unit_total * unit_total)     AS sum_squares,
    sum(unit_events)                 AS events_total
FROM (
    SELECT
        context_kind, context_key, variation,
        sumIf(value, ts_ms >= first_ms)  AS unit_total,
        countIf(ts_ms >= first_ms)       AS unit_events
    FROM (
        SELECT context_kind, context_key,
               argMinMerge(first_variation) AS variation,
               minMerge(first_exposed_ms) AS first_ms
        FROM experiment_units
        WHERE environment_id = ? AND experiment_key = ?
        GROUP BY context_kind, context_key
    )
    ALL LEFT JOIN (
        SELECT context_kind, context_key, event_id, any(value) AS value, any(timestamp_ms) AS ts_ms
        FROM tracks
        WHERE environment_id = ? AND event_key = ? AND ` + tracksWindowSQL + `
        GROUP BY context_kind, context_key, event_id
    ) USING (context_kind, context_key)
    GROUP BY context_kind, context_key, variation
)
GROUP BY variation
ORDER BY variation`

// VariantSums is one variation's sufficient statistics for a metric (STATS.md): n units, the
// units that converted (>= 1 event after exposure), and the sum and sum of squares of the
// per-unit value (the sum of the events' values).
type VariantSums struct {
	VariationKey string  `json:"variation_key"`
	N            uint64  `json:"n"`
	Converted    uint64  `json:"converted"`
	Sum          float64 `json:"sum"`
	SumSquares   float64 `json:"sum_squares"`
	Events       uint64  `json:"events"`
}

// ExperimentVariantSums runs VariantSumsQuery for one experiment and one track event key over
// the events in [from, to).
func ExperimentVariantSums(ctx context.Context, conn driver.Conn, env, experiment, eventKey string, from, to time.Time) ([]VariantSums, error) {
	rows, err := conn.Query(ctx, VariantSumsQuery, append([]any{env, experiment, env, eventKey}, tracksWindowArgs(from, to)...)...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: variant sums: %w", err)
	}
	defer rows.Close()
	var out []VariantSums
	for rows.Next() {
		var v VariantSums
		if err := rows.Scan(&v.VariationKey, &v.N, &v.Converted, &v.Sum, &v.SumSquares, &v.Events); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
