// Package switchyard is the Go SDK of Switchyard, the self-hostable feature-flag and
// experimentation platform. A Client keeps the latest ruleset of one environment in memory —
// streamed from an evaluation relay (the default), polled, read from a file, or set in code by
// TestData — and evaluates flags locally in well under a microsecond, without shared locks or
// network calls. It reports exposures, evaluation summaries and Track calls to the events collector.
//
//	client, err := switchyard.New(switchyard.Config{SDKKey: os.Getenv("SWITCHYARD_SDK_KEY")})
//	if err != nil && client == nil {
//		log.Fatal(err) // invalid configuration
//	}
//	defer client.Close()
//	ctx := switchyard.NewContext("user-123", switchyard.Attr("country", "US"))
//	if client.Bool(ctx, "new-checkout", false) {
//		// ...
//	}
//
// Evaluation semantics are defined in sdks/spec/EVALUATION.md and implemented by the evaluation
// package, which this package wraps; the relay protocol is sdks/spec/PROTOCOL.md.
package switchyard
