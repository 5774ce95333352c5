package metricsql

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Definition is one version of a metric definition as the flag service's metrics API returns
// it (GET /api/v1/projects/{p}/metrics/{key}?version=N). The results workers and the jobs
// guardrail monitor read definitions in this form and turn them into Metric with Definitions.
type Definition struct {
	Key         string `json:"key"`
	Name        string `json:"name"`
	Kind        string `json:"kind"`
	EventKey    string `json:"event_key,omitempty"`
	Numerator   string `json:"numerator,omitempty"`
	Denominator string `json:"denominator,omitempty"`
	Window      struct {
		Start string `json:"start"`
		End   string `json:"end"`
	} `json:"window"`
	Filters        []Filter  `json:"filters"`
	Winsorize      Winsorize `json:"winsorize"`
	Direction      string    `json:"direction"`
	MinSampleSize  int       `json:"min_sample_size"`
	CUPEDPreperiod string    `json:"cuped_preperiod"`
	Version        int64     `json:"version"`
}

// Definitions loads metric definitions through Load and caches the pinned versions (a
// version never changes; version 0, the current one, is loaded every time).
type Definitions struct {
	Load func(ctx context.Context, project, key string, version int64) (Definition, error)

	mu    sync.Mutex
	cache map[string]Definition
}

// Get returns one version of a metric's definition.
func (d *Definitions) Get(ctx context.Context, project, key string, version int64) (Definition, error) {
	id := fmt.Sprintf("%s/%s@%d", project, key, version)
	d.mu.Lock()
	def, ok := d.cache[id]
	d.mu.Unlock()
	if ok {
		return def, nil
	}
	def, err := d.Load(ctx, project, key, version)
	if err != nil || version == 0 {
		return def, err
	}
	d.mu.Lock()
	if d.cache == nil {
		d.cache = map[string]Definition{}
	}
	d.cache[id] = def
	d.mu.Unlock()
	return def, nil
}

// Query loads a metric at its pinned version (versions[key]; absent: the current one) and
// builds its query form, a ratio's parts included at their pinned versions.
func (d *Definitions) Query(ctx context.Context, project, key string, versions map[string]int64) (Definition, *Metric, error) {
	def, err := d.Get(ctx, project, key, versions[key])
	if err != nil {
		return def, nil, err
	}
	q := &Metric{Key: def.Key, Version: def.Version, Kind: def.Kind, EventKey: def.EventKey,
		WindowStart: duration(def.Window.Start), WindowEnd: duration(def.Window.End),
		CUPEDPreperiod: duration(def.CUPEDPreperiod), Filters: def.Filters, Winsorize: def.Winsorize}
	if def.Kind == Ratio {
		if _, q.Numerator, err = d.Query(ctx, project, def.Numerator, versions); err != nil {
			return def, nil, err
		}
		if _, q.Denominator, err = d.Query(ctx, project, def.Denominator, versions); err != nil {
			return def, nil, err
		}
	}
	return def, q, nil
}

// duration parses a definition's Go duration ("" or invalid: 0, which the flag service's
// validation rules out for the fields that need one).
func duration(s string) time.Duration {
	d, _ := time.ParseDuration(s)
	return d
}
