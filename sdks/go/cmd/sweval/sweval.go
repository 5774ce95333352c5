package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/switchyard-io/switchyard/sdks/go/evaluation"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// request is one input line. type and default are optional: type is the kind the caller asks for
// (TYPE_MISMATCH when the flag has another), default the fallback value served on errors.
type request struct {
	Flag    string          `json:"flag"`
	Context json.RawMessage `json:"context"`
	Type    string          `json:"type,omitempty"`
	Default json.RawMessage `json:"default,omitempty"`
}

// response is one output line; field order is fixed so outputs of two SDKs can be diffed.
type response struct {
	Flag          string          `json:"flag"`
	Value         json.RawMessage `json:"value"`
	Variation     *string         `json:"variation"`
	Reason        string          `json:"reason"`
	ErrorCode     string          `json:"error_code,omitempty"`
	RuleIndex     *int            `json:"rule_index,omitempty"`
	RuleID        string          `json:"rule_id,omitempty"`
	ExperimentKey string          `json:"experiment_key,omitempty"`
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sweval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("ruleset", "", "ruleset JSON file (sdks/spec/ruleset.schema.json)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "sweval: --ruleset is required")
		return 2
	}
	data, err := os.ReadFile(*path)
	if err != nil {
		fmt.Fprintln(stderr, "sweval:", err)
		return 1
	}
	rs, err := evaluation.CompileJSON(data)
	if err != nil {
		fmt.Fprintln(stderr, "sweval:", err)
		return 1
	}
	in := bufio.NewScanner(stdin)
	in.Buffer(make([]byte, 64<<10), 64<<20)
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	for in.Scan() {
		line := in.Bytes()
		if len(line) == 0 {
			continue
		}
		if err := enc.Encode(evaluate(rs, line)); err != nil {
			fmt.Fprintln(stderr, "sweval:", err)
			return 1
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(stderr, "sweval:", err)
		return 1
	}
	return 0
}

// evaluate answers one request line; a line that is not a request gets an ERROR/GENERAL answer,
// so that output lines always match input lines.
func evaluate(rs *evaluation.Ruleset, line []byte) response {
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		return response{Value: json.RawMessage("null"), Reason: string(evaluation.ReasonError), ErrorCode: string(evaluation.ErrorGeneral)}
	}
	ctx, _ := evaluation.ParseContext(req.Context)
	res := rs.EvaluateKind(req.Flag, ctx, ruleset.FlagKind(req.Type))
	resp := response{Flag: req.Flag, Reason: string(res.Reason), ErrorCode: string(res.ErrorCode), RuleID: res.RuleID(), ExperimentKey: res.ExperimentKey()}
	if res.Variation != nil {
		key := res.Variation.Key
		resp.Variation = &key
		resp.Value = res.Variation.Value
	} else if len(req.Default) > 0 {
		resp.Value = req.Default
	} else {
		resp.Value = json.RawMessage("null")
	}
	if res.RuleIndex >= 0 {
		i := res.RuleIndex
		resp.RuleIndex = &i
	}
	return resp
}
