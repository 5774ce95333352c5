// Package evaluation is Switchyard's flag evaluation engine: it compiles a ruleset
// (sdks/spec/ruleset.schema.json) into an immutable, precomputed form and evaluates flags for
// contexts exactly as sdks/spec/EVALUATION.md specifies. It does no I/O and has no dependencies
// outside the standard library, so SDKs, the relay (remote evaluation) and the flag service
// (previews) share one implementation.
//
//	rs, err := evaluation.CompileJSON(data)        // once per ruleset version
//	ctx := evaluation.NewContext("alice", evaluation.Attr("country", "US"))
//	res := rs.Evaluate("new-checkout", ctx)        // no allocation, no lock
//	res.VariationKey(), res.Reason, res.RuleIndex
//
// Evaluate allocates nothing and never panics; swap whole compiled rulesets (for example with an
// atomic.Pointer) to update.
package evaluation
