// Command demotraffic fills the seeded demo experiment with a simulated week of visitors, the
// way a real application would: a Go SDK client evaluates new-checkout for each visitor
// (streaming from the relay; exposures to the collector) and tracks their orders, cart adds
// and checkout errors. The one-page checkout converts a little better. Then it asks the stats
// service to compute the results. It does nothing when the experiment's results already count
// exposed visitors.
//
//	demotraffic -keys-file .data/sdk-keys.json -token-file .data/admin-token
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/switchyard-io/switchyard/e2e/stack"
	"github.com/switchyard-io/switchyard/sdks/go/switchyard"
)

func main() {
	relay := flag.String("relay-url", "http://127.0.0.1:8081", "relay URL")
	events := flag.String("events-url", "http://127.0.0.1:8082", "ingest collector URL")
	stats := flag.String("stats-url", "http://127.0.0.1:8083", "stats service URL")
	keysFile := flag.String("keys-file", ".data/sdk-keys.json", "SDK keys written by flagsvc seed")
	tokenFile := flag.String("token-file", ".data/admin-token", "owner API token")
	project := flag.String("project", "demo", "project")
	experiment := flag.String("experiment", "checkout-redesign", "experiment")
	users := flag.Int("users", 20000, "visitors to simulate")
	flag.Parse()
	raw, err := os.ReadFile(*tokenFile)
	fail(err)
	api := stack.API{Base: *stats, Token: strings.TrimSpace(string(raw))}
	ctx := context.Background()
	path := "/v1/projects/" + *project + "/experiments/" + *experiment
	var existing struct {
		Exposures map[string]int64 `json:"exposures"`
	}
	if st, _ := api.Do(ctx, "GET", path+"/results", nil, &existing); st == 200 && exposed(existing.Exposures) > 0 {
		fmt.Println("demotraffic: the demo experiment already has visitors; nothing to do")
		return
	}
	var keys map[string]map[string]string
	kraw, err := os.ReadFile(*keysFile)
	fail(err)
	fail(json.Unmarshal(kraw, &keys))
	c, err := switchyard.New(switchyard.Config{SDKKey: keys["production"]["server"], RelayURL: *relay, EventsURL: *events,
		InitTimeout: time.Minute, Events: switchyard.EventsConfig{FlushInterval: 500 * time.Millisecond, BatchSize: 2000, Capacity: 500000}})
	fail(err)
	defer c.Close()
	// Wait until the relay serves the started experiment.
	for deadline := time.Now().Add(time.Minute); c.BoolDetail(switchyard.NewContext("probe"), "new-checkout", false).Reason != "SPLIT"; {
		if time.Now().After(deadline) {
			fail(fmt.Errorf("the relay does not serve the demo experiment's split"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	r := rand.New(rand.NewPCG(42, 7))
	countries := []string{"US", "DE", "FR", "GB", "BR", "JP"}
	served := map[string]int{}
	for i := 0; i < *users; i++ {
		ctx := switchyard.NewContext(fmt.Sprintf("visitor-%05d", i), switchyard.Attr("country", countries[r.IntN(len(countries))]))
		d := c.BoolDetail(ctx, "new-checkout", false)
		if d.Reason != "SPLIT" {
			continue // individually targeted visitors are not in the experiment
		}
		served[d.Variation]++
		treated := d.Variation == "on"
		if r.Float64() < pick(treated, 0.32, 0.30) {
			c.Track(ctx, "add-to-cart", 0)
		}
		if r.Float64() < pick(treated, 0.135, 0.11) {
			c.Track(ctx, "order-placed", math.Round(math.Exp(3.6+0.6*r.NormFloat64())*100)/100)
		}
		for e := poisson(r, 0.05); e > 0; e-- {
			c.Track(ctx, "checkout-error", 0)
		}
	}
	fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	fail(c.FlushAndWait(fctx))
	fmt.Printf("demotraffic: %d visitors in the experiment (off %d, on %d); computing results\n", served["off"]+served["on"], served["off"], served["on"])
	want := int64(served["off"] + served["on"])
	for deadline := time.Now().Add(2 * time.Minute); ; {
		var snap struct {
			Exposures map[string]int64 `json:"exposures"`
		}
		if _, err := api.Do(fctx, "POST", path+"/refresh", nil, &snap); err == nil && snap.Exposures["off"]+snap.Exposures["on"] >= want {
			fmt.Println("demotraffic: results ready")
			return
		}
		if time.Now().After(deadline) {
			fail(fmt.Errorf("results did not reach %d exposures in time", want))
		}
		time.Sleep(time.Second)
	}
}

func pick(treated bool, on, off float64) float64 {
	if treated {
		return on
	}
	return off
}

// poisson draws a Poisson variate (Knuth; small means).
func poisson(r *rand.Rand, mean float64) int {
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= r.Float64()
		if p < l {
			return k
		}
		k++
	}
}

func fail(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "demotraffic:", err)
		os.Exit(1)
	}
}

func exposed(byVariation map[string]int64) int64 {
	var n int64
	for _, v := range byVariation {
		n += v
	}
	return n
}
