// Package loadtest measures a running flag service from outside, as a second process: the
// toggle API's latency at a fixed request rate (open loop, so slow responses cannot slow the
// offered load), the time from a committed change to the broker's acknowledgement of its ruleset, and list and
// search latency over a large project. The numbers go to docs/benchmarks.md.
package loadtest

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-io/switchyard/platform/apiclient"
	"github.com/switchyard-io/switchyard/platform/promscrape"
)

// Config says what to measure.
type Config struct {
	URL          string
	Token        string
	Rate         int           // toggles per second
	Duration     time.Duration // of the toggle run
	Warmup       time.Duration // of the unrecorded toggle run before it
	ListFlags    int           // flags in the list/search project
	ListRequests int
}

// Client is the flag service client the load tests use.
type Client struct{ *apiclient.Client }

// NewClient returns a client with keep-alive connections.
func NewClient(base, token string) *Client { return &Client{apiclient.New(base, token)} }

// Stats summarizes latencies.
type Stats struct {
	N                       int
	P50, P90, P99, Max, Avg time.Duration
}

// Summarize computes percentiles (nearest rank).
func Summarize(d []time.Duration) Stats {
	if len(d) == 0 {
		return Stats{}
	}
	s := slices.Clone(d)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	var sum time.Duration
	for _, x := range s {
		sum += x
	}
	return Stats{N: len(s), P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: s[len(s)-1], Avg: sum / time.Duration(len(s))}
}

func (s Stats) String() string {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }
	return fmt.Sprintf("n=%d p50=%s p90=%s p99=%s max=%s avg=%s", s.N, ms(s.P50), ms(s.P90), ms(s.P99), ms(s.Max), ms(s.Avg))
}

func boolFlag(key string) map[string]any {
	return map[string]any{"key": key, "kind": "boolean", "variations": []any{
		map[string]any{"key": "on", "value": true}, map[string]any{"key": "off", "value": false}}}
}

// Toggles creates a small project, then toggles its flags at cfg.Rate for cfg.Duration from
// an open-loop generator. It returns the API latencies, and the commit-to-Kafka-ack latency
// from the publisher's own histogram (scraped from /metrics before and after the run; each
// observation is the oldest change a publish carried, so it is the worst case of its batch).
func Toggles(ctx context.Context, c *Client, cfg Config, project string, out io.Writer) (api Stats, commitToAck promscrape.Histogram, err error) {
	if _, err = c.Do(ctx, "POST", "/api/v1/projects", map[string]any{"key": project, "name": project}, nil); err != nil {
		return
	}
	const nflags = 20
	for i := 0; i < nflags; i++ {
		if _, err = c.Do(ctx, "POST", "/api/v1/projects/"+project+"/flags", boolFlag(fmt.Sprintf("f%d", i)), nil); err != nil {
			return
		}
	}
	toggle := func(i int) error {
		flag := fmt.Sprintf("f%d", i%nflags)
		on := (i/nflags)%2 == 0
		_, err := c.Do(ctx, "POST", "/api/v1/projects/"+project+"/flags/"+flag+"/environments/development/toggle", map[string]any{"on": on}, nil)
		return err
	}
	// Warm up: the same load, not recorded (connections, caches, the JIT of a just-started
	// Kafka, relays catching up with the topic).
	warm := int(cfg.Warmup.Seconds() * float64(cfg.Rate))
	openLoop(cfg.Rate, warm, toggle)
	before, err := c.Histogram(ctx, "flagsvc_ruleset_publish_latency_seconds")
	if err != nil {
		return
	}
	total := int(cfg.Duration.Seconds() * float64(cfg.Rate))
	start := time.Now()
	// Numbering goes on from the warm-up, so every toggle flips its flag.
	lats, failures := openLoop(cfg.Rate, total, func(i int) error { return toggle(warm + i) })
	elapsed := time.Since(start)
	fmt.Fprintf(out, "toggles: %d sent at %d/s in %s, %d failed\n", total, cfg.Rate, elapsed.Round(time.Millisecond), failures)
	// Let the publisher drain what the last requests committed.
	time.Sleep(2 * time.Second)
	after, err := c.Histogram(ctx, "flagsvc_ruleset_publish_latency_seconds")
	if err != nil {
		return
	}
	return Summarize(lats), after.Minus(before), nil
}

