package store

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
	"github.com/switchyard-io/switchyard/platform/errs"
	"github.com/switchyard-io/switchyard/platform/pg"
	"github.com/switchyard-io/switchyard/platform/testenv"
)

// migratedStore is a store on a new test database of its own, migrated, with a pool of conns.
func migratedStore(t *testing.T, conns int32) (*Store, *pgxpool.Pool) {
	t.Helper()
	pool, err := pg.Connect(t.Context(), testenv.PostgresDB(t), conns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	st := New(pool)
	if _, err := st.Migrate(t.Context(), slog.New(slog.NewJSONHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	return st, pool
}

// TestRulesetSourcesLeavesItsConnectionReusable: RulesetSources sends its transaction's BEGIN
// and COMMIT in the batch with its reads, so a read that fails skips the COMMIT and leaves the
// connection inside a failed transaction. It must end it: the pool's one connection is then
// used again (not closed and replaced), and the next read works. An environment that does not
// exist is not found, the transaction committed as usual.
func TestRulesetSourcesLeavesItsConnectionReusable(t *testing.T) {
	ctx := t.Context()
	st, pool := migratedStore(t, 1)
	conns := pool.Stat().NewConnsCount()
	if _, err := st.RulesetSources(ctx, "not-a-uuid", nil); err == nil {
		t.Fatal("reading an environment by a malformed id succeeded")
	}
	if got := pool.Stat().NewConnsCount(); got != conns {
		t.Fatalf("the failed read's connection was replaced (%d connections made, %d before)", got, conns)
	}
	_, err := st.RulesetSources(ctx, "00000000-0000-0000-0000-000000000000", nil)
	if errs.KindOf(err) != errs.KindNotFound {
		t.Fatalf("an environment that does not exist: %v, want not found", err)
	}
	var status string
	if err := pool.QueryRow(ctx, `SELECT 'idle'`).Scan(&status); err != nil {
		t.Fatalf("the connection after the reads: %v", err)
	}
	if got := pool.Stat().NewConnsCount(); got != conns {
		t.Fatalf("%d connections made, %d before: a read left its connection unusable", got, conns)
	}
}

// TestPublishSourcesTakesTheNextVersion: a commit that bumps an environment names it to the
// publisher once (TakeBumped); PublishSources takes a new version with each read, and names the
// pending changes it carries with the oldest one's commit time; RulesetSources takes none; an
// environment that does not exist, or is deleted, gets no version.
func TestPublishSourcesTakesTheNextVersion(t *testing.T) {
	ctx := t.Context()
	st, pool := migratedStore(t, 2)
	var env domain.Environment
	err := st.InTx(ctx, func(tx *Tx) error {
		org, err := tx.CreateOrg(ctx, "versions", "Versions")
		if err != nil {
			return err
		}
		p, err := tx.InsertProject(ctx, domain.Project{OrgID: org.ID, Key: "p", Name: "P"})
		if err != nil {
			return err
		}
		if env, err = tx.InsertEnvironment(ctx, domain.Environment{ProjectID: p.ID, Key: "e", Name: "E"}); err != nil {
			return err
		}
		return tx.BumpRuleset(ctx, env.ID)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := st.TakeBumped(); len(got) != 1 || got[0] != env.ID {
		t.Fatalf("bumped after the commit: %v, want [%s]", got, env.ID)
	}
	if got := st.TakeBumped(); got != nil {
		t.Fatalf("bumped a second time: %v, want none", got)
	}
	var committed time.Time
	if err := pool.QueryRow(ctx, `SELECT created_at FROM outbox WHERE environment_id = $1`, env.ID).Scan(&committed); err != nil {
		t.Fatal(err)
	}
	for want := int64(1); want <= 2; want++ {
		src, err := st.PublishSources(ctx, env.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if src.Version != want || len(src.PendingOutbox) != 1 || !src.OldestPendingAt.Equal(committed) {
			t.Fatalf("publish read %d: version %d, pending %v since %v; want version %d, one pending since %v",
				want, src.Version, src.PendingOutbox, src.OldestPendingAt, want, committed)
		}
	}
	src, err := st.RulesetSources(ctx, env.ID, nil)
	if err != nil || src.Version != 0 || src.Env.RulesetVersion != 2 {
		t.Fatalf("a plain read: version %d, environment at %d, %v; want 0 taken, the environment at 2", src.Version, src.Env.RulesetVersion, err)
	}
	versionRows := func(id string) (n int, v int64) {
		t.Helper()
		if err := pool.QueryRow(ctx, `SELECT count(*), coalesce(max(version), 0) FROM published_rulesets WHERE environment_id = $1`, id).Scan(&n, &v); err != nil {
			t.Fatal(err)
		}
		return n, v
	}
	const absent = "00000000-0000-0000-0000-000000000000"
	if src, err := st.PublishSources(ctx, absent, nil); errs.KindOf(err) != errs.KindNotFound || src.Version != 0 {
		t.Fatalf("an environment that does not exist: version %d, %v; want none, not found", src.Version, err)
	}
	if n, _ := versionRows(absent); n != 0 {
		t.Fatal("an environment that does not exist got a version row")
	}
	if err := st.InTx(ctx, func(tx *Tx) error { return tx.DeleteEnvironment(ctx, env.ID) }); err != nil {
		t.Fatal(err)
	}
	if src, err := st.PublishSources(ctx, env.ID, nil); errs.KindOf(err) != errs.KindNotFound || src.Version != 0 {
		t.Fatalf("a deleted environment: version %d, %v; want none, not found", src.Version, err)
	}
	if _, v := versionRows(env.ID); v != 2 {
		t.Fatalf("a deleted environment's version moved to %d", v)
	}
}
