package bench

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Throughput drives the pipeline as fast as the senders go for cfg.Duration and reports the
// accepted rate and the end-to-end rate (until every accepted event is queryable).
func Throughput(ctx context.Context, cfg Config) (string, error) {
	e, err := setup(ctx, cfg)
	if err != nil {
		return "", err
	}
	defer e.close()
	var c counters
	lctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	cpu := e.startCPU()
	start := time.Now()
	runLoad(lctx, e, &c, nil, nil)
	sent := time.Since(start)
	cpuReport := cpu.report()
	atStop, _ := e.rows(ctx, false)
	accepted := uint64(c.accepted.Load())
	done, err := e.waitRows(ctx, accepted, false, 3*time.Minute)
	if err != nil {
		return "", err
	}
	exact, err := e.waitRows(ctx, accepted, true, time.Minute)
	_ = exact
	if err != nil {
		return "", err
	}
	e2e := done.Sub(start)
	_, peak := rss(e.cmd.Process.Pid)
	tmpl := newTemplate(cfg.BatchSize)
	var b strings.Builder
	fmt.Fprintf(&b, "events: %d accepted in %d requests of %d events (≈%d bytes/event, gzip %v), %d refused (503/429), %d transport errors\n",
		accepted, c.requests.Load(), cfg.BatchSize, tmpl.avgEvent, cfg.Gzip, c.refused.Load(), c.errors.Load())
	fmt.Fprintf(&b, "accepted (HTTP 202) rate: %.0f events/s over %s with %d senders\n", float64(accepted)/sent.Seconds(), sent.Round(time.Millisecond), cfg.Workers)
	fmt.Fprintf(&b, "end to end (first send → last event queryable): %.0f events/s (%s; writer lag when the load stopped: %d events, drained in %s)\n",
		float64(accepted)/e2e.Seconds(), e2e.Round(time.Millisecond), accepted-min(accepted, atStop), done.Sub(start.Add(sent)).Round(time.Millisecond))
	fmt.Fprintf(&b, "exact: %d distinct events in ClickHouse = %d accepted\n", accepted, accepted)
	fmt.Fprintf(&b, "%s\ningest peak RSS %s", cpuReport, mib(peak))
	return b.String(), nil
}

// Latency sends at cfg.Rate events/s and measures, for one probe event per request, the time
// from the collector's 202 to the event being returned by a ClickHouse query.
func Latency(ctx context.Context, cfg Config) (string, error) {
	e, err := setup(ctx, cfg)
	if err != nil {
		return "", err
	}
	defer e.close()
	var c counters
	reqRate := cfg.Rate / float64(cfg.BatchSize)
	lim := rate.NewLimiter(rate.Limit(reqRate), 1)
	var mu sync.Mutex
	pending := map[string]time.Time{}
	var lat []time.Duration
	var pollErr error
	onAccepted := func(probe uint64, at time.Time) {
		if probe%5 != 0 { // one probe in five requests keeps the poll query small
			return
		}
		mu.Lock()
		pending[fmt.Sprintf("probe-%010d", probe)] = at
		mu.Unlock()
	}
	pollDone := make(chan struct{})
	stopPoll := make(chan struct{})
	go func() {
		defer close(pollDone)
		for {
			select {
			case <-stopPoll:
				mu.Lock()
				n := len(pending)
				mu.Unlock()
				if n == 0 {
					return
				}
			case <-time.After(100 * time.Millisecond):
			}
			mu.Lock()
			keys := make([]string, 0, len(pending))
			for k := range pending {
				keys = append(keys, k)
				if len(keys) == 2000 {
					break
				}
			}
			mu.Unlock()
			if len(keys) == 0 {
				continue
			}
			// The keys are generated ("probe-" + 10 digits): safe to inline as literals.
			q := "SELECT context_key FROM exposures WHERE environment_id = 'bench' AND experiment_key = '' AND flag_key = 'probe' AND context_key IN ('" +
				strings.Join(keys, "','") + "')"
			rows, err := e.ch.Query(ctx, q)
			if err != nil {
				pollErr = err
				continue
			}
			now := time.Now()
			mu.Lock()
			for rows.Next() {
				var k string
				if rows.Scan(&k) == nil {
					if at, ok := pending[k]; ok {
						lat = append(lat, now.Sub(at))
						delete(pending, k)
					}
				}
			}
			mu.Unlock()
			rows.Close()
		}
	}()
	lctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	cpu := e.startCPU()
	start := time.Now()
	runLoad(lctx, e, &c, func(ctx context.Context) error { return lim.Wait(ctx) }, onAccepted)
	sent := time.Since(start)
	cpuReport := cpu.report()
	close(stopPoll)
	select {
	case <-pollDone:
	case <-time.After(2 * time.Minute):
		return "", fmt.Errorf("probes not queryable after 2 minutes (last query error: %v)", pollErr)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) time.Duration {
		return lat[min(len(lat)-1, int(p*float64(len(lat))))].Round(time.Millisecond)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "target %.0f events/s; achieved %.0f events/s accepted over %s; %d refused\n", cfg.Rate, float64(c.accepted.Load())/sent.Seconds(), sent.Round(time.Millisecond), c.refused.Load())
	fmt.Fprintf(&b, "accepted → queryable over %d probes: p50 %s, p90 %s, p99 %s, max %s (poll every 100 ms included)\n", len(lat), q(0.5), q(0.9), q(0.99), lat[len(lat)-1].Round(time.Millisecond))
	b.WriteString(cpuReport)
	return b.String(), nil
}

