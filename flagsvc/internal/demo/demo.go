// Package demo seeds a demo project through the flag service's public API, the way a user
// would: a project with development, staging and production, a few flags of every kind with
// targeting, a segment, and SDK keys (written to a file, since server keys are shown once).
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/switchyard-io/switchyard/platform/apiclient"
	"github.com/switchyard-io/switchyard/platform/config"
)

// Config configures the seed.
type Config struct {
	URL       string
	TokenFile string
	KeysFile  string
	Project   string
}

// RegisterFlags implements config.Config.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.URL, "flagsvc-url", "http://127.0.0.1:8080", "flag service base URL")
	fs.StringVar(&c.TokenFile, "token-file", ".data/admin-token", "file holding an owner API token")
	fs.StringVar(&c.KeysFile, "keys-file", ".data/sdk-keys.json", "where to write the demo SDK keys")
	fs.StringVar(&c.Project, "project", "demo", "demo project key")
}

// Validate implements config.Config.
func (c *Config) Validate() error {
	if c.URL == "" {
		return config.Invalid("flagsvc-url", "is required")
	}
	return nil
}

// client calls the API; "already exists" (409) and "not found" (404) are answers the seed
// handles, not failures.
type client struct{ *apiclient.Client }

func (c *client) call(ctx context.Context, method, path string, in, out any) (int, error) {
	st, err := c.Do(ctx, method, path, in, out)
	if s := apiclient.Status(err); s == http.StatusNotFound || s == http.StatusConflict {
		return s, nil
	}
	return st, err
}

// Seed creates what is missing of the demo; running it again changes nothing.
func Seed(ctx context.Context, cfg Config, out io.Writer) error {
	raw, err := os.ReadFile(cfg.TokenFile)
	if err != nil {
		return fmt.Errorf("read token: %w (run flagsvc bootstrap first)", err)
	}
	c := &client{apiclient.New(cfg.URL, strings.TrimSpace(string(raw)))}
	p := "/api/v1/projects/" + cfg.Project
	if st, err := c.call(ctx, "GET", p, nil, nil); err != nil {
		return err
	} else if st == http.StatusNotFound {
		if _, err := c.call(ctx, "POST", "/api/v1/projects", map[string]any{"key": cfg.Project, "name": "Demo store",
			"description": "A demo web shop: checkout, search and pricing flags."}, nil); err != nil {
			return err
		}
		fmt.Fprintf(out, "seed: created project %s with development, staging, production\n", cfg.Project)
	}
	for _, f := range flags {
		st, err := c.call(ctx, "POST", p+"/flags", f.def, nil)
		if err != nil {
			return err
		}
		if st == http.StatusConflict {
			continue
		}
		for env, cfgBody := range f.configs {
			// The flag was just created: a 409 here is a refused configuration, not "exists".
			if _, err := c.Do(ctx, "PUT", p+"/flags/"+f.def["key"].(string)+"/environments/"+env, cfgBody, nil); err != nil {
				return err
			}
		}
		fmt.Fprintf(out, "seed: created flag %s\n", f.def["key"])
	}
	if _, err := c.call(ctx, "POST", p+"/environments/production/segments", map[string]any{
		"key": "beta-testers", "name": "Beta testers", "description": "People who opted in to early features.",
		"included": []map[string]any{{"context_kind": "user", "values": []string{"alice", "bob", "carol"}}},
		"rules":    []map[string]any{{"clauses": []map[string]any{{"attribute": "email", "op": "ends_with", "values": []string{"@example.com"}}}}},
	}, nil); err != nil {
		return err
	}
	if err := seedExperiment(ctx, c, cfg, out); err != nil {
		return err
	}
	if err := writeServiceToken(ctx, c, cfg, out); err != nil {
		return err
	}
	return writeKeys(ctx, c, cfg, out)
}

