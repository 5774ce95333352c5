// Package loadtest measures a running flag service from outside, as a second process: the
// toggle API's latency at a fixed request rate (open loop, so slow responses cannot slow the
// offered load), the time from a committed change to the ruleset being on Kafka, and list and
// search latency over a large project. The numbers go to docs/benchmarks.md.
package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Config says what to measure.
type Config struct {
	URL          string
	Token        string
	Brokers      []string
	Topic        string
	Rate         int           // toggles per second
	Duration     time.Duration // of the toggle run
	ListFlags    int           // flags in the list/search project
	ListRequests int
}

// Client is a minimal JSON client of the flag service.
type Client struct {
	base, token string
	http        *http.Client
}

// NewClient returns a client with keep-alive connections.
func NewClient(base, token string) *Client {
	tr := &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute}
	return &Client{base: strings.TrimRight(base, "/"), token: token, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// Do sends a request and decodes a JSON answer into out (if not nil).
func (c *Client) Do(ctx context.Context, method, path string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		return resp.StatusCode, json.Unmarshal(raw, out)
	}
	return resp.StatusCode, nil
}

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

// Toggles creates a small project, then toggles its flags at cfg.Rate for cfg.Duration. It
// returns the API latencies and, from a Kafka consumer of the ruleset topic, the time from each
// API response (the commit) to the ruleset carrying that change being readable on the topic.
func Toggles(ctx context.Context, c *Client, cfg Config, project string, out io.Writer) (api, propagate Stats, err error) {
	if _, err = c.Do(ctx, "POST", "/api/v1/projects", map[string]any{"key": project, "name": project}, nil); err != nil {
		return
	}
	const nflags = 20
	for i := 0; i < nflags; i++ {
		if _, err = c.Do(ctx, "POST", "/api/v1/projects/"+project+"/flags", boolFlag(fmt.Sprintf("f%d", i)), nil); err != nil {
			return
		}
	}
	var env struct {
		ID             string `json:"id"`
		RulesetVersion int64  `json:"ruleset_version"`
	}
	if _, err = c.Do(ctx, "GET", "/api/v1/projects/"+project+"/environments/development", nil, &env); err != nil {
		return
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.ConsumeTopics(cfg.Topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()),
		kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		return
	}
	defer cl.Close()
	// Record when each ruleset version of the environment becomes readable.
	var mu sync.Mutex
	seen := map[int64]time.Time{}
	cctx, stopConsumer := context.WithCancel(ctx)
	defer stopConsumer()
	consumerDone := make(chan struct{})
	go func() {
		defer close(consumerDone)
		for cctx.Err() == nil {
			fs := cl.PollFetches(cctx)
			now := time.Now()
			fs.EachRecord(func(r *kgo.Record) {
				if string(r.Key) != env.ID || r.Value == nil {
					return
				}
				var rs struct {
					Version int64 `json:"version"`
				}
				if json.Unmarshal(r.Value, &rs) == nil {
					mu.Lock()
					seen[rs.Version] = now
					mu.Unlock()
				}
			})
		}
	}()
	// Make sure the consumer has joined before the clock starts.
	// Warm up connections and the consumer (in another environment, so versions stay contiguous).
	if _, err = c.Do(ctx, "POST", "/api/v1/projects/"+project+"/flags/f0/environments/staging/toggle", map[string]any{"on": true}, nil); err != nil {
		return
	}
	time.Sleep(2 * time.Second)
	type result struct {
		lat  time.Duration
		done time.Time
		ver  int64
	}
	total := int(cfg.Duration.Seconds() * float64(cfg.Rate))
	results := make([]result, total)
	interval := time.Second / time.Duration(cfg.Rate)
	start := time.Now()
	var wg sync.WaitGroup
	var failures int
	var fmu sync.Mutex
	for i := 0; i < total; i++ {
		due := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(due))
		wg.Add(1)
		go func() {
			defer wg.Done()
			flag := fmt.Sprintf("f%d", i%nflags)
			on := (i/nflags)%2 == 0
			t0 := time.Now()
			var fe struct {
				Version int64 `json:"version"`
			}
			_, err := c.Do(ctx, "POST", "/api/v1/projects/"+project+"/flags/"+flag+"/environments/development/toggle", map[string]any{"on": on}, &fe)
			done := time.Now()
			if err != nil {
				fmu.Lock()
				failures++
				fmu.Unlock()
				return
			}
			results[i] = result{lat: done.Sub(t0), done: done}
		}()
	}
	wg.Wait()
	fmt.Fprintf(out, "toggles: %d sent at %d/s over %s, %d failed\n", total, cfg.Rate, cfg.Duration, failures)
	// The final ruleset version tells which versions the run produced; the changes committed in
	// response order, so the k-th response's change is carried by the first version >= base+k.
	if _, err = c.Do(ctx, "GET", "/api/v1/projects/"+project+"/environments/development", nil, &env); err != nil {
		return
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		_, ok := seen[env.RulesetVersion]
		mu.Unlock()
		if ok {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopConsumer()
	<-consumerDone
	var lats, props []time.Duration
	var dones []time.Time
	for _, r := range results {
		if r.lat > 0 {
			lats = append(lats, r.lat)
			dones = append(dones, r.done)
		}
	}
	sort.Slice(dones, func(i, j int) bool { return dones[i].Before(dones[j]) })
	versions := make([]int64, 0, len(seen))
	for v := range seen {
		versions = append(versions, v)
	}
	sort.Slice(versions, func(i, j int) bool { return versions[i] < versions[j] })
	firstVersion := env.RulesetVersion - int64(len(dones)) + 1
	for k, d := range dones {
		want := firstVersion + int64(k)
		// The first published version at or above want carries this change (coalescing).
		idx := sort.Search(len(versions), func(i int) bool { return versions[i] >= want })
		if idx < len(versions) {
			props = append(props, seen[versions[idx]].Sub(d))
		}
	}
	return Summarize(lats), Summarize(props), nil
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
