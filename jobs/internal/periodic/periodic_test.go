package periodic

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/platform/pg"
	"github.com/switchyard-io/switchyard/platform/testenv"
)

func TestActivation(t *testing.T) {
	monday9 := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC) // a Monday
	cases := []struct {
		name, spec string
		now, want  time.Time
	}{
		{"fired on time", "0 9 * * MON", monday9.Add(300 * time.Millisecond), monday9},
		{"fired late", "0 9 * * MON", monday9.Add(90 * time.Second), monday9},
		{"between runs", "0 9 * * MON", monday9.Add(3 * 24 * time.Hour), monday9},
		{"just before the next", "0 9 * * MON", monday9.Add(7*24*time.Hour - time.Second), monday9},
		{"every minute", "* * * * *", monday9.Add(61500 * time.Millisecond), monday9.Add(time.Minute)},
		{"@every has no anchor", "@every 1m", monday9.Add(61500 * time.Millisecond), monday9.Add(61 * time.Second)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			if got := activation(s, tc.now); !got.Equal(tc.want) {
				t.Fatalf("activation(%s) = %s, want %s", tc.now, got, tc.want)
			}
		})
	}
}

// TestLeaderJobsRunOnOneReplica: two runners share a leader-only job and a job for every
// replica; the first runs on one replica only, the second on both.
func TestLeaderJobsRunOnOneReplica(t *testing.T) {
	dsn := testenv.PostgresDB(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	leaderRuns := map[string]int{}
	var everyRuns [2]atomic.Int64
	var wg sync.WaitGroup
	for i, name := range []string{"a", "b"} {
		p, err := pg.Connect(ctx, dsn, 4)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		r := New(p, slog.New(slog.DiscardHandler), nil,
			Job{Name: "sweep", Schedule: "@every 1s", Leader: true, Run: func(context.Context, time.Time) error {
				mu.Lock()
				leaderRuns[name]++
				mu.Unlock()
				return nil
			}},
			Job{Name: "dispatch", Schedule: "@every 1s", Run: func(context.Context, time.Time) error {
				everyRuns[i].Add(1)
				return nil
			}})
		wg.Add(1)
		go func() { defer wg.Done(); _ = r.Run(ctx) }()
	}
	testenv.Eventually(t, 20*time.Second, "three leader runs and runs of the other job on both", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return leaderRuns["a"]+leaderRuns["b"] >= 3 && everyRuns[0].Load() >= 2 && everyRuns[1].Load() >= 2
	})
	cancel()
	wg.Wait()
	if leaderRuns["a"] > 0 && leaderRuns["b"] > 0 {
		t.Fatalf("the leader-only job ran on both replicas: %v", leaderRuns)
	}
}

// TestSlowRunsAreNotStacked: an activation while the previous run is still going is skipped.
func TestSlowRunsAreNotStacked(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var running, maxRunning, runs atomic.Int64
	release := make(chan struct{})
	r := New(nil, slog.New(slog.DiscardHandler), nil, Job{Name: "slow", Schedule: "@every 1h", Run: func(ctx context.Context, _ time.Time) error {
		n := running.Add(1)
		if n > maxRunning.Load() {
			maxRunning.Store(n)
		}
		runs.Add(1)
		<-release
		running.Add(-1)
		return nil
	}})
	done := make(chan struct{})
	go func() { _ = r.Run(ctx); close(done) }()
	testenv.Eventually(t, 5*time.Second, "the trigger to be registered", func() bool { return r.Trigger("slow", time.Now()) })
	testenv.Eventually(t, 5*time.Second, "the first run", func() bool { return runs.Load() == 1 })
	for i := 0; i < 5; i++ {
		r.Trigger("slow", time.Now())
	}
	close(release)
	cancel()
	<-done
	if maxRunning.Load() != 1 {
		t.Fatalf("%d runs at once", maxRunning.Load())
	}
}

// TestTriggersDuringShutdown: runs triggered while the runner shuts down neither start after it
// has returned nor make it panic (a triggered start used to call WaitGroup.Add while Run was
// in WaitGroup.Wait: "WaitGroup is reused before previous Wait has returned").
func TestTriggersDuringShutdown(t *testing.T) {
	for i := 0; i < 300; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		var runs atomic.Int64
		r := New(nil, slog.New(slog.DiscardHandler), nil, Job{Name: "quick", Schedule: "@every 1h", Run: func(context.Context, time.Time) error {
			runs.Add(1)
			return nil
		}})
		done := make(chan struct{})
		go func() { _ = r.Run(ctx); close(done) }()
		testenv.Eventually(t, 5*time.Second, "the trigger to be registered", func() bool { return r.Trigger("quick", time.Now()) })
		stop := make(chan struct{})
		go func() {
			for {
				select {
				case <-stop:
					return
				default:
					r.Trigger("quick", time.Now())
				}
			}
		}()
		cancel()
		<-done
		after := runs.Load()
		close(stop)
		// Nothing runs once Run has returned (a run it had started has finished).
		for j := 0; j < 100; j++ {
			r.Trigger("quick", time.Now())
		}
		if got := runs.Load(); got != after {
			t.Fatalf("iteration %d: %d runs after Run returned", i, got-after)
		}
	}
}