// openLoop calls fn(0..n-1) at rate per second, each in its own goroutine (so slow responses
// cannot slow the sending), and returns the latencies of the calls that succeeded.
func openLoop(rate, n int, fn func(i int) error) (lats []time.Duration, failures int) {
	all := make([]time.Duration, n)
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := 0; i < n; i++ {
		time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			if err := fn(i); err != nil {
				mu.Lock()
				failures++
				mu.Unlock()
				return
			}
			all[i] = time.Since(t0)
		}()
	}
	wg.Wait()
	for _, l := range all {
		if l > 0 {
			lats = append(lats, l)
		}
	}
	return lats, failures
}

// Histogram scrapes one histogram from the service's /metrics.
func (c *Client) Histogram(ctx context.Context, name string) (promscrape.Histogram, error) {
	raw, err := promscrape.Fetch(ctx, c.HTTP, c.Base+"/metrics")
	return promscrape.ParseHistogram(raw, name), err
}

// WaitPublished waits until the publisher has no unpublished changes (twice in a row, a
// second apart), so what follows is not measured against a backlog of ruleset compiles.
func (c *Client) WaitPublished(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	quiet := 0
	for quiet < 2 {
		if time.Now().After(deadline) {
			return fmt.Errorf("the publisher still had pending changes after %s", timeout)
		}
		raw, err := promscrape.Fetch(ctx, c.HTTP, c.Base+"/metrics")
		if err != nil {
			return err
		}
		n, ok := promscrape.ParseGauge(raw, "flagsvc_outbox_pending_environments")
		if !ok {
			return fmt.Errorf("no flagsvc_outbox_pending_environments in /metrics")
		}
		if n == 0 {
			quiet++
		} else {
			quiet = 0
		}
		time.Sleep(time.Second)
	}
	return nil
}

// ListSearch fills a project with cfg.ListFlags flags and measures list, filter and search
// requests against it.
func ListSearch(ctx context.Context, c *Client, cfg Config, project string, out io.Writer) (map[string]Stats, error) {
	if _, err := c.Do(ctx, "POST", "/api/v1/projects", map[string]any{"key": project, "name": project}, nil); err != nil {
		return nil, err
	}
	words := []string{"checkout", "search", "pricing", "banner", "onboarding", "billing", "profile", "cart"}
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	next := make(chan int)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				body := boolFlag(fmt.Sprintf("%s-flag-%05d", words[i%len(words)], i))
				body["name"] = fmt.Sprintf("%s experiment %d", strings.ToUpper(words[i%len(words)][:1])+words[i%len(words)][1:], i)
				body["description"] = fmt.Sprintf("Controls the %s flow for cohort %d", words[(i/3)%len(words)], i%97)
				body["tags"] = []string{words[i%len(words)], fmt.Sprintf("team-%d", i%12)}
				if _, err := c.Do(ctx, "POST", "/api/v1/projects/"+project+"/flags", body, nil); err != nil {
					select {
					case errc <- err:
					default:
					}
					return
				}
			}
		}()
	}
	t0 := time.Now()
	for i := 0; i < cfg.ListFlags; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errc:
		return nil, err
	default:
	}
	fmt.Fprintf(out, "created %d flags in %s\n", cfg.ListFlags, time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	if err := c.WaitPublished(ctx, 5*time.Minute); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "their rulesets were published %s later\n", time.Since(t0).Round(time.Second))
	queries := map[string]string{
		"list first page (50, by key)":    "limit=50",
		"list sorted by -updated_at":      "limit=50&sort=-updated_at",
		"filter tag + on in production":   "tag=team-3&environment=production&on=false&limit=50",
		"full-text search (one word)":     "q=pricing&limit=50",
		"full-text search (two prefixes)": "q=onboard%20cohort&limit=50",
		"deep page (cursor after 5,000)":  "",
	}
	// A cursor deep in the list.
	var page struct {
		NextCursor string `json:"next_cursor"`
	}
	if _, err := c.Do(ctx, "GET", "/api/v1/projects/"+project+"/flags?limit=500", nil, &page); err != nil {
		return nil, err
	}
	for i := 0; i < 9 && page.NextCursor != ""; i++ {
		if _, err := c.Do(ctx, "GET", "/api/v1/projects/"+project+"/flags?limit=500&cursor="+page.NextCursor, nil, &page); err != nil {
			return nil, err
		}
	}
	queries["deep page (cursor after 5,000)"] = "limit=50&cursor=" + page.NextCursor
	res := map[string]Stats{}
	for name, q := range queries {
		var lats []time.Duration
		for i := 0; i < cfg.ListRequests; i++ {
			t := time.Now()
			if _, err := c.Do(ctx, "GET", "/api/v1/projects/"+project+"/flags?"+q, nil, nil); err != nil {
				return nil, err
			}
			lats = append(lats, time.Since(t))
		}
		res[name] = Summarize(lats)
	}
	return res, nil
}
