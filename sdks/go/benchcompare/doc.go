// Package benchcompare benchmarks Switchyard's evaluation against LaunchDarkly's Go server SDK
// (v7) and GrowthBook's Go SDK on equivalent flags, in one run on one machine. It is its own
// module, outside the go.work workspace, so those SDKs never become dependencies of anything
// Switchyard ships. Run it from this directory:
//
//	GOWORK=off go test -run '^$' -bench . -benchtime 1s -count 5 . | tee results.txt
//
// BENCHMARKS.md in the parent directory records the numbers.
package benchcompare
