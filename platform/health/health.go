// Package health serves the operational endpoints every service exposes: /healthz (the process
// is alive), /readyz (its dependencies answer) and /metrics (Prometheus).
package health

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check reports whether one dependency is usable.
type Check func(ctx context.Context) error

// Checks is a set of named readiness checks.
type Checks struct {
	mu     sync.RWMutex
	checks map[string]Check
	// Timeout bounds each check (default 2 s).
	Timeout time.Duration
}

// NewChecks returns an empty set.
func NewChecks() *Checks { return &Checks{checks: map[string]Check{}} }

// Add registers a check under a name ("postgres", "kafka", ...).
func (c *Checks) Add(name string, check Check) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checks[name] = check
}

// Result is one check's outcome.
type Result struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// Run runs every check concurrently and reports whether all passed.
func (c *Checks) Run(ctx context.Context) (bool, []Result) {
	c.mu.RLock()
	names := make([]string, 0, len(c.checks))
	for n := range c.checks {
		names = append(names, n)
	}
	c.mu.RUnlock()
	sort.Strings(names)
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	results := make([]Result, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		c.mu.RLock()
		check := c.checks[n]
		c.mu.RUnlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			results[i] = Result{Name: n, OK: true}
			if err := check(cctx); err != nil {
				results[i] = Result{Name: n, Error: err.Error()}
			}
		}()
	}
	wg.Wait()
	ok := true
	for _, r := range results {
		ok = ok && r.OK
	}
	return ok, results
}

// NewRegistry returns a Prometheus registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Mount adds /healthz, /readyz and /metrics to app.
func Mount(app fiber.Router, checks *Checks, reg *prometheus.Registry) {
	app.Get("/healthz", func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"status": "ok"})
	})
	app.Get("/readyz", func(c *fiber.Ctx) error {
		ok, results := checks.Run(c.UserContext())
		status := fiber.StatusOK
		if !ok {
			status = fiber.StatusServiceUnavailable
		}
		return c.Status(status).JSON(fiber.Map{"ready": ok, "checks": results})
	})
	app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
}
