// Package results computes experiment results continuously: for every running experiment, on
// a schedule and on demand, it folds finished days into ClickHouse's daily rollups, reads each
// metric's per-variant sufficient statistics (stats/metricsql), runs the statistics engine
// (stats/engine), checks data quality (sample-ratio mismatch, contexts exposed to several
// variations, too few units) and stores a snapshot in Postgres, so results have history.
package results

import (
	"time"

	"github.com/switchyard-io/switchyard/stats/engine"
)

// Snapshot is one computation of an experiment's results (docs/experiments-api.md).
type Snapshot struct {
	Project      string           `json:"project"`
	Experiment   string           `json:"experiment"`
	ExperimentID string           `json:"experiment_id"`
	Status       string           `json:"status"`
	ComputedAt   time.Time        `json:"computed_at"`
	DataFrom     time.Time        `json:"data_from"`
	DataTo       time.Time        `json:"data_to"`
	Control      string           `json:"control"`
	Analysis     AnalysisSettings `json:"analysis"`
	// MetricVersions are the versions of every metric definition the snapshot used (a ratio's
	// numerator and denominator included): the experiment's recorded versions.
	MetricVersions map[string]int64 `json:"metric_versions"`
	Exposures      map[string]int64 `json:"exposures"`
	Progress       Progress         `json:"progress"`
	DataQuality    DataQuality      `json:"data_quality"`
	Metrics        []MetricResult   `json:"metrics"`
	// RefreshError is set by the results API, not stored: the last refresh after this snapshot
	// failed, so these results are not up to date.
	RefreshError *RefreshError `json:"refresh_error,omitempty"`
}

// RefreshError is a failed refresh: when, and the error.
type RefreshError struct {
	At      time.Time `json:"at"`
	Message string    `json:"message"`
}

// AnalysisSettings echo how the results were computed.
type AnalysisSettings struct {
	Engine           string  `json:"engine"`
	Alpha            float64 `json:"alpha"`
	Sided            string  `json:"sided"`
	Sequential       bool    `json:"sequential"`
	SequentialTuning float64 `json:"sequential_tuning,omitempty"`
	CUPED            bool    `json:"cuped"`
	Correction       string  `json:"correction"`
	Difference       string  `json:"difference"`
}

// Progress is how far the experiment is along its plan.
type Progress struct {
	ElapsedDays   float64 `json:"elapsed_days"`
	PlannedDays   float64 `json:"planned_days"`
	UnitsPerDay   float64 `json:"units_per_day"`
	RemainingDays float64 `json:"remaining_days"`
}

// DataQuality flags reasons to distrust the results.
type DataQuality struct {
	SRM               SRM           `json:"srm"`
	MultipleExposures Multiple      `json:"multiple_exposures"`
	TooFewUnits       []TooFewUnits `json:"too_few_units"`
}

// SRM is the sample-ratio-mismatch check of unit counts against the planned split.
type SRM struct {
	PValue   float64            `json:"p_value"`
	Flagged  bool               `json:"flagged"`
	Expected map[string]float64 `json:"expected"`
}

// Multiple counts contexts that saw more than one variation (excluded from the analysis).
type Multiple struct {
	Contexts int64   `json:"contexts"`
	Fraction float64 `json:"fraction"`
	Flagged  bool    `json:"flagged"`
}

// TooFewUnits is a metric variation below the metric's minimum sample size.
type TooFewUnits struct {
	Metric    string `json:"metric"`
	Variation string `json:"variation"`
	N         int64  `json:"n"`
	Minimum   int    `json:"minimum"`
}

// MetricResult is one metric's results.
type MetricResult struct {
	Metric        string  `json:"metric"`
	Name          string  `json:"name"`
	Role          string  `json:"role"` // primary | secondary | guardrail
	Kind          string  `json:"kind"`
	Direction     string  `json:"direction"`
	MetricVersion int64   `json:"metric_version"`
	CUPED         bool    `json:"cuped"`
	Tolerance     float64 `json:"tolerance,omitempty"`
	// MDE is the smallest relative effect the planned sample size detects with 80% power.
	MDE      *float64               `json:"mde_at_planned_size"`
	Variants []engine.VariantResult `json:"variants"`
	// Error says why the metric has no results in this snapshot (its definition could not be
	// loaded, or the engine rejected its sums); the other metrics are computed without it.
	Error string `json:"error,omitempty"`
}
