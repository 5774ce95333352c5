// Command flagsvcbench load-tests a running flag service from a second process: toggle latency
// at a fixed rate, commit-to-Kafka-ack latency, and list/search latency over a large project.
//
//	flagsvcbench -url http://127.0.0.1:8080 -token-file .data/admin-token -rate 200 -duration 30s
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/switchyard-io/switchyard/flagsvc/internal/loadtest"
)

func main() {
	var cfg loadtest.Config
	var tokenFile string
	var skipList, keep bool
	flag.StringVar(&cfg.URL, "url", "http://127.0.0.1:8080", "flag service URL")
	flag.StringVar(&tokenFile, "token-file", ".data/admin-token", "file with an owner API token")
	flag.IntVar(&cfg.Rate, "rate", 200, "toggles per second")
	flag.DurationVar(&cfg.Duration, "duration", 30*time.Second, "length of the toggle run")
	flag.DurationVar(&cfg.Warmup, "warmup", 10*time.Second, "length of the unrecorded toggle run before it")
	flag.IntVar(&cfg.ListFlags, "list-flags", 10000, "flags in the list/search project")
	flag.IntVar(&cfg.ListRequests, "list-requests", 200, "requests per list/search query")
	flag.BoolVar(&skipList, "skip-list", false, "skip the list/search benchmark")
	flag.BoolVar(&keep, "keep", false, "keep the benchmark's projects instead of deleting them")
	flag.Parse()
	raw, err := os.ReadFile(tokenFile)
	if err != nil {
		fail(err)
	}
	cfg.Token = strings.TrimSpace(string(raw))
	ctx := context.Background()
	c := loadtest.NewClient(cfg.URL, cfg.Token)
	suffix := fmt.Sprint(time.Now().Unix())
	// The projects are deleted afterwards (unless -keep): left behind, every relay would go on
	// holding their rulesets, 10,000 flags each, and the next benchmark would measure that.
	var created []string
	cleanup := func() {
		if keep {
			return
		}
		for _, p := range created {
			if _, err := c.Do(ctx, "DELETE", "/api/v1/projects/"+p, nil, nil); err != nil {
				fmt.Fprintln(os.Stderr, "flagsvcbench: could not delete project", p+":", err)
			}
		}
	}
	created = append(created, "bench-toggle-"+suffix)
	api, prop, err := loadtest.Toggles(ctx, c, cfg, "bench-toggle-"+suffix, os.Stdout)
	if err != nil {
		cleanup()
		fail(err)
	}
	fmt.Printf("toggle API latency:       %s\n", api)
	fmt.Printf("commit -> Kafka ack:      %s\n", prop.Summary("publishes"))
	if skipList {
		cleanup()
		return
	}
	created = append(created, "bench-list-"+suffix)
	res, err := loadtest.ListSearch(ctx, c, cfg, "bench-list-"+suffix, os.Stdout)
	cleanup()
	if err != nil {
		fail(err)
	}
	names := make([]string, 0, len(res))
	for n := range res {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Printf("%-34s %s\n", n+":", res[n])
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "flagsvcbench:", err)
	os.Exit(1)
}
