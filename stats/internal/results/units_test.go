package results

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/switchyard-io/switchyard/stats/metricsql"
)

// TestRefreshesKeepAUnitsBase: the first refresh merges every state into the experiment's units
// base and keeps it; the next ones advance it (the contexts exposed since merged again, what
// changed appended to its partition) and count exactly what a fresh merge counts; every state is merged again
// when the last such merge is a day old and when the base's partition went; the sweep drops a
// base no refresh read for a while.
func TestRefreshesKeepAUnitsBase(t *testing.T) {
	ctx := context.Background()
	f := newFoldFixture(t)
	store, conn, w, x := f.store, f.conn, f.w, f.x
	qx := metricsql.Experiment{EnvironmentID: fixtureEnv, Key: fixtureKey, Start: f.start}
	now := f.start.Add(60 * time.Hour)
	w.now = func() time.Time { return now }
	refresh := func() *Snapshot {
		t.Helper()
		snap, err := w.Compute(ctx, x)
		if err != nil {
			t.Fatal(err)
		}
		fresh, err := metricsql.Exposures(ctx, conn, qx, now)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{"off", "on"} {
			if snap.Exposures[v] != fresh.Units[v] {
				t.Fatalf("refresh counts %v, a fresh merge of the states %+v", snap.Exposures, fresh)
			}
		}
		if m := snap.DataQuality.MultipleExposures; m.Contexts != fresh.Multiple {
			t.Fatalf("refresh counts %d units exposed to both, a fresh merge %d", m.Contexts, fresh.Multiple)
		}
		return snap
	}
	base := func() (metricsql.UnitsBase, time.Time) {
		t.Helper()
		b, built, ok, err := store.UnitsBase(ctx, x.ID)
		if err != nil || !ok {
			t.Fatalf("no units base recorded (%v)", err)
		}
		return b, built
	}

	first := refresh()
	b1, built := base()
	if b1.Rows != 2000 || first.Exposures["off"]+first.Exposures["on"] != 2000 || !b1.Watermark.Equal(now.Add(-metricsql.UnitsMargin)) {
		t.Fatalf("base of %d contexts to %v, %v units; want 2000 to %v", b1.Rows, b1.Watermark, first.Exposures, now.Add(-metricsql.UnitsMargin))
	}
	partitions(t, conn, b1.ID)

	// New units, and a unit of the base exposed to the other variation (stamped on day 0,
	// received late): the base advanced in place, 100 rows and a revision appended.
	now = now.Add(10 * time.Minute)
	exposeNew(t, conn, 2000, 100, now.Add(-30*time.Minute))
	insertExposure(t, conn, "u1", "off", f.start.Add(time.Hour), now.Add(-5*time.Minute))
	second := refresh()
	b2, built2 := base()
	if b2.ID != b1.ID || b2.Rows != 2100 || b2.Revisions != 1 || !built2.Equal(built) {
		t.Fatalf("advanced: base %d of %d contexts and %d revisions built at %v; want partition %d of 2100 and 1, built at %v", b2.ID, b2.Rows,
			b2.Revisions, built2, b1.ID, built)
	}
	if second.Exposures["off"]+second.Exposures["on"] != 2099 || second.DataQuality.MultipleExposures.Contexts != 1 {
		t.Fatalf("after 100 new units and one exposed to both: %v, %d multiple", second.Exposures, second.DataQuality.MultipleExposures.Contexts)
	}
	partitions(t, conn, b2.ID)

	// A base with more revised contexts than MaxRevisedShare allows: merged again from every
	// state, the old partition dropped.
	func() {
		defer func(share float64) { metricsql.MaxRevisedShare = share }(metricsql.MaxRevisedShare)
		metricsql.MaxRevisedShare = 0
		now = now.Add(10 * time.Minute)
		refresh()
	}()
	rebuilt, builtAgain := base()
	if rebuilt.ID == b2.ID || rebuilt.Rows != 2100 || rebuilt.Revisions != 0 || !builtAgain.After(built) {
		t.Fatalf("a base with a revision past the share: partition %d of %d rows built at %v; want a new one of 2100, built after %v",
			rebuilt.ID, rebuilt.Rows, builtAgain, built)
	}
	partitions(t, conn, rebuilt.ID)
	b2 = rebuilt

	// A replica of the version before revisions, finding a revised base, built its own and
	// recorded it without touching the revisions column (here: 1, from before): the next
	// refresh finds the record not what the partition holds, and builds a new base.
	old, err := metricsql.BuildUnitsBase(ctx, conn, qx, b2.Watermark)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Pool.Exec(ctx, `UPDATE results_unit_bases SET snapshot_id = $2, units = $3, revisions = 1 WHERE experiment_id = $1`,
		x.ID, old.ID, old.Rows); err != nil {
		t.Fatal(err)
	}
	if err := metricsql.DropUnits(ctx, conn, b2.ID); err != nil {
		t.Fatal(err)
	}
	now = now.Add(10 * time.Minute)
	refresh()
	if b, _ := base(); b.ID == old.ID || b.Rows != 2100 || b.Revisions != 0 {
		t.Fatalf("a base recorded with revisions its partition does not hold was advanced: %+v", b)
	}
	b2, _ = base()
	partitions(t, conn, b2.ID)

	// A day after every state was merged: merged again.
	now = now.Add(25 * time.Hour)
	refresh()
	b3, built3 := base()
	if b3.ID == b2.ID || !built3.After(built) {
		t.Fatalf("a base merged a day ago was advanced (built at %v, then %v)", built, built3)
	}
	partitions(t, conn, b3.ID)

	// Its partition gone behind the worker's back: merged again, the same counts.
	if err := metricsql.DropUnits(ctx, conn, b3.ID); err != nil {
		t.Fatal(err)
	}
	now = now.Add(10 * time.Minute)
	refresh()
	b4, built4 := base()
	if b4.ID == b3.ID || !built4.After(built3) {
		t.Fatal("a base whose partition went was advanced")
	}
	partitions(t, conn, b4.ID)

	// Not read for a while (the experiment stopped, say): the sweep drops it.
	now = now.Add(w.idleUnits() - time.Minute)
	w.dropIdleKept(ctx)
	partitions(t, conn, b4.ID)
	now = now.Add(2 * time.Minute)
	w.dropIdleKept(ctx)
	partitions(t, conn)
	if _, _, ok, err := store.UnitsBase(ctx, x.ID); err != nil || ok {
		t.Fatalf("an idle base is still recorded (%v)", err)
	}
}

