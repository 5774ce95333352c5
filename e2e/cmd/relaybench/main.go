// Command relaybench measures the evaluation path against a running stack (make up):
//
//	relaybench setup        create a project with 10 client-side flags and SDK keys; print them
//	                        as shell variables for wrk (scripts/bench-relay.sh)
//	relaybench propagation  open N streaming Go SDK clients on the relay, toggle a flag through
//	                        the flag service API M times, and report when each client saw each
//	                        change (p50/p99), plus the relay's memory per open stream
//	relaybench targets      print N vegeta targets (JSON lines): remote evaluations of the 10
//	                        flags for random users, for a fixed-rate load test
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-io/switchyard/e2e/stack"
	"github.com/switchyard-io/switchyard/platform/kafka"
	"github.com/switchyard-io/switchyard/platform/promscrape"
	"github.com/switchyard-io/switchyard/sdks/go/switchyard"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	if len(os.Args) < 2 {
		fail(fmt.Errorf("usage: relaybench setup|propagation|targets [flags]"))
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	flagsvc := fs.String("flagsvc-url", "http://127.0.0.1:8080", "flag service URL")
	relay := fs.String("relay-url", "http://127.0.0.1:8081", "relay URL")
	tokenFile := fs.String("token-file", ".data/admin-token", "owner API token file")
	project := fs.String("project", "bench-relay", "project to create")
	clients := fs.Int("clients", 1000, "streaming SDK clients (propagation)")
	changes := fs.Int("changes", 20, "flag changes to time (propagation)")
	padFlags := fs.Int("flags", 0, "extra flags in the environment, so that the ruleset is that much larger (propagation)")
	relayPid := fs.Int("relay-pid", 0, "relay process id, for memory per stream (propagation)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process while it times the changes (propagation)")
	brokers := fs.String("kafka-brokers", "", "Kafka brokers: also time when each change's ruleset reaches Kafka, as a consumer of the topic sees it (propagation)")
	topic := fs.String("rulesets-topic", kafka.TopicRulesets, "the rulesets topic (propagation, with -kafka-brokers)")
	sdkKey := fs.String("key", "", "SDK key the targets send (targets)")
	targetCount := fs.Int("n", 10000, "how many targets (targets)")
	_ = fs.Parse(os.Args[2:])
	if os.Args[1] == "targets" {
		fail(targets(os.Stdout, *relay, *sdkKey, *targetCount))
		return
	}
	raw, err := os.ReadFile(*tokenFile)
	if err != nil {
		fail(err)
	}
	api := stack.API{Base: strings.TrimRight(*flagsvc, "/"), Token: strings.TrimSpace(string(raw))}
	ctx := context.Background()
	switch os.Args[1] {
	case "setup":
		fail(setup(ctx, api, *project))
	case "propagation":
		fail(propagation(ctx, api, *relay, *project, *clients, *changes, *padFlags, *relayPid, *cpuProfile, *brokers, *topic))
	default:
		fail(fmt.Errorf("unknown command %q", os.Args[1]))
	}
}

func boolFlag(key string) map[string]any {
	return map[string]any{"key": key, "kind": "boolean", "client_side": true, "variations": []any{
		map[string]any{"key": "on", "value": true}, map[string]any{"key": "off", "value": false}}}
}

// setup creates the project, 10 client-side flags with a rule and a rollout each, and keys.
func setup(ctx context.Context, api stack.API, project string) error {
	if _, err := api.Do(ctx, "POST", "/api/v1/projects", map[string]any{"key": project, "name": project}, nil); err != nil {
		return err
	}
	for i := 0; i < 10; i++ {
		key := fmt.Sprintf("flag-%d", i)
		if _, err := api.Do(ctx, "POST", "/api/v1/projects/"+project+"/flags", boolFlag(key), nil); err != nil {
			return err
		}
		cfg := map[string]any{"on": true, "off_variation": "off",
			"rules": []any{map[string]any{"clauses": []any{
				map[string]any{"attribute": "country", "op": "in", "values": []string{"DE", "FR"}},
				map[string]any{"attribute": "plan", "op": "in", "values": []string{"pro", "enterprise"}},
			}, "serve": map[string]any{"variation": "on"}}},
			"fallthrough": map[string]any{"rollout": map[string]any{"variations": []any{
				map[string]any{"variation": "on", "weight": 30000}, map[string]any{"variation": "off", "weight": 70000}}}}}
		if _, err := api.Do(ctx, "PUT", "/api/v1/projects/"+project+"/flags/"+key+"/environments/production", cfg, nil); err != nil {
			return err
		}
	}
	keys := map[string]string{}
	for _, kind := range []string{"server", "client"} {
		var k struct {
			Key string `json:"key"`
		}
		if _, err := api.Do(ctx, "POST", "/api/v1/projects/"+project+"/environments/production/sdk-keys", map[string]any{"kind": kind}, &k); err != nil {
			return err
		}
		keys[kind] = k.Key
	}
	var env struct {
		ID string `json:"id"`
	}
	if _, err := api.Do(ctx, "GET", "/api/v1/projects/"+project+"/environments/production", nil, &env); err != nil {
		return err
	}
	fmt.Printf("SERVER_KEY=%s\nCLIENT_KEY=%s\nENV_ID=%s\n", keys["server"], keys["client"], env.ID)
	return nil
}

