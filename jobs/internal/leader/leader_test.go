package leader

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchyard-io/switchyard/platform/pg"
	"github.com/switchyard-io/switchyard/platform/testenv"
)

func pool(t *testing.T, dsn string) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := pg.Connect(ctx, dsn, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// TestOneLeaderPerJob: of two replicas one leads; the other takes over when the leader
// resigns or when the leader's connection dies; different jobs have independent leaders.
func TestOneLeaderPerJob(t *testing.T) {
	dsn := testenv.PostgresDB(t)
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()
	a, b := New(pool(t, dsn), "sweep", log), New(pool(t, dsn), "sweep", log)
	other := New(pool(t, dsn), "digest", log)
	// A held lock holds a pool connection: resign before the pools close.
	t.Cleanup(func() { a.Resign(); b.Resign(); other.Resign() })
	lead := func(e *Elector) bool {
		t.Helper()
		ok, err := e.Lead(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !lead(a) || lead(b) || !lead(a) {
		t.Fatal("a should lead, b follow")
	}
	if !lead(other) {
		t.Fatal("another job has its own leader")
	}
	a.Resign()
	if !lead(b) || lead(a) {
		t.Fatal("b should lead after a resigned")
	}
	// b's session dies (a Postgres restart, a network cut): the lock goes with it.
	var pid int
	if err := b.conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Pool.Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "a to take over", func() bool { return lead(a) })
	if lead(b) {
		t.Fatal("b still believes it leads")
	}
}
