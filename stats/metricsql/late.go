package metricsql

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Late events. Ingest accepts events whose time is up to its -clock-skew-past (168 h) before
// their receipt, so a day keeps receiving events long after it was folded: phones buffering
// offline, a Kafka or writer lag, a client clock corrected by ingest. The caller records with
// each fold when its read started (minus the delivery margin: its watermark) and asks
// LatestArrivals whether events of a folded day arrived since; if so it folds the day again
// under a new fold id and records that id instead. received_at is the collector's receipt
// time, so an event received before a watermark is assumed to be in ClickHouse when a fold
// read after it (the margin covers the Kafka → ClickHouse delivery).

// Arrivals are the latest receipt times (received_at) of an experiment's events since a
// watermark, by UTC day of the events' time: the metric events by event key, and the
// experiment's exposures (a late exposure adds a unit, or moves its first exposure, so its
// events on folded days and its CUPED cohort change).
type Arrivals struct {
	tracks    map[string]map[time.Time]time.Time
	exposures map[time.Time]time.Time
}

// LatestArrivals reads the latest receipt time of the events of keys whose time is in
// [from, to) and of the experiment's exposures up to to, of those received at or after since.
// An exposure received after since has a time after since - lateness (ingest clamps older
// times to the receipt), which bounds the exposures read.
//
// Cost: tracks is sorted by (environment, event key, day), so the read takes only the keys'
// granules of the days in [from, to) and reads their timestamp and received_at; exposures are
// sorted by experiment, so the experiment's exposures of the months since since - lateness.
func LatestArrivals(ctx context.Context, conn driver.Conn, x Experiment, keys []string, from, to, since time.Time, lateness time.Duration) (Arrivals, error) {
	out := Arrivals{tracks: map[string]map[time.Time]time.Time{}, exposures: map[time.Time]time.Time{}}
	if x.rollout() {
		return out, fmt.Errorf("metricsql: a rollout (flag %q) is read raw, not folded", x.Flag)
	}
	// intDiv(toUInt32(timestamp), 86400) is the UTC day whatever the server's time zone.
	if len(keys) > 0 {
		var a args
		q := `SELECT event_key, intDiv(toUInt32(timestamp), 86400) AS day, max(received_at) FROM tracks
		WHERE environment_id = ` + a.add(x.EnvironmentID) + ` AND event_key IN (` + placeholders(stringsToAny(keys), &a) + `)
		AND timestamp >= toDateTime(` + a.add(from.Unix()) + `) AND timestamp < toDateTime(` + a.add(to.Unix()) + `)` + daysSQL(from, to, &a) + `
		AND received_at >= toDateTime(` + a.add(since.Unix()) + `)
		GROUP BY event_key, day`
		if err := scanArrivals(ctx, conn, q, a, func(key string, day, at time.Time) {
			if out.tracks[key] == nil {
				out.tracks[key] = map[time.Time]time.Time{}
			}
			out.tracks[key][day] = at
		}); err != nil {
			return out, fmt.Errorf("metricsql: late events: %w", err)
		}
	}
	lo := since.Add(-lateness)
	if first := x.FirstDay(); lo.Before(first) {
		lo = first
	}
	var a args
	q := `SELECT '', intDiv(toUInt32(timestamp), 86400) AS day, max(received_at) FROM exposures
		WHERE environment_id = ` + a.add(x.EnvironmentID) + ` AND experiment_key = ` + a.add(x.Key) + `
		AND timestamp >= toDateTime(` + a.add(lo.Unix()) + `) AND timestamp < toDateTime(` + a.add(to.Unix()) + `)
		AND received_at >= toDateTime(` + a.add(since.Unix()) + `)
		GROUP BY day`
	if err := scanArrivals(ctx, conn, q, a, func(_ string, day, at time.Time) { out.exposures[day] = at }); err != nil {
		return out, fmt.Errorf("metricsql: late exposures: %w", err)
	}
	return out, nil
}

func scanArrivals(ctx context.Context, conn driver.Conn, q string, a args, add func(key string, day, at time.Time)) error {
	rows, err := conn.Query(ctx, q, a...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var key string
		var day uint32
		var at time.Time
		if err := rows.Scan(&key, &day, &at); err != nil {
			return err
		}
		add(key, time.Unix(int64(day)*86400, 0).UTC(), at)
	}
	return rows.Err()
}

// Since says whether events of key with a time on a UTC day in [from, to] (days), or
// exposures on a day up to to, were received at or after watermark.
func (a Arrivals) Since(key string, from, to, watermark time.Time) bool {
	from, to, watermark = Day(from), Day(to), watermark.Truncate(time.Second)
	for day, at := range a.tracks[key] {
		if !day.Before(from) && !day.After(to) && !at.Before(watermark) {
			return true
		}
	}
	for day, at := range a.exposures {
		if !day.After(to) && !at.Before(watermark) {
			return true
		}
	}
	return false
}
