package switchyard_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/sdks/go/switchyard"
)

// TestEvaluationsFlushesAndRotationsAtOnce: many goroutines evaluate while others flush (taking
// the summary counts) and the dedup window rotates under them, in phases of fresh contexts —
// each phase sees one rotation and its dedup set grow from its smallest size. Every evaluation
// is counted exactly once across the summaries, and each context x flag x variation of a phase
// is exposed exactly once: a rotation moves the seen exposures to the previous generation, and
// only a second one forgets them.
func TestEvaluationsFlushesAndRotationsAtOnce(t *testing.T) {
	collector := newFakeCollector(t)
	clock := &fakeClock{t: time.UnixMilli(1_700_000_000_000)}
	c, td := eventsClient(t, collector, switchyard.EventsConfig{DedupWindow: time.Hour, Capacity: 1 << 20}, clock.Now)
	setSplitAndFixed(td)
	const phases, workers, perWorker, contexts = 4, 12, 2000, 1499 // 1499: each context meets every flag
	flags := []string{"split", "fixed", "missing"}
	rs := c.Ruleset()

	want := map[string]float64{}
	exposed := map[string]bool{}
	stopFlushing := flushContinuously(c) // flushes (each also rotates when the window is up) throughout
	for phase := range phases {
		ctxs := make([]switchyard.Context, contexts)
		for i := range ctxs {
			ctxs[i] = switchyard.NewContext(fmt.Sprintf("p%d-user-%d", phase, i))
		}
		expectEvaluations(rs, ctxs, flags, workers, perWorker, want, exposed)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := range perWorker {
					if w == 0 && i == perWorker/2 {
						clock.Advance(time.Hour) // the next flush rotates, amid evaluations
					}
					c.Bool(ctxs[(w*perWorker+i)%contexts], flags[i%len(flags)], false)
				}
			})
		}
		wg.Wait()
		// The phase's rotation has happened by the end of this flush: one per phase.
		if err := c.FlushAndWait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	stopFlushing()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	checkCountedExactly(t, c, collector, want, exposed)
}