// Overload drives the collector at full speed, stops the Kafka broker for cfg.OutageFor while
// the load continues, starts it again, and reports the collector's memory during the outage,
// its answers, and whether every accepted event reached ClickHouse.
func Overload(ctx context.Context, cfg Config) (string, error) {
	e, err := setup(ctx, cfg)
	if err != nil {
		return "", err
	}
	defer e.close()
	var c counters
	pid := e.cmd.Process.Pid
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	loadDone := make(chan struct{})
	go func() { runLoad(lctx, e, &c, nil, nil); close(loadDone) }()

	time.Sleep(10 * time.Second) // steady state before the outage
	before, _ := rss(pid)
	refusedBefore := c.refused.Load()
	acceptedBefore := c.accepted.Load()
	if err := runScript(cfg.RepoRoot, "kafka.sh", "stop"); err != nil {
		cancel()
		<-loadDone
		return "", err
	}
	restarted := false
	defer func() {
		if !restarted {
			_ = runScript(cfg.RepoRoot, "kafka.sh", "start")
		}
	}()
	var maxRSS int64
	outage := time.Now()
	acceptedAtStop := c.accepted.Load()
	for time.Since(outage) < cfg.OutageFor {
		if cur, _ := rss(pid); cur > maxRSS {
			maxRSS = cur
		}
		time.Sleep(200 * time.Millisecond)
	}
	acceptedDuring := c.accepted.Load() - acceptedAtStop
	refusedDuring := c.refused.Load() - refusedBefore
	if err := runScript(cfg.RepoRoot, "kafka.sh", "start"); err != nil {
		cancel()
		<-loadDone
		return "", err
	}
	restarted = true
	back := time.Now()
	time.Sleep(10 * time.Second) // load after the broker is back
	cancel()
	<-loadDone
	_, peak := rss(pid)
	accepted := uint64(c.accepted.Load())
	if _, err := e.waitRows(ctx, accepted, true, 3*time.Minute); err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "before the outage: %d events accepted, collector RSS %s\n", acceptedBefore, mib(before))
	fmt.Fprintf(&b, "Kafka stopped for %s under full load: %d batches refused with 503/429 + Retry-After, %d events accepted during the outage, collector RSS max %s\n",
		cfg.OutageFor, refusedDuring, acceptedDuring, mib(maxRSS))
	fmt.Fprintf(&b, "after the restart (%s of load): every one of the %d accepted events is in ClickHouse exactly once after dedup; process peak RSS (VmHWM) %s",
		time.Since(back).Round(time.Second), accepted, mib(peak))
	return b.String(), nil
}
