package rulesets

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// index is what a patch is computed from: every flag's and segment's JSON by key, in document
// order, sliced out of the served document (no copies).
type index struct {
	environment, generatedAt json.RawMessage
	flagKeys, segmentKeys    []string
	flags, segments          map[string]json.RawMessage
}

// indexOf indexes a decoded ruleset document; nil when a flag or segment has no readable key or
// a key appears twice (such a ruleset is only ever sent whole).
func indexOf(h *header) *index {
	x := &index{environment: h.Environment, generatedAt: h.GeneratedAt}
	var ok bool
	if x.flagKeys, x.flags, ok = byKey(h.Flags); !ok {
		return nil
	}
	if x.segmentKeys, x.segments, ok = byKey(h.Segments); !ok {
		return nil
	}
	return x
}

func byKey(items []json.RawMessage) ([]string, map[string]json.RawMessage, bool) {
	keys := make([]string, 0, len(items))
	m := make(map[string]json.RawMessage, len(items))
	for _, raw := range items {
		k := keyOf(raw)
		if k == "" {
			return nil, nil, false
		}
		if _, dup := m[k]; dup {
			return nil, nil, false
		}
		keys = append(keys, k)
		m[k] = raw
	}
	return keys, m, true
}

// keyOf reads the "key" of a flag or segment. The flag service writes it first, and keys are
// plain ASCII without escapes, so that is read directly; anything else is decoded.
func keyOf(raw json.RawMessage) string {
	const prefix = `{"key":"`
	if bytes.HasPrefix(raw, []byte(prefix)) {
		rest := raw[len(prefix):]
		if end := bytes.IndexByte(rest, '"'); end > 0 && !bytes.ContainsRune(rest[:end], '\\') {
			return string(rest[:end])
		}
	}
	var k struct {
		Key string `json:"key"`
	}
	if json.Unmarshal(raw, &k) != nil {
		return ""
	}
	return k.Key
}

// makePatch returns the patch event turning prev's ruleset into cur's (sdks/spec/PROTOCOL.md),
// or nil when either cannot be patched or the patch would not be smaller than cur's document.
func makePatch(prev, cur *Entry) []byte {
	if prev == nil || prev.index == nil || cur.index == nil || prev.EnvID != cur.EnvID || prev.Version >= cur.Version {
		return nil
	}
	a, b := prev.index, cur.index
	var buf bytes.Buffer
	buf.Grow(512)
	buf.WriteString(`{"schema_version":` + strconv.Itoa(ruleset.SchemaVersion) + `,"environment":`)
	buf.Write(b.environment)
	buf.WriteString(`,"version":`)
	buf.WriteString(strconv.FormatInt(cur.Version, 10))
	buf.WriteString(`,"base_version":`)
	buf.WriteString(strconv.FormatInt(prev.Version, 10))
	if len(b.generatedAt) > 0 {
		buf.WriteString(`,"generated_at":`)
		buf.Write(b.generatedAt)
	}
	writeChanges(&buf, "flags", a.flagKeys, a.flags, b.flagKeys, b.flags)
	writeChanges(&buf, "segments", a.segmentKeys, a.segments, b.segmentKeys, b.segments)
	buf.WriteByte('}')
	if buf.Len() >= len(cur.JSON) {
		return nil
	}
	return buf.Bytes()
}

// writeChanges writes `,"<what>":[changed or added, in document order],"deleted_<what>":[keys]`.
func writeChanges(buf *bytes.Buffer, what string, oldKeys []string, old map[string]json.RawMessage, newKeys []string, cur map[string]json.RawMessage) {
	buf.WriteString(`,"` + what + `":[`)
	n := 0
	for _, k := range newKeys {
		if o, ok := old[k]; ok && bytes.Equal(o, cur[k]) {
			continue
		}
		if n > 0 {
			buf.WriteByte(',')
		}
		buf.Write(cur[k])
		n++
	}
	buf.WriteString(`],"deleted_` + what + `":[`)
	n = 0
	for _, k := range oldKeys {
		if _, ok := cur[k]; ok {
			continue
		}
		if n > 0 {
			buf.WriteByte(',')
		}
		q, _ := json.Marshal(k)
		buf.Write(q)
		n++
	}
	buf.WriteByte(']')
}
