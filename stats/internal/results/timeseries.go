package results

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"
)

// Point is one treatment's effect on one metric at one refresh.
type Point struct {
	ComputedAt  time.Time `json:"computed_at"`
	Variation   string    `json:"variation"`
	N           int64     `json:"n"`
	Effect      *float64  `json:"effect"`
	CILower     *float64  `json:"ci_lower"`
	CIUpper     *float64  `json:"ci_upper"`
	PValue      *float64  `json:"p_value"`
	ChanceToWin *float64  `json:"chance_to_win"`
}

// appendPoints adds one snapshot's points of a metric (one per treatment).
func appendPoints(out []Point, at time.Time, m MetricResult) []Point {
	for _, v := range m.Variants {
		if v.Control {
			continue
		}
		p := Point{ComputedAt: at, Variation: v.Key, N: v.N, Effect: v.Effect, PValue: v.PValue, ChanceToWin: v.ChanceToWin}
		if v.CI != nil {
			p.CILower, p.CIUpper = finitePtr(v.CI.Low), finitePtr(v.CI.High)
		}
		out = append(out, p)
	}
	return out
}

// MaxSeriesSnapshots is how many snapshots a time series reads at most (Store.Series): at the
// default 5-minute interval a 14-day experiment has about 4,000, more than a chart can show.
const MaxSeriesSnapshots = 500

// Series is a metric's effect and interval over the experiment's snapshots computed in
// [from, to] (a zero bound: unbounded), oldest first. Of more than limit snapshots it takes limit
// spread evenly over the range by rank, always the first and the latest. Postgres picks them
// and extracts the metric's part of each: only that reaches the service and is decoded.
func (s *Store) Series(ctx context.Context, experimentID, metric string, from, to time.Time, limit int) ([]Point, error) {
	limit = min(max(limit, 2), MaxSeriesSnapshots)
	var lo, hi *time.Time
	if !from.IsZero() {
		lo = &from
	}
	if !to.IsZero() {
		hi = &to
	}
	// Snapshot i of n (by time) is taken when it is the first of its bucket
	// floor(i*(limit-1)/(n-1)): the steps are under one bucket, so each of the limit buckets has
	// exactly one first snapshot, and i = 0 and i = n-1 are always among them.
	rows, err := s.Pool.Query(ctx, `WITH s AS (
			SELECT id, row_number() OVER (ORDER BY computed_at, id) - 1 AS i, count(*) OVER () AS n
			FROM results_snapshots
			WHERE experiment_id = $1 AND ($3::timestamptz IS NULL OR computed_at >= $3) AND ($4::timestamptz IS NULL OR computed_at <= $4))
		SELECT r.body->'computed_at', (SELECT m FROM jsonb_array_elements(CASE jsonb_typeof(r.body->'metrics') WHEN 'array' THEN r.body->'metrics' ELSE '[]' END) m
			WHERE m->>'metric' = $2 LIMIT 1)
		FROM s JOIN results_snapshots r ON r.id = s.id
		WHERE s.n <= $5 OR (s.i * ($5 - 1)) % (s.n - 1) < $5 - 1
		ORDER BY r.computed_at, r.id`, experimentID, metric, lo, hi, limit)
	if err != nil {
		return nil, err
	}
	out := []Point{}
	var at, raw []byte // the snapshot's computed_at (as in its body) and the metric's result
	_, err = pgx.ForEachRow(rows, []any{&at, &raw}, func() error {
		if raw == nil { // a snapshot without the metric
			return nil
		}
		var t time.Time
		var m MetricResult
		if err := json.Unmarshal(at, &t); err != nil {
			return err
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			return err
		}
		out = appendPoints(out, t, m)
		return nil
	})
	return out, err
}

func finitePtr(f float64) *float64 {
	if f != f || f > 1e308 || f < -1e308 {
		return nil
	}
	return &f
}
