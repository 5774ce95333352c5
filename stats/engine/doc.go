// Package engine is Switchyard's statistics engine: it turns per-variant sufficient
// statistics (counts, sums, sums of squares and cross-products) into experiment results —
// frequentist fixed-horizon and sequential tests, the Gaussian Bayesian model, sample ratio
// mismatch, multiple-testing corrections, and power / minimum detectable effect.
//
// The package is pure: no I/O, no globals, no service dependencies. It implements the
// contract in shared/design/STATS.md (whose conventions follow GrowthBook's gbstats so that
// results can be cross-checked), and is imported by the stats service, the results workers
// and the jobs guardrail monitor.
//
// Entry points:
//
//   - [Analyze] analyses a whole [Request] (every metric, SRM, multiple-testing correction).
//   - [AnalyzeMetric] analyses one metric's per-variant sums under [Options], without any
//     correction across metrics — the building block for monitors that look at one metric.
//   - [Power] computes power and the minimum detectable effect for a planned experiment.
//   - [DecodeRequest] and [DecodePowerRequest] parse the JSON contract strictly, naming the
//     offending field of an invalid request.
//
// Results never contain NaN or infinities except for the unbounded end of a one-sided
// interval, which [Interval] encodes as JSON null. A comparison that cannot be computed
// carries a [VariantError] with a stable code instead of numbers.
package engine
