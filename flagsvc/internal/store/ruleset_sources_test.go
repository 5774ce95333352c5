package store

import (
	"io"
	"log/slog"
	"testing"

	"github.com/switchyard-io/switchyard/platform/errs"
	"github.com/switchyard-io/switchyard/platform/pg"
	"github.com/switchyard-io/switchyard/platform/testenv"
)

// TestRulesetSourcesLeavesItsConnectionReusable: RulesetSources sends its transaction's BEGIN
// and COMMIT in the batch with its reads, so a read that fails skips the COMMIT and leaves the
// connection inside a failed transaction. It must end it: the pool's one connection is then
// used again (not closed and replaced), and the next read works. An environment that does not
// exist is not found, the transaction committed as usual.
func TestRulesetSourcesLeavesItsConnectionReusable(t *testing.T) {
	ctx := t.Context()
	pool, err := pg.Connect(ctx, testenv.PostgresDB(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	st := New(pool)
	if _, err := st.Migrate(ctx, slog.New(slog.NewJSONHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	conns := pool.Stat().NewConnsCount()
	if _, err := st.RulesetSources(ctx, "not-a-uuid", nil); err == nil {
		t.Fatal("reading an environment by a malformed id succeeded")
	}
	if got := pool.Stat().NewConnsCount(); got != conns {
		t.Fatalf("the failed read's connection was replaced (%d connections made, %d before)", got, conns)
	}
	_, err = st.RulesetSources(ctx, "00000000-0000-0000-0000-000000000000", nil)
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
