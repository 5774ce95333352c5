package rulesets

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/switchyard-io/switchyard/evalrelay/internal/relaytest"
)

// BenchmarkApplyToggle: the relay's work between receiving a new ruleset of an environment of
// 1,000 flags (~190 KB) in which one flag was toggled, and offering it to the streams — decoding
// the document's outline, the patch from the version it replaces, compiling through the patch.
// It is on the path of every change to every client (docs/benchmarks.md).
func BenchmarkApplyToggle(b *testing.B) {
	for _, n := range []int{1, 1000} {
		b.Run(fmt.Sprintf("flags=%d", n), func(b *testing.B) {
			docs := [2][]byte{}
			for i, on := range []bool{true, false} {
				rs := relaytest.Ruleset("env1", 1, on)
				for j := 0; j < n; j++ {
					f := rs.Flags[1]
					f.Key = fmt.Sprintf("pad-%d", j)
					rs.Flags = append(rs.Flags, f)
				}
				docs[i] = relaytest.JSON(rs)
			}
			s := New("")
			if _, err := s.Apply("env1", docs[0]); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(docs[0])))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// The same document with a newer version each time (the version is near the start).
				raw := withVersion(docs[(i+1)%2], int64(i+2))
				e, err := s.Apply("env1", raw)
				if err != nil {
					b.Fatal(err)
				}
				if e.Patch == nil {
					b.Fatal("no patch")
				}
			}
		})
	}
}

// withVersion rewrites the document's version textually (decoding it here would dominate).
func withVersion(doc []byte, v int64) []byte {
	const key = `"version":1,`
	i := bytes.Index(doc, []byte(key))
	if i < 0 {
		panic("no version 1 in the document")
	}
	out := make([]byte, 0, len(doc)+20)
	out = append(out, doc[:i]...)
	out = append(out, fmt.Sprintf(`"version":%d,`, v)...)
	return append(out, doc[i+len(key):]...)
}
