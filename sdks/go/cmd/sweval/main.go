// Command sweval is the Go SDK's conformance evaluator: it evaluates JSON-lines requests against a
// ruleset file and prints one JSON line per request. Every Switchyard SDK ships the same command,
// so any two SDKs can be compared on random inputs (sdks/spec/README.md, "sweval").
//
//	sweval --ruleset ruleset.json < requests.jsonl > results.jsonl
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