// targets writes n vegeta JSON targets: POST /sdk/v1/evaluate of the 10 setup flags, each for
// a different random user (country and plan vary, so rules match or fall through to rollouts).
func targets(w io.Writer, relay, key string, n int) error {
	if key == "" {
		return fmt.Errorf("targets: -key is required")
	}
	r := rand.New(rand.NewPCG(1, 2))
	countries, plans := []string{"DE", "US", "FR", "BR"}, []string{"pro", "free", "enterprise"}
	flags := make([]string, 10)
	for i := range flags {
		flags[i] = fmt.Sprintf("flag-%d", i)
	}
	enc := json.NewEncoder(w)
	for i := 0; i < n; i++ {
		body, err := json.Marshal(map[string]any{"flags": flags, "context": map[string]any{"kind": "user",
			"key": fmt.Sprintf("user-%d", r.IntN(10_000_000)), "country": countries[r.IntN(4)], "plan": plans[r.IntN(3)]}})
		if err != nil {
			return err
		}
		// vegeta's JSON target format; []byte bodies are base64 in JSON, as vegeta expects.
		if err := enc.Encode(map[string]any{"method": "POST", "url": strings.TrimRight(relay, "/") + "/sdk/v1/evaluate", "body": body,
			"header": map[string][]string{"Authorization": {key}, "Content-Type": {"application/json"}}}); err != nil {
			return err
		}
	}
	return nil
}

// createFlags adds n flags (pad-0, pad-1, ...) to the project, eight requests at a time.
func createFlags(ctx context.Context, api stack.API, project string, n int) error {
	if n == 0 {
		return nil
	}
	next := make(chan int)
	errc := make(chan error, 8)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				_, err := api.Do(ctx, "POST", "/api/v1/projects/"+project+"/flags", boolFlag(fmt.Sprintf("pad-%d", i)), nil)
				if err != nil && !strings.Contains(err.Error(), "409") {
					errc <- err
					return
				}
			}
		}()
	}
	var err error
feed:
	for i := 0; i < n; i++ {
		select {
		case next <- i:
		case err = <-errc:
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err == nil && len(errc) > 0 {
		err = <-errc
	}
	return err
}

// cpuTime is the CPU time (user + system) a process has used so far; 0 when unreadable.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) start after the last ')';
	// utime and stime are fields 14 and 15 of the whole line, in clock ticks (100 per second).
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(fields) < 13 {
		return 0
	}
	var user, sys int64
	fmt.Sscan(fields[11], &user)
	fmt.Sscan(fields[12], &sys)
	return time.Duration(user+sys) * 10 * time.Millisecond
}

func rssKB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			var kb int
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "VmRSS:")), "%d", &kb)
			return kb
		}
	}
	return 0
}

