package metricsql

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestFlagBaselineMeasuresOnlyFinishedWindows: over a 14-day period in which every context
// converts three days after its first exposure, the contexts of the last three days have not
// converted yet. Counting them would put the conversion baseline near 11/14; measured over the
// contexts whose 7-day window had ended, it is the true 100%. Every exposed context still
// counts as traffic.
func TestFlagBaselineMeasuresOnlyFinishedWindows(t *testing.T) {
	conn := chDatabase(t)
	to := Day(time.Now()).Add(-time.Hour)
	from := to.Add(-14 * 24 * time.Hour)
	var exposures [][5]any
	var events []event
	for i := range 1400 {
		key := "u" + uuid.NewString()[:8]
		first := from.Add(time.Duration(i) * 14 * 24 * time.Hour / 1400)
		exposures = append(exposures, [5]any{key, "off", first.UnixMilli(), uuid.New(), ""})
		if bought := first.Add(3 * 24 * time.Hour); bought.Before(to) {
			events = append(events, event{id: uuid.New(), kind: "user", key: key, ts: bought.UnixMilli(), value: 20, currency: "EUR"})
		}
	}
	insert(t, conn, "env-b", events, exposures)
	m := &Metric{Key: "conversion", Kind: Proportion, EventKey: "purchase", WindowEnd: 7 * 24 * time.Hour}
	b, err := FlagBaseline(context.Background(), conn, "env-b", "checkout", m, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if b.Exposed != 1400 || b.Complete < 700 || b.Complete > 701 || b.Units != b.Complete || b.Mean != 1 {
		t.Fatalf("baseline %+v: want 1,400 exposed, 700 (701 with the boundary) with finished windows, all of them converted", b)
	}
	// A window as long as the period leaves none finished: every context is measured then.
	m.WindowEnd = 30 * 24 * time.Hour
	if b, err = FlagBaseline(context.Background(), conn, "env-b", "checkout", m, from, to); err != nil {
		t.Fatal(err)
	}
	if b.Complete != 1400 || b.Units != 1400 || math.Abs(b.Mean-11.0/14) > 0.01 {
		t.Fatalf("baseline with no finished window %+v: want every context measured (mean about 11/14)", b)
	}
}

// TestFlagBaselineEndsToTheMillisecond: a baseline read at a time within a second (an estimate
// asked for right after the flag's traffic, as a planning page does) counts the contexts first
// exposed earlier in that second and not those exposed after it.
func TestFlagBaselineEndsToTheMillisecond(t *testing.T) {
	conn := chDatabase(t)
	to := Day(time.Now()).Add(-time.Hour + 700*time.Millisecond)
	from := to.Add(-14 * 24 * time.Hour)
	var exposures [][5]any
	var events []event
	for i, offset := range []time.Duration{-600 * time.Millisecond, -300 * time.Millisecond, -time.Millisecond, 0, 200 * time.Millisecond} {
		key := fmt.Sprintf("u%d", i)
		at := to.Add(offset)
		exposures = append(exposures, [5]any{key, "off", at.UnixMilli(), uuid.New(), ""})
		if i == 0 {
			events = append(events, event{id: uuid.New(), kind: "user", key: key, ts: at.UnixMilli(), value: 20, currency: "EUR"})
		}
	}
	insert(t, conn, "env-ms", events, exposures)
	m := &Metric{Key: "conversion", Kind: Proportion, EventKey: "purchase", WindowEnd: 7 * 24 * time.Hour}
	b, err := FlagBaseline(context.Background(), conn, "env-ms", "checkout", m, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if b.Exposed != 3 || b.Units != 3 || math.Abs(b.Mean-1.0/3) > 1e-9 {
		t.Fatalf("baseline %+v: want the 3 contexts exposed in the second before %s (one converted), not those at or after it", b, to.Format(time.RFC3339Nano))
	}
}
