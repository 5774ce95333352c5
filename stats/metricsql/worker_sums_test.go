package metricsql

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestUnitIndexFindsUnitsWhoseSlotsCollide: hashes of one bucket that land on the same slot (or
// on the table's last slot, wrapping around) are all found, and hashes that are not units are not.
func TestUnitIndexFindsUnitsWhoseSlotsCollide(t *testing.T) {
	var x unitIndex
	x.reset(5) // 16 slots
	// Same bucket (h % 1024 = 7); slot (h / 1024) & 15: 15, 15, 15 (wrapping to 0 and 1), 3.
	units := []uint64{15*1024 + 7, 31*1024 + 7, 47*1024 + 7, 3*1024 + 7}
	for i, h := range units {
		x.put(h, int32(i))
	}
	for i, h := range units {
		if got := x.get(h); got != int32(i) {
			t.Fatalf("unit %d (hash %d): found %d", i, h, got)
		}
	}
	for _, h := range []uint64{63*1024 + 7, 0*1024 + 7, 4*1024 + 7} {
		if got := x.get(h); got != -1 {
			t.Fatalf("hash %d is no unit's, found unit %d", h, got)
		}
	}
	// Reset for a bucket of more units: nothing of the previous bucket is left.
	x.reset(100)
	if len(x.slots) != 256 || x.get(units[0]) != -1 {
		t.Fatalf("after reset: %d slots, unit found %d", len(x.slots), x.get(units[0]))
	}
}

// TestEventSetFindsCopiesOnly: an event delivered twice (same context, id and conditions) is a
// copy; an id reused by another context of the bucket, or by another key's event of the same
// context, is a different event. Time-ordered ids, whose first bytes barely differ, are told
// apart as well.
func TestEventSetFindsCopiesOnly(t *testing.T) {
	x, y := uuid.New(), uuid.New()
	var s eventSet
	s.reset(6)
	// Two contexts of one bucket whose events of id x start at the same slot.
	a, b := uint64(5*sliceBuckets+7), uint64(6*sliceBuckets+7)
	for ; s.slot(b, x) != s.slot(a, x); b += sliceBuckets {
	}
	events := []rawEvent{
		{h: a, id: x, mask: 1, ts: 10},
		{h: a, id: x, mask: 1, ts: 10}, // a copy
		{h: b, id: x, mask: 1},         // another context's event, same id
		{h: a, id: x, mask: 2},         // another key's event, same id
		{h: a, id: y, mask: 1},
		{h: b, id: x, mask: 1}, // a copy of the third
	}
	for k, want := range []bool{true, false, true, true, true, false} {
		if got := s.add(events, int32(k)); got != want {
			t.Fatalf("event %d: added %v, want %v", k, got, want)
		}
	}
	events = events[:0]
	for range 2000 {
		events = append(events, rawEvent{h: a, id: uuid.Must(uuid.NewV7()), mask: 1})
	}
	events = append(events, events...)
	s.reset(len(events))
	for k := range events {
		if got, want := s.add(events, int32(k)), k < 2000; got != want {
			t.Fatalf("time-ordered event %d: added %v, want %v", k, got, want)
		}
	}
}

// TestCovariateTailEventsInTheWorker: the CUPED covariates' tail read as events counts, for a
// unit first exposed since the folds, the events in its pre-period [first - preperiod, first),
// each once however often delivered; a unit first exposed before the folds gets its covariate
// from its folded cohort, never from these events. The conversion window of the same events is
// tested apart.
func TestCovariateTailEventsInTheWorker(t *testing.T) {
	folded := time.Date(2026, 10, 10, 0, 0, 0, 0, time.UTC)
	week := 7 * 24 * time.Hour
	conv := &Metric{Key: "conv", Version: 1, Kind: Proportion, EventKey: "purchase", WindowEnd: week}
	rev := &Metric{Key: "rev", Version: 1, Kind: Sum, EventKey: "purchase", WindowEnd: week, CUPEDPreperiod: week}
	x := Experiment{EnvironmentID: "env1", Key: "exp1", Start: folded.Add(-10 * 24 * time.Hour)}
	s := Snapshot{FoldedUpTo: folded, Now: folded.Add(25 * time.Hour)}
	reqs := []SumsRequest{{Metric: conv}, {Metric: rev, CUPED: true}}
	w := newWorkerSums(x, reqs, s, 2)
	if err := w.joinRaw(x, s); err != nil {
		t.Fatal(err)
	}
	if len(w.rawConds) != 1 || len(w.covConds) != 1 {
		t.Fatalf("%d conversion conditions and %d covariate ones, want one each", len(w.rawConds), len(w.covConds))
	}
	const conversion, covariate = 1, 2 // the two conditions' bits
	fresh, old := uint64(1*sliceBuckets+3), uint64(2*sliceBuckets+3)
	first := folded.Add(time.Hour).UnixMilli() // fresh's first exposure, in the tail
	oldFirst := folded.Add(-time.Hour).UnixMilli()
	ms, pre := int64(1), week.Milliseconds()
	units := []workerRow{{h: fresh, ev: 1, vs: float64(first)}, {h: old, ev: 2, vs: float64(oldFirst)}}
	at := func(h uint64, ts int64, v float64, mask uint64) rawEvent {
		return rawEvent{h: h, ts: ts, v: v, mask: mask, id: uuid.New()}
	}
	events := []rawEvent{
		at(fresh, first-pre, 1, covariate),    // the pre-period's first millisecond: counts
		at(fresh, first-pre-ms, 2, covariate), // before it
		at(fresh, first-ms, 4, covariate),     // its last millisecond: counts
		at(fresh, first, 8, covariate),        // the first exposure: no longer before it
		at(fresh, first, 32, conversion),      // a conversion at the first exposure
		at(old, oldFirst-ms, 16, covariate),   // in a pre-period, of a unit of a folded cohort
		at(old, oldFirst+ms, 64, conversion),  // and its conversion
	}
	events = append(events, events[0]) // delivered twice
	if err := w.bucket(events, units); err != nil {
		t.Fatal(err)
	}
	got := w.finish([]string{"a", "b"})
	a, b := got[1][0], got[1][1]
	if a.CovSum != 5 || a.Sum != 32 || b.CovSum != 0 || b.Sum != 64 {
		t.Fatalf("revenue: unit in the tail covariate %v and sum %v (want 5, 32); unit of a folded cohort covariate %v and sum %v (want 0, 64)",
			a.CovSum, a.Sum, b.CovSum, b.Sum)
	}
	if c := got[0]; c[0].Sum != 1 || c[1].Sum != 1 {
		t.Fatalf("conversion: %v and %v, want 1 each", c[0].Sum, c[1].Sum)
	}
}