// propagation measures API change → every streaming client sees it.
func propagation(ctx context.Context, api stack.API, relay, project string, n, changes, pad, pid int, cpuProfile, brokers, topic string) error {
	if _, err := api.Do(ctx, "POST", "/api/v1/projects", map[string]any{"key": project, "name": project}, nil); err != nil &&
		!strings.Contains(err.Error(), "409") {
		return err
	}
	if _, err := api.Do(ctx, "POST", "/api/v1/projects/"+project+"/flags", boolFlag("propagate"), nil); err != nil &&
		!strings.Contains(err.Error(), "409") {
		return err
	}
	if err := createFlags(ctx, api, project, pad); err != nil {
		return err
	}
	var k struct {
		Key string `json:"key"`
	}
	if _, err := api.Do(ctx, "POST", "/api/v1/projects/"+project+"/environments/production/sdk-keys", map[string]any{"kind": "server"}, &k); err != nil {
		return err
	}
	// The relay learns the new key with the next ruleset: wait for it before connecting.
	for deadline := time.Now().Add(30 * time.Second); ; {
		req, _ := http.NewRequest("GET", strings.TrimRight(relay, "/")+"/sdk/v1/ruleset", nil)
		req.Header.Set("Authorization", k.Key)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the relay never accepted the new SDK key")
		}
		time.Sleep(50 * time.Millisecond)
	}
	relayMetrics := strings.TrimRight(relay, "/") + "/metrics"
	goBefore := goInUse(ctx, relayMetrics) // first: it may collect the relay's garbage
	before := rssKB(pid)
	user := switchyard.NewContext("u1")
	// seen[i] receives the time client i observed each new value.
	type obs struct {
		at time.Time
		on bool
	}
	seen := make([]chan obs, n)
	var ready atomic.Int64
	var wg sync.WaitGroup
	clients := make([]*switchyard.Client, n)
	sem := make(chan struct{}, 50)
	for i := 0; i < n; i++ {
		seen[i] = make(chan obs, changes+4)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := switchyard.New(switchyard.Config{SDKKey: k.Key, RelayURL: relay, InitTimeout: time.Minute,
				Events: switchyard.EventsConfig{Disabled: true}})
			if err != nil {
				fmt.Fprintln(os.Stderr, "client:", err)
				return
			}
			c.OnChange(user, func(ch switchyard.FlagChange) {
				if ch.Key == "propagate" {
					seen[i] <- obs{at: time.Now(), on: c.Bool(user, "propagate", false)}
				}
			})
			clients[i] = c
			ready.Add(1)
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
	}()
	goAfter := goInUse(ctx, relayMetrics)
	after := rssKB(pid)
	fmt.Printf("clients streaming: %d\n", ready.Load())
	if pid > 0 && ready.Load() > 0 {
		fmt.Printf("relay RSS: %d KB before, %d KB with the streams open: %.1f KB per stream\n", before, after,
			float64(after-before)/float64(ready.Load()))
	}
	if goBefore > 0 && goAfter > 0 && ready.Load() > 0 {
		// Less noisy than the RSS: what the Go heap and the goroutine stacks hold, garbage included.
		fmt.Printf("relay Go heap + stacks in use: %.1f MB before, %.1f MB with the streams open: %.1f KB per stream\n",
			goBefore/1e6, goAfter/1e6, (goAfter-goBefore)/1e3/float64(ready.Load()))
	}
	const delivery = "evalrelay_stream_delivery_seconds"
	page, err := promscrape.Fetch(ctx, http.DefaultClient, relayMetrics)
	if err != nil {
		return err
	}
	deliveredBefore := promscrape.ParseHistogram(page, delivery)
	// The flag service's share: a change's commit to the broker's acknowledgement of its ruleset.
	const publish = "flagsvc_ruleset_publish_latency_seconds"
	flagsvcMetrics := api.Base + "/metrics"
	var publishedBefore promscrape.Histogram
	if page, err := promscrape.Fetch(ctx, http.DefaultClient, flagsvcMetrics); err == nil {
		publishedBefore = promscrape.ParseHistogram(page, publish)
	}
	var published <-chan time.Time
	if brokers != "" {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		if published, err = watchRulesets(wctx, api, project, brokers, topic); err != nil {
			return err
		}
	}
	var lat, first, answered, inKafka []time.Duration
	missed := 0
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	selfBefore, relayBefore := cpuTime(os.Getpid()), cpuTime(pid)
	for m := 0; m < changes; m++ {
		on := m%2 == 0
		for len(published) > 0 {
			<-published // an earlier change's
		}
		t0 := time.Now()
		if _, err := api.Do(ctx, "POST", "/api/v1/projects/"+project+"/flags/propagate/environments/production/toggle",
			map[string]any{"on": on}, nil); err != nil {
			return err
		}
		answered = append(answered, time.Since(t0))
		deadline := time.After(10 * time.Second)
		if published != nil {
			select {
			case at := <-published:
				inKafka = append(inKafka, at.Sub(t0))
			case <-deadline:
			}
		}
		firstSeen := time.Duration(1 << 62)
		for i := range clients {
			if clients[i] == nil {
				continue
			}
		wait:
			for {
				select {
				case o := <-seen[i]:
					if o.on == on {
						lat = append(lat, o.at.Sub(t0))
						firstSeen = min(firstSeen, o.at.Sub(t0))
						break wait
					}
				case <-deadline:
					missed++
					break wait
				}
			}
		}
		first = append(first, firstSeen)
		time.Sleep(200 * time.Millisecond)
	}
	selfCPU, relayCPU := cpuTime(os.Getpid())-selfBefore, cpuTime(pid)-relayBefore
	if cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	sort.Slice(first, func(i, j int) bool { return first[i] < first[j] })
	fmt.Printf("first client to see each change (the pipeline without the fan-out): p50 %.1f ms, max %.1f ms\n",
		ms(first[len(first)/2]), ms(first[len(first)-1]))
	sort.Slice(answered, func(i, j int) bool { return answered[i] < answered[j] })
	fmt.Printf("  of which: the API answered the toggle p50 %.1f ms", ms(answered[len(answered)/2]))
	if len(inKafka) > 0 {
		sort.Slice(inKafka, func(i, j int) bool { return inKafka[i] < inKafka[j] })
		fmt.Printf("; a consumer of the topic had the ruleset p50 %.1f ms (%d of %d changes)", ms(inKafka[len(inKafka)/2]), len(inKafka), changes)
	}
	fmt.Println()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) == 0 {
		return fmt.Errorf("no client saw any change")
	}
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	fmt.Printf("propagation (API request sent -> client listener fired), %d observations over %d changes, %d missed:\n", len(lat), changes, missed)
	fmt.Printf("  p50 %.1f ms  p90 %.1f ms  p99 %.1f ms  max %.1f ms\n", ms(q(0.5)), ms(q(0.9)), ms(q(0.99)), ms(lat[len(lat)-1]))
	// The relay's share: from its receiving each ruleset to its having written it to a stream.
	if page, err = promscrape.Fetch(ctx, http.DefaultClient, relayMetrics); err != nil {
		return err
	}
	fmt.Printf("relay, ruleset received -> written to each stream: %s\n",
		promscrape.ParseHistogram(page, delivery).Minus(deliveredBefore).Summary("writes"))
	if page, err := promscrape.Fetch(ctx, http.DefaultClient, flagsvcMetrics); err == nil {
		fmt.Printf("flag service, change committed -> ruleset acknowledged by Kafka: %s\n",
			promscrape.ParseHistogram(page, publish).Minus(publishedBefore).Summary("publishes"))
	}
	// CPU per change (including the 200 ms pauses' idle heartbeats, which are negligible).
	fmt.Printf("CPU per change: SDK clients %.1f ms (%.0f µs per client), relay %.1f ms\n",
		ms(selfCPU/time.Duration(changes)), float64(selfCPU.Microseconds())/float64(changes)/float64(max(ready.Load(), 1)),
		ms(relayCPU/time.Duration(changes)))
	return nil
}

