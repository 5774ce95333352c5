// Package e2e tests Switchyard across its services, run as real processes against the real
// Postgres, Kafka and ClickHouse of the local stack.
package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/e2e/stack"
	"github.com/switchyard-io/switchyard/platform/testenv"
	"github.com/switchyard-io/switchyard/sdks/go/switchyard"
)

// flagService starts a flag service on a fresh database and ruleset topic, bootstraps an
// owner, and returns its API client and the topic.
func flagService(t *testing.T) (stack.API, string) {
	t.Helper()
	dsn := testenv.PostgresDB(t)
	topic := testenv.KafkaTopicName(t, "rulesets")
	brokers := strings.Join(testenv.KafkaBrokers(), ",")
	common := []string{"-pg-dsn", dsn, "-kafka-brokers", brokers, "-rulesets-topic", topic, "-log-level", "warn"}
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	stack.Run(t, "flagsvc", append([]string{"bootstrap", "-token-file", tokenFile}, common...)...)
	fs := stack.Start(t, "flagsvc", append(common, "-publish-sweep", "500ms")...)
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	return stack.API{Base: fs.URL, Token: strings.TrimSpace(string(token))}, topic
}

func relay(t *testing.T, topic string) *stack.Process {
	t.Helper()
	return stack.Start(t, "evalrelay", "-kafka-brokers", strings.Join(testenv.KafkaBrokers(), ","), "-rulesets-topic", topic,
		"-state-dir", t.TempDir(), "-log-level", "warn")
}

// TestFlagChangeReachesSDKsThroughTwoRelays: a change made through the flag service API
// travels through Kafka to two independent relays and reaches Go SDK clients streaming from
// each; a revoked SDK key stops working once the next ruleset arrives.
func TestFlagChangeReachesSDKsThroughTwoRelays(t *testing.T) {
	api, topic := flagService(t)
	api.Must(t, "POST", "/api/v1/projects", map[string]any{"key": "shop", "name": "Shop"}, nil)
	api.Must(t, "POST", "/api/v1/projects/shop/flags", map[string]any{"key": "checkout", "kind": "boolean",
		"variations": []any{map[string]any{"key": "on", "value": true}, map[string]any{"key": "off", "value": false}}}, nil)
	var key struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	}
	api.Must(t, "POST", "/api/v1/projects/shop/environments/production/sdk-keys", map[string]any{"kind": "server"}, &key)
	relays := []*stack.Process{relay(t, topic), relay(t, topic)}
	// A relay learns a new key with the next ruleset; an SDK refused with 401 stops for good
	// (as it should for a wrong key), so the clients connect once the relays know it.
	for _, r := range relays {
		testenv.Eventually(t, 30*time.Second, "relay to accept the new SDK key", func() bool {
			return statusOf(r.URL+"/sdk/v1/ruleset", key.Key) == 200
		})
	}

	ctx := switchyard.NewContext("user-42", switchyard.Attr("plan", "pro"))
	var clients []*switchyard.Client
	for _, r := range relays {
		c, err := switchyard.New(switchyard.Config{SDKKey: key.Key, RelayURL: r.URL, InitTimeout: 30 * time.Second,
			Events: switchyard.EventsConfig{Disabled: true}})
		if err != nil {
			t.Fatalf("SDK client on %s: %v", r.URL, err)
		}
		t.Cleanup(func() { c.Close() })
		clients = append(clients, c)
	}
	for _, c := range clients {
		if d := c.BoolDetail(ctx, "checkout", true); d.Value || d.Reason != "DISABLED" {
			t.Fatalf("initial state: %+v", d)
		}
	}
	// Listeners see the change as it happens.
	var mu sync.Mutex
	seen := make([]bool, len(clients))
	for i, c := range clients {
		c.OnChange(ctx, func(ch switchyard.FlagChange) {
			if ch.Key == "checkout" {
				mu.Lock()
				seen[i] = true
				mu.Unlock()
			}
		})
	}
	api.Must(t, "PUT", "/api/v1/projects/shop/flags/checkout/environments/production", map[string]any{
		"on": true, "off_variation": "off", "fallthrough": map[string]any{"variation": "off"},
		"rules": []any{map[string]any{"clauses": []any{map[string]any{"attribute": "plan", "op": "in", "values": []string{"pro"}}},
			"serve": map[string]any{"variation": "on"}}},
	}, nil)
	for i, c := range clients {
		testenv.Eventually(t, 30*time.Second, "SDK client to see the change", func() bool { return c.Bool(ctx, "checkout", false) })
		d := c.BoolDetail(ctx, "checkout", false)
		if d.Reason != "TARGETING_MATCH" || d.Variation != "on" {
			t.Fatalf("client %d: %+v", i, d)
		}
		if other := c.Bool(switchyard.NewContext("user-1", switchyard.Attr("plan", "free")), "checkout", true); other {
			t.Fatalf("client %d: the rule must not match a free plan", i)
		}
	}
	testenv.Eventually(t, 10*time.Second, "change listeners to fire", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return seen[0] && seen[1]
	})

	// Kill switch through the API: both clients serve off.
	api.Must(t, "POST", "/api/v1/projects/shop/flags/checkout/environments/production/kill", map[string]any{"reason": "e2e"}, nil)
	for _, c := range clients {
		testenv.Eventually(t, 30*time.Second, "kill to propagate", func() bool { return !c.Bool(ctx, "checkout", true) })
	}

	// Revoking the key: the relays refuse it once the next ruleset arrives.
	api.Must(t, "DELETE", "/api/v1/projects/shop/environments/production/sdk-keys/"+key.ID, nil, nil)
	for _, r := range relays {
		testenv.Eventually(t, 30*time.Second, "revoked key refused", func() bool {
			return statusOf(r.URL+"/sdk/v1/ruleset", key.Key) == 401
		})
	}
}