// partitions asserts which units partitions ClickHouse holds.
func partitions(t *testing.T, conn driver.Conn, want ...int64) {
	t.Helper()
	idsIn(t, conn, "experiment_unit_snapshots", "snapshot_id", want)
}

// idsIn asserts which ids a column of a table holds.
func idsIn(t *testing.T, conn driver.Conn, table, column string, want []int64) {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT DISTINCT `+column+` FROM `+table+` ORDER BY `+column)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []int64
	for rows.Next() {
		var id uint64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		got = append(got, int64(id))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s partitions %v, want %v", table, got, want)
	}
}

// exposeNew exposes n new units u<from>… at `at` (received then), half to each variation.
func exposeNew(t *testing.T, conn driver.Conn, from, n int, at time.Time) {
	t.Helper()
	q := fmt.Sprintf(`INSERT INTO exposures (environment_id, event_id, timestamp, timestamp_ms, client_timestamp_ms, received_at, clamped,
		context_kind, context_key, flag_key, variation_key, flag_version, reason, rule_id, experiment_key, sdk_name, sdk_version)
		SELECT '%s', generateUUIDv4(), toDateTime(%d), toUInt64(%d), toInt64(%d), toDateTime(%d), 0, 'user', concat('u', toString(number + %d)),
		       'flag', if(number %% 2 = 0, 'off', 'on'), 1, 'SPLIT', '', '%s', 'test', '1' FROM numbers(%d)`,
		fixtureEnv, at.Unix(), at.UnixMilli(), at.UnixMilli(), at.Unix(), from, fixtureKey, n)
	if err := conn.Exec(context.Background(), q); err != nil {
		t.Fatal(err)
	}
}

// insertExposure exposes a context to a variation at ts, received at received.
func insertExposure(t *testing.T, conn driver.Conn, key, variation string, ts, received time.Time) {
	t.Helper()
	if err := conn.Exec(context.Background(), `INSERT INTO exposures (environment_id, event_id, timestamp, timestamp_ms, client_timestamp_ms,
		received_at, clamped, context_kind, context_key, flag_key, variation_key, flag_version, reason, rule_id, experiment_key, sdk_name, sdk_version)
		SELECT ?, generateUUIDv4(), toDateTime(?), toUInt64(?), toInt64(?), toDateTime(?), 0, 'user', ?, 'flag', ?, 1, 'SPLIT', '', ?, 'test', '1'`,
		fixtureEnv, ts.Unix(), ts.UnixMilli(), ts.UnixMilli(), received.Unix(), key, variation, fixtureKey); err != nil {
		t.Fatal(err)
	}
}
