package results

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchyard-io/switchyard/stats/engine"
)

// TestSeriesPicksEvenlyIncludingTheEnds: of n snapshots, Series with a limit takes min(n,
// limit) of them, the first and the latest always, one per even bucket; snapshots without the
// metric add no point, and other experiments' snapshots none either.
func TestSeriesPicksEvenlyIncludingTheEnds(t *testing.T) {
	ctx := context.Background()
	store := newStore(t)
	id, other := uuid.NewString(), uuid.NewString()
	first := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	const n = 7
	for i := 0; i < n; i++ {
		effect := float64(i)
		snap := &Snapshot{ComputedAt: first.Add(time.Duration(i) * time.Hour), Metrics: []MetricResult{{Metric: "m",
			Variants: []engine.VariantResult{{Key: "a", Control: true}, {Key: "b", Effect: &effect}, {Key: "c", Effect: &effect}}}}}
		if err := store.SaveSnapshot(ctx, id, snap); err != nil {
			t.Fatal(err)
		}
		if err := store.SaveSnapshot(ctx, other, snap); err != nil {
			t.Fatal(err)
		}
	}
	// A snapshot before the others without the metric.
	if err := store.SaveSnapshot(ctx, id, &Snapshot{ComputedAt: first.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for limit, want := range map[int][]float64{
		2: {0, 6}, 3: {0, 3, 6}, 4: {0, 2, 4, 6}, 5: {0, 2, 3, 5, 6}, 7: {0, 1, 2, 3, 4, 5, 6}, 100: {0, 1, 2, 3, 4, 5, 6},
	} {
		points, err := store.Series(ctx, id, "m", first, time.Time{}, limit)
		if err != nil {
			t.Fatal(err)
		}
		var got []float64
		for i := 0; i < len(points); i += 2 {
			if points[i].Variation != "b" || points[i+1].Variation != "c" || *points[i].Effect != *points[i+1].Effect {
				t.Fatalf("limit %d: points %+v", limit, points)
			}
			got = append(got, *points[i].Effect)
		}
		if len(got) != len(want) {
			t.Fatalf("limit %d: snapshots %v, want %v", limit, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("limit %d: snapshots %v, want %v", limit, got, want)
			}
		}
	}
	// Without a lower bound the snapshot lacking the metric is one of the eight: no point.
	points, err := store.Series(ctx, id, "m", time.Time{}, time.Time{}, 2)
	if err != nil || len(points) != 2 || *points[0].Effect != 6 {
		t.Fatalf("points %+v (%v), want the latest snapshot's only", points, err)
	}
}
