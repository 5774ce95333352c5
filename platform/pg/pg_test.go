package pg

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchyard-io/switchyard/platform/testenv"
)

// TestMigrateAndTransactions runs against the real Postgres of the local stack.
func TestMigrateAndTransactions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool, err := Connect(ctx, testenv.PostgresDB(t), 4)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	migrations, _ := fs.Sub(os.DirFS("testdata"), "migrations")

	v, err := Migrate(ctx, pool, migrations, nil)
	if err != nil || v != 2 {
		t.Fatalf("migrate: version %d, err %v", v, err)
	}
	// Applying again is a no-op.
	if v, err = Migrate(ctx, pool, migrations, nil); err != nil || v != 2 {
		t.Fatalf("second migrate: version %d, err %v", v, err)
	}

	// A failing transaction leaves nothing behind.
	boom := errors.New("boom")
	err = InTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO widgets (name) VALUES ('a')`); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("want boom, got %v", err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM widgets`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("rolled back insert is visible: n=%d err=%v", n, err)
	}

	if _, err := pool.Exec(ctx, `INSERT INTO widgets (name) VALUES ('a')`); err != nil {
		t.Fatal(err)
	}
	_, err = pool.Exec(ctx, `INSERT INTO widgets (name) VALUES ('a')`)
	if c, ok := IsUniqueViolation(err); !ok || c != "widgets_name_key" {
		t.Fatalf("want unique violation on widgets_name_key, got %q %v (%v)", c, ok, err)
	}
	var color string
	if err := pool.QueryRow(ctx, `SELECT color FROM widgets WHERE name = 'a'`).Scan(&color); err != nil || color != "blue" {
		t.Fatalf("second migration not applied: %q %v", color, err)
	}
}
