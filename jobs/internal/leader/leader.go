// Package leader elects one replica per job with a Postgres session advisory lock: the replica
// whose dedicated connection holds pg_try_advisory_lock(key) leads until it resigns or that
// connection dies (then Postgres releases the lock and another replica takes it on its next
// try). Leadership only saves duplicate work: every side effect of a job is also protected by
// a unique key or a row lease, because a leader can lose its lock mid-run without knowing.
package leader

import (
	"context"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Key is the advisory lock key of a job name (FNV-64a of "switchyard.jobs." + name; the flag
// service's keys are far from it).
func Key(name string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("switchyard.jobs." + name))
	return int64(h.Sum64())
}

// Elector tries to lead one job.
type Elector struct {
	Pool *pgxpool.Pool
	Name string
	Log  *slog.Logger

	mu   sync.Mutex
	conn *pgxpool.Conn
}

// New returns an elector for the job.
func New(pool *pgxpool.Pool, name string, log *slog.Logger) *Elector {
	return &Elector{Pool: pool, Name: name, Log: log}
}

// Lead reports whether this replica leads the job, taking the lock when it is free. A held
// lock is confirmed by a round trip on its connection; a dead connection means the lock is
// gone.
func (e *Elector) Lead(ctx context.Context) (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn != nil {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := e.conn.Exec(pctx, "SELECT 1")
		cancel()
		if err == nil {
			return true, nil
		}
		e.Log.Warn("lost the leader lock's connection", "job", e.Name, "err", err)
		e.conn.Conn().Close(context.Background())
		e.conn.Release()
		e.conn = nil
	}
	conn, err := e.Pool.Acquire(ctx)
	if err != nil {
		return false, err
	}
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", Key(e.Name)).Scan(&ok); err != nil {
		conn.Release()
		return false, err
	}
	if !ok {
		conn.Release()
		return false, nil
	}
	e.Log.Info("leading job", "job", e.Name)
	e.conn = conn
	return true, nil
}

// Resign releases the lock (at shutdown, so another replica takes over at once).
func (e *Elector) Resign() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := e.conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", Key(e.Name)); err != nil {
		e.conn.Conn().Close(ctx) // closing the session releases it too
	}
	e.conn.Release()
	e.conn = nil
}