// seedExperiment defines the demo's metrics and starts the checkout experiment on the
// new-checkout flag in production (traffic comes from e2e/cmd/demotraffic).
func seedExperiment(ctx context.Context, c *client, cfg Config, out io.Writer) error {
	p := "/api/v1/projects/" + cfg.Project
	for _, m := range []map[string]any{
		{"key": "checkout-conversion", "name": "Checkout conversion", "kind": "proportion", "event_key": "order-placed",
			"description": "Share of visitors who place an order within 7 days of seeing the checkout."},
		{"key": "revenue", "name": "Revenue per visitor", "kind": "sum", "event_key": "order-placed",
			"winsorize": map[string]any{"type": "percentile", "upper": 0.99}, "description": "Order value per visitor, capped at the 99th percentile."},
		{"key": "add-to-cart", "name": "Add to cart", "kind": "proportion", "event_key": "add-to-cart"},
		{"key": "checkout-errors", "name": "Checkout errors", "kind": "count", "event_key": "checkout-error", "direction": "decrease",
			"cuped_preperiod": "0s", "description": "Client-side errors on the checkout page per visitor."},
	} {
		if _, err := c.call(ctx, "POST", p+"/metrics", m, nil); err != nil {
			return err
		}
	}
	var x struct {
		Status string `json:"status"`
	}
	st, err := c.call(ctx, "GET", p+"/experiments/checkout-redesign", nil, &x)
	if err != nil {
		return err
	}
	if st == http.StatusNotFound {
		if _, err := c.call(ctx, "POST", p+"/experiments", map[string]any{
			"key": "checkout-redesign", "name": "One-page checkout", "environment": "production", "flag": "new-checkout",
			"hypothesis": "Putting shipping, payment and review on one page makes more visitors finish their order, without more errors.",
			"control":    "off", "variations": []any{map[string]any{"variation": "off", "weight": 50000}, map[string]any{"variation": "on", "weight": 50000}},
			"metrics": map[string]any{"primary": []string{"checkout-conversion"}, "secondary": []string{"revenue", "add-to-cart"},
				"guardrails": []any{map[string]any{"metric": "checkout-errors", "tolerance": 0.1, "action": "alert"}}},
			"analysis":         map[string]any{"engine": "frequentist", "sequential": true, "cuped": true, "correction": "none"},
			"planned_duration": "336h",
		}, nil); err != nil {
			return err
		}
		x.Status = "draft"
	}
	if x.Status == "draft" {
		if _, err := c.call(ctx, "POST", p+"/experiments/checkout-redesign/start", nil, nil); err != nil {
			return err
		}
		fmt.Fprintln(out, "seed: started experiment checkout-redesign on new-checkout in production")
	}
	return nil
}

// writeServiceToken gives the other services (stats results workers, jobs) their own API
// token, once, in service-token next to the keys file.
func writeServiceToken(ctx context.Context, c *client, cfg Config, out io.Writer) error {
	path := filepath.Join(filepath.Dir(cfg.KeysFile), "service-token")
	if raw, err := os.ReadFile(path); err == nil {
		check := &client{apiclient.New(c.Base, strings.TrimSpace(string(raw)))}
		if st, err := check.call(ctx, "GET", "/api/v1/me", nil, nil); err == nil && st == http.StatusOK {
			return nil
		}
	}
	var tk struct {
		Token string `json:"token"`
	}
	if _, err := c.call(ctx, "POST", "/api/v1/tokens", map[string]any{"kind": "service", "name": "switchyard services", "role": "admin"}, &tk); err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(tk.Token+"\n"), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(out, "seed: service token for stats and jobs written to %s\n", path)
	return nil
}

