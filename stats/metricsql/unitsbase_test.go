package metricsql

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
)

// A base advanced to a later watermark merges again the contexts exposed since: its units,
// counts and sums must be those of a fresh merge of every state, whatever arrived — new units,
// repeat exposures, a second variation, an earlier first exposure, and an exposure stamped
// before the analysis' first day, some of them received late with old timestamps.
func TestAdvancedUnitsMatchAFreshMerge(t *testing.T) {
	conn := chDatabase(t)
	ctx := context.Background()
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(3, 5))
	units, events, exposures := population(r, start, 2000)
	x := Experiment{EnvironmentID: "env1", Key: "exp1", Start: start}
	week, lateness := 7*24*time.Hour, 168*time.Hour
	now := start.Add(20 * 24 * time.Hour)

	// The base is built when everything received before the watermark is in; exposures stamped
	// (and so received) from then on come after it.
	watermark := start.Add(36 * time.Hour)
	var before, after [][5]any
	for _, e := range exposures {
		if e[2].(int64) < watermark.UnixMilli() {
			before = append(before, e)
		} else {
			after = append(after, e)
		}
	}
	insertExposures(t, conn, "env1", "SPLIT", before, nil)
	insertEvents(t, conn, "env1", events)
	base, err := BuildUnitsBase(ctx, conn, x, watermark)
	if err != nil {
		t.Fatal(err)
	}
	defer DropUnits(ctx, conn, base.ID)

	// Nothing received since: the same partition, under the new watermark.
	later := watermark.Add(10 * time.Minute)
	same, delta, err := AdvanceUnits(ctx, conn, x, base, lateness, later)
	if err != nil {
		t.Fatal(err)
	}
	if same.ID != base.ID || delta != 0 || !same.Watermark.Equal(later) {
		t.Fatalf("nothing received since the base, but a delta of %d contexts (%+v from %+v)", delta, same, base)
	}

	// Exposures received late, with old timestamps, to units already in the base (first exposed
	// before the watermark).
	var early []int
	for i, u := range units {
		if u.firstMs < watermark.Add(-3*time.Hour).UnixMilli() && !u.multiple {
			early = append(early, i)
		}
	}
	late := watermark.Add(2 * time.Hour)
	other := map[string]string{"a": "b", "b": "a"}
	// A second variation: the unit is excluded from then on.
	second := &units[early[0]]
	second.multiple = true
	// An earlier first exposure (same variation): its window and covariate move.
	earlier := &units[early[1]]
	earlier.firstMs -= (6 * time.Hour).Milliseconds()
	// Stamped before the analysis' first day (a client clock days behind): no longer a unit.
	gone := units[early[2]].key
	// A repeat exposure days later (its first exposure stays), and a purchase just after the
	// first: still in its window.
	repeat := units[early[3]]
	repeatEvent := event{id: uuid.New(), kind: "user", key: repeat.key, ts: repeat.firstMs + 60_000, value: 21, currency: "EUR"}
	// A new unit first exposed before the watermark but received after it, with events.
	fresh := unit{key: "late-unit", variation: "b", firstMs: start.Add(20 * time.Hour).UnixMilli()}
	lateExposures := [][5]any{
		{second.key, other[second.variation], second.firstMs + 60_000, uuid.New(), "exp1"},
		{earlier.key, earlier.variation, earlier.firstMs, uuid.New(), "exp1"},
		{gone, "a", start.Add(-48 * time.Hour).UnixMilli(), uuid.New(), "exp1"},
		{fresh.key, fresh.variation, fresh.firstMs, uuid.New(), "exp1"},
		{repeat.key, repeat.variation, repeat.firstMs + (48 * time.Hour).Milliseconds(), uuid.New(), "exp1"},
	}
	insertExposures(t, conn, "env1", "SPLIT", lateExposures, []time.Time{late, late, late, late, late})
	freshEvents := []event{{id: uuid.New(), kind: "user", key: fresh.key, ts: fresh.firstMs + 3_600_000, value: 12.5, currency: "EUR"},
		{id: uuid.New(), kind: "user", key: fresh.key, ts: fresh.firstMs - 3_600_000, value: 4, currency: "USD"}, repeatEvent}
	insertEvents(t, conn, "env1", freshEvents)
	events = append(events, freshEvents...)
	// And everything stamped after the watermark, received when stamped.
	insertExposures(t, conn, "env1", "SPLIT", after, nil)
	var kept []unit
	for _, u := range units {
		if u.key != gone {
			kept = append(kept, u)
		}
	}
	units = append(kept, fresh)

	next, delta, err := AdvanceUnits(ctx, conn, x, base, lateness, now)
	if err != nil {
		t.Fatal(err)
	}
	defer DropUnits(ctx, conn, next.ID)
	exposed, all := map[string]bool{}, map[string]bool{}
	for _, e := range append(after, lateExposures...) {
		exposed[e[0].(string)] = true
	}
	for _, e := range append(exposures, lateExposures...) {
		all[e[0].(string)] = true
	}
	// Advanced in place: the base's contexts stay as they were written; a row is appended for
	// each new context and a revision for each context of the base whose state changed (here:
	// the second variation, the earlier first exposure, the exposure before the first day, and
	// the population's units exposed to their second variation after the watermark).
	revised := changedStates(before, append(append([][5]any{}, before...), append(after, lateExposures...)...))
	if next.ID != base.ID || delta != int64(len(exposed)) || next.Rows != int64(len(all)) || next.Revisions != int64(revised) || revised < 3 {
		t.Fatalf("advanced to partition %d (the base's %d) of %d contexts and %d revisions with a delta of %d; want the base's own of %d contexts and %d revisions, a delta of the %d exposed since the watermark",
			next.ID, base.ID, next.Rows, next.Revisions, delta, len(all), revised, len(exposed))
	}
	// A reader that counts every row of the partition as a context (the version before
	// revisions) does not find what was recorded, and builds a base of its own.
	if n, err := unitPartitionRows(ctx, conn, next.ID); err != nil || n == next.Rows {
		t.Fatalf("every row of a revised base counts %d (%v), as many as its %d contexts", n, err, next.Rows)
	}
	// Nor does an advance of a record whose revisions are not the partition's.
	stale := next
	stale.Revisions = 0
	if _, _, err := AdvanceUnits(ctx, conn, x, stale, lateness, now); !errors.Is(err, ErrUnitsBaseGone) {
		t.Fatalf("advancing a base recorded without its revisions: %v, want ErrUnitsBaseGone", err)
	}
	// An advance its caller did not record (a crash before it, a failed record) leaves the
	// partition appended to: the base recorded before is not advanced again, but built anew.
	if _, _, err := AdvanceUnits(ctx, conn, x, base, lateness, now); !errors.Is(err, ErrUnitsBaseGone) {
		t.Fatalf("advancing the base as it was before an unrecorded advance: %v, want ErrUnitsBaseGone", err)
	}
	// The delta went with the advance.
	var parts uint64
	if err := conn.QueryRow(ctx, `SELECT uniqExact(snapshot_id) FROM experiment_unit_snapshots`).Scan(&parts); err != nil || parts != 1 {
		t.Fatalf("%d units partitions (%v), want the base alone", parts, err)
	}
	// A context revised again (an even earlier first exposure), and a new unit: its revisions
	// merge to the newest state. (Each advance as a refresh
	// an hour later would run it: the exposures received since its watermark, the earlier ones
	// among them unchanged.)
	earlier = &units[slices.IndexFunc(units, func(u unit) bool { return u.key == earlier.key })]
	again := [][5]any{{earlier.key, earlier.variation, earlier.firstMs - 60_000, uuid.New(), "exp1"},
		{"later-unit", "a", start.Add(50 * time.Hour).UnixMilli(), uuid.New(), "exp1"}}
	earlier.firstMs -= 60_000
	units = append(units, unit{key: "later-unit", variation: "a", firstMs: start.Add(50 * time.Hour).UnixMilli()})
	earlier = &units[slices.IndexFunc(units, func(u unit) bool { return u.key == earlier.key })] // units grew
	insertExposures(t, conn, "env1", "SPLIT", again, []time.Time{late.Add(90 * time.Minute), late.Add(90 * time.Minute)})
	next.Watermark = late.Add(time.Hour)
	if next, delta, err = AdvanceUnits(ctx, conn, x, next, lateness, now); err != nil || delta < 2 || next.Rows != int64(len(all)+1) ||
		next.Revisions != int64(revised+1) {
		t.Fatalf("advanced again: %d contexts and %d revisions, a delta of %d (%v); want %d and %d", next.Rows, next.Revisions, delta, err,
			len(all)+1, revised+1)
	}
	// Then a second variation for the unit that came with that advance; and exposures that
	// change nothing for revised contexts (the second variation again; a time between the
	// revised first exposure and the first row's): nothing is written for those.
	laterUnit := &units[len(units)-1]
	at := late.Add(150 * time.Minute)
	insertExposures(t, conn, "env1", "SPLIT", [][5]any{{laterUnit.key, "b", laterUnit.firstMs + 1000, uuid.New(), "exp1"},
		{second.key, other[second.variation], second.firstMs + 120_000, uuid.New(), "exp1"},
		{earlier.key, earlier.variation, earlier.firstMs + (30 * time.Minute).Milliseconds(), uuid.New(), "exp1"}},
		[]time.Time{at, at, at})
	laterUnit.multiple = true
	next.Watermark = late.Add(2 * time.Hour)
	// This advance picks the base's rows of the contexts exposed since by a 4-bit hash: every
	// sixteenth context of the base comes with each, and the join on the strings leaves them out.
	was := unitHash
	unitHash = "cityHash64(context_kind, context_key) % 16"
	next, _, err = AdvanceUnits(ctx, conn, x, next, lateness, now)
	unitHash = was
	if err != nil || next.Rows != int64(len(all)+1) || next.Revisions != int64(revised+2) {
		t.Fatalf("advanced a third time: %d contexts and %d revisions (%v), want %d and %d", next.Rows, next.Revisions, err, len(all)+1, revised+2)
	}
	// Every context as the base reads it now: the units' own first exposures and variations,
	// whether the readers tell the revised contexts by their hashes (distinct) or merge them
	// with their first rows (not known to be).
	// Not known to be distinct, they are read exactly even when hashes collide (here a hash
	// of 4 bits: every revised context shares its hash with others).
	for _, hash := range []string{"", "cityHash64(context_kind, context_key) % 16"} {
		distinct := hash == ""
		var a args
		q := x.WithUnits(Units{ID: next.ID, Now: now, revised: true, distinctHashes: distinct}).snapshotUnitsSQL(false, &a)
		if hash != "" {
			was := unitHash
			unitHash = hash
			u, err := BaseUnits(ctx, conn, x, next, now)
			if err != nil || u.distinctHashes {
				t.Fatalf("a 4-bit hash found distinct (%v)", err)
			}
			a = nil
			q = x.WithUnits(u).snapshotUnitsSQL(false, &a)
			unitHash = was
		}
		rows, err := conn.Query(ctx, q, a...)
		if err != nil {
			t.Fatal(err)
		}
		read := map[string]unit{}
		for rows.Next() {
			var kind, key, variation string
			var first uint64
			if err := rows.Scan(&kind, &key, &variation, &first); err != nil {
				t.Fatal(err)
			}
			read[key] = unit{key: key, variation: variation, firstMs: int64(first), multiple: variation == ""}
		}
		rows.Close()
		for _, un := range units {
			want := un
			if un.multiple {
				want.variation = ""
			}
			if got := read[un.key]; got != want {
				t.Fatalf("the advanced base reads (distinct hashes %v) %+v, want %+v", distinct, got, want)
			}
		}
		if len(read) != len(units) {
			t.Fatalf("the advanced base reads (distinct hashes %v) %d units, want %d", distinct, len(read), len(units))
		}
	}
	// Past the revisions' share a base is built again rather than advanced.
	func() {
		defer func(share float64) { MaxRevisedShare = share }(MaxRevisedShare)
		MaxRevisedShare = float64(revised+1) / float64(next.Rows)
		if _, _, err := AdvanceUnits(ctx, conn, x, next, lateness, now.Add(5*time.Minute)); !errors.Is(err, ErrUnitsBaseRevised) {
			t.Fatalf("advancing a base with %d revisions of %d contexts past a share of %v: %v, want ErrUnitsBaseRevised", next.Revisions, next.Rows,
				MaxRevisedShare, err)
		}
	}()
	u, err := BaseUnits(ctx, conn, x, next, now)
	if err != nil {
		t.Fatal(err)
	}
	fromScratch, err := Exposures(ctx, conn, x, now)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(u.Exposure) != fmt.Sprint(fromScratch) {
		t.Fatalf("units on the base count %+v, a fresh merge %+v", u.Exposure, fromScratch)
	}
	wantMultiple, wantUnits := int64(0), map[string]int64{}
	for _, un := range units {
		if un.multiple {
			wantMultiple++
		} else {
			wantUnits[un.variation]++
		}
	}
	if u.Exposure.Multiple != wantMultiple || u.Exposure.Units["a"] != wantUnits["a"] || u.Exposure.Units["b"] != wantUnits["b"] {
		t.Fatalf("units on the base count %+v, want %v and %d multiple", u.Exposure, wantUnits, wantMultiple)
	}
	if !u.distinctHashes {
		t.Fatal("the units' context hashes are distinct, but the units say they are not")
	}
	// A hash twice among the units (here one context twice in a partition, as two base rows) is
	// caught.
	dup := newID()
	for _, q := range []string{`SELECT toUInt64(?), bucket, context_kind, context_key, variation, first_ms FROM experiment_unit_snapshots WHERE snapshot_id = ?`,
		`SELECT toUInt64(?), bucket, context_kind, context_key, variation, first_ms FROM experiment_unit_snapshots WHERE snapshot_id = ? AND variation != ''
			AND bucket < 32768 AND context_key IN ('late-unit', 'later-unit') LIMIT 1`} {
		if err := conn.Exec(ctx, `INSERT INTO experiment_unit_snapshots `+q, uint64(dup), uint64(next.ID)); err != nil {
			t.Fatal(err)
		}
	}
	if twice, err := BaseUnits(ctx, conn, x, UnitsBase{ID: dup}, now); err != nil || twice.distinctHashes {
		t.Fatalf("a context twice among the units: distinct hashes %v (%v)", twice.distinctHashes, err)
	}
	if err := DropUnits(ctx, conn, dup); err != nil {
		t.Fatal(err)
	}

	// Sums on the advanced base, folded (the days' events joined with the units) and raw, in
	// passes: those of the independent computation.
	sum := &Metric{Key: "revenue", Version: 1, Kind: Sum, EventKey: "purchase", WindowEnd: week, CUPEDPreperiod: week}
	conv := &Metric{Key: "conv", Version: 1, Kind: Proportion, EventKey: "purchase", WindowEnd: week}
	xu := x.WithUnits(u)
	folded := start.Add(9 * 24 * time.Hour)
	folds := foldAll(t, conn, xu, []*Metric{sum, conv}, folded)
	for _, tc := range []struct {
		name  string
		m     *Metric
		cuped bool
	}{{"sum with CUPED", sum, true}, {"proportion", conv, false}} {
		for name, s := range map[string]Snapshot{
			"folded": {FoldedUpTo: folded, Folds: folds, Now: now, Passes: 3},
			"raw":    {FoldedUpTo: x.FirstDay(), Now: now, Passes: 2},
		} {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				got, err := Sums(ctx, conn, xu, tc.m, s, tc.cuped)
				if err != nil {
					t.Fatal(err)
				}
				compare(t, got, expected(units, events, tc.m, now.UnixMilli(), tc.cuped, nil, nil))
			})
		}
	}

	// A base whose partition went (dropped by hand, a crash half-way) is reported, not read;
	// the sweep keeps the partitions it is told to.
	if n, err := DropStaleUnits(ctx, conn, -time.Hour, map[int64]bool{base.ID: true, next.ID: true}); err != nil || n != 0 {
		t.Fatalf("DropStaleUnits dropped %d (%v) with every partition kept, want 0", n, err)
	}
	unitRows(t, conn, next.ID, int(next.Rows+next.Revisions))
	if err := DropUnits(ctx, conn, next.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := AdvanceUnits(ctx, conn, x, next, lateness, now); !errors.Is(err, ErrUnitsBaseGone) {
		t.Fatalf("advancing a dropped base: %v, want ErrUnitsBaseGone", err)
	}
}

// changedStates counts the contexts exposed in before whose merged state (first exposure; one
// variation, or several) differs once every exposure in all counts.
func changedStates(before, all [][5]any) int {
	type state struct {
		first      int64
		variations map[string]bool
	}
	merge := func(es [][5]any) map[string]*state {
		m := map[string]*state{}
		for _, e := range es {
			s := m[e[0].(string)]
			if s == nil {
				s = &state{first: e[2].(int64), variations: map[string]bool{}}
				m[e[0].(string)] = s
			}
			s.first = min(s.first, e[2].(int64))
			s.variations[e[1].(string)] = true
		}
		return m
	}
	was, is := merge(before), merge(all)
	n := 0
	for k, s := range was {
		if t := is[k]; t.first != s.first || (len(s.variations) == 1) != (len(t.variations) == 1) {
			n++
		}
	}
	return n
}