// watchRulesets consumes the rulesets topic from its current end and signals, for every record
// of the project's production environment, when it arrived.
func watchRulesets(ctx context.Context, api stack.API, project, brokers, topic string) (<-chan time.Time, error) {
	var env struct {
		ID string `json:"id"`
	}
	if _, err := api.Do(ctx, "GET", "/api/v1/projects/"+project+"/environments/production", nil, &env); err != nil {
		return nil, err
	}
	seeds := kgo.SeedBrokers(strings.Split(brokers, ",")...)
	admin, err := kgo.NewClient(seeds)
	if err != nil {
		return nil, err
	}
	// Positioned at the ends listed now, so no change made after this is missed.
	ends, err := kadm.NewClient(admin).ListEndOffsets(ctx, topic)
	admin.Close()
	if err != nil {
		return nil, err
	}
	at := map[string]map[int32]kgo.Offset{topic: {}}
	ends.Each(func(o kadm.ListedOffset) { at[topic][o.Partition] = kgo.NewOffset().At(o.Offset) })
	cl, err := kgo.NewClient(seeds, kgo.ConsumePartitions(at), kgo.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		return nil, err
	}
	out := make(chan time.Time, 64)
	go func() {
		defer cl.Close()
		for ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				if string(r.Key) == env.ID {
					select {
					case out <- time.Now():
					default:
					}
				}
			})
		}
	}()
	return out, nil
}

// goInUse reads the relay's Go heap and goroutine stacks in use, in bytes, from its metrics (0
// when they cannot be read).
func goInUse(ctx context.Context, metricsURL string) float64 {
	// A relay serving its profiles (-pprof) collects its garbage first when asked for a heap
	// profile with gc=1: the garbage of reading the topic would otherwise blur the difference.
	if resp, err := http.Get(strings.TrimSuffix(metricsURL, "/metrics") + "/debug/pprof/heap?gc=1"); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	page, err := promscrape.Fetch(ctx, http.DefaultClient, metricsURL)
	if err != nil {
		return 0
	}
	heap, ok1 := promscrape.ParseGauge(page, "go_memstats_heap_inuse_bytes")
	stacks, ok2 := promscrape.ParseGauge(page, "go_memstats_stack_inuse_bytes")
	if !ok1 || !ok2 {
		return 0
	}
	return heap + stacks
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func fail(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "relaybench:", err)
		os.Exit(1)
	}
}