// writeKeys creates a server and a client key per environment once, into the keys file.
func writeKeys(ctx context.Context, c *client, cfg Config, out io.Writer) error {
	if _, err := os.Stat(cfg.KeysFile); err == nil {
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	keys := map[string]map[string]string{}
	for _, env := range []string{"development", "staging", "production"} {
		keys[env] = map[string]string{}
		for _, kind := range []string{"server", "client"} {
			var k struct {
				Key string `json:"key"`
			}
			if _, err := c.call(ctx, "POST", "/api/v1/projects/"+cfg.Project+"/environments/"+env+"/sdk-keys",
				map[string]any{"kind": kind, "name": "demo " + kind + " key"}, &k); err != nil {
				return err
			}
			keys[env][kind] = k.Key
		}
	}
	b, _ := json.MarshalIndent(keys, "", "  ")
	if err := os.MkdirAll(filepath.Dir(cfg.KeysFile), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(cfg.KeysFile, b, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(out, "seed: SDK keys written to %s\n", cfg.KeysFile)
	return nil
}

type seedFlag struct {
	def     map[string]any
	configs map[string]map[string]any
}

func v(key string, value any) map[string]any { return map[string]any{"key": key, "value": value} }

var flags = []seedFlag{
	{
		def: map[string]any{"key": "new-checkout", "name": "New checkout", "kind": "boolean", "tags": []string{"checkout", "experiment"},
			"description": "The redesigned one-page checkout.", "variations": []any{v("on", true), v("off", false)}, "client_side": true},
		configs: map[string]map[string]any{
			"development": {"on": true, "off_variation": "off", "fallthrough": map[string]any{"variation": "on"}},
			"staging": {"on": true, "off_variation": "off", "fallthrough": map[string]any{"rollout": map[string]any{
				"variations": []any{map[string]any{"variation": "on", "weight": 50000}, map[string]any{"variation": "off", "weight": 50000}}}}},
			"production": {"on": false, "off_variation": "off", "fallthrough": map[string]any{"variation": "off"},
				"targets": []any{map[string]any{"context_kind": "user", "variation": "on", "values": []string{"alice", "bob"}}}},
		},
	},
	{
		def: map[string]any{"key": "banner-text", "name": "Banner text", "kind": "string", "tags": []string{"marketing"}, "temporary": false,
			"variations": []any{v("sale", "Winter sale: 20% off"), v("shipping", "Free shipping over $50"), v("none", "")}},
		configs: map[string]map[string]any{
			"production": {"on": true, "off_variation": "none", "fallthrough": map[string]any{"variation": "shipping"},
				"rules": []any{map[string]any{"description": "Europe gets the sale", "clauses": []any{map[string]any{"attribute": "country", "op": "in", "values": []string{"DE", "FR", "NL"}}},
					"serve": map[string]any{"variation": "sale"}}}},
		},
	},
	{
		def: map[string]any{"key": "search-ranking", "name": "Search ranking model", "kind": "string", "tags": []string{"search", "experiment"},
			"variations": []any{v("control", "bm25"), v("semantic", "semantic-v2")}},
		configs: map[string]map[string]any{
			"production": {"on": true, "off_variation": "control", "fallthrough": map[string]any{"rollout": map[string]any{
				"salt":       "search-ranking-exp-1",
				"variations": []any{map[string]any{"variation": "control", "weight": 50000}, map[string]any{"variation": "semantic", "weight": 50000}}}}},
		},
	},
	{
		def: map[string]any{"key": "max-cart-items", "name": "Max cart items", "kind": "number", "temporary": false,
			"variations": []any{v("default", 50), v("large", 200)}},
		configs: map[string]map[string]any{
			"production": {"on": true, "off_variation": "default", "fallthrough": map[string]any{"variation": "default"},
				"rules": []any{map[string]any{"clauses": []any{map[string]any{"context_kind": "account", "attribute": "plan", "op": "in", "values": []string{"enterprise"}}},
					"serve": map[string]any{"variation": "large"}}}},
		},
	},
	{
		def: map[string]any{"key": "theme", "name": "Theme settings", "kind": "json", "temporary": false,
			"variations": []any{v("light", map[string]any{"mode": "light", "accent": "#3b82f6"}), v("dark", map[string]any{"mode": "dark", "accent": "#a78bfa"})}},
		configs: map[string]map[string]any{},
	},
}
