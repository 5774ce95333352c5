// Package publisher compiles the ruleset of an environment from Postgres and publishes it to
// the compacted Kafka topic that relays consume: woken by LISTEN/NOTIFY on every committed
// change (transactional outbox), with a periodic sweep, one leader at a time, marking outbox
// rows done only after the broker acknowledged. It republishes every environment when it becomes
// leader and when the topic was deleted and created again (a new topic id: empty).
package publisher

import (
	"bytes"
	"context"
	"encoding/json"
	"sort"
	"time"

	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
	"github.com/switchyard-io/switchyard/flagsvc/internal/store"
	"github.com/switchyard-io/switchyard/platform/errs"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// Compile builds the ruleset of an environment from one consistent snapshot. It returns
// found=false when the environment no longer exists.
func Compile(ctx context.Context, st *store.Store, envID string, now time.Time) (rs ruleset.Ruleset, found bool, err error) {
	c, err := compile(ctx, st, envID, now, nil, false)
	return c.rs, c.found, err
}

// flagSource is what a ruleset's flag was made from, for encoding it (encode).
type flagSource struct {
	flag    *domain.Flag
	version int64 // of its configuration
	json    *store.FlagJSON
}

// compiled is a compiled ruleset with what publishing it needs.
type compiled struct {
	rs    ruleset.Ruleset
	found bool // false: the environment no longer exists
	// sources are what each of rs.Flags was made from (encode).
	sources []flagSource
	// pending are the outbox rows the snapshot saw: the changes this ruleset carries; oldestAt
	// is when the oldest of them was committed (zero: none).
	pending  []int64
	oldestAt time.Time
}

// compile is Compile with what publishing needs; forPublish also takes the ruleset's version
// (rs.Version) in the same round trip as the reads. decodes (nil: none) keeps flags' decodings,
// and their encodings, between compiles. An environment deleted between the reads and the
// version is compiled as gone.
func compile(ctx context.Context, st *store.Store, envID string, now time.Time, decodes *store.FlagDecodes, forPublish bool) (compiled, error) {
	read := st.RulesetSources
	if forPublish {
		read = st.PublishSources
	}
	src, err := read(ctx, envID, decodes)
	c := compiled{pending: src.PendingOutbox, oldestAt: src.OldestPendingAt}
	if errs.KindOf(err) == errs.KindNotFound || (err == nil && forPublish && src.Version == 0) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	env := src.Env
	rs := ruleset.Ruleset{
		Version:       src.Version,
		SchemaVersion: ruleset.SchemaVersion,
		Environment: ruleset.Environment{ID: env.ID, Key: env.Key, Name: env.Name, ProjectID: env.ProjectID,
			ProjectKey: env.ProjectKey},
		GeneratedAt: now.UTC(),
		Flags:       []ruleset.Flag{},
		Segments:    []ruleset.Segment{},
	}
	for i := range src.Flags {
		if src.Flags[i].Lifecycle == domain.LifecycleArchived {
			continue
		}
		rs.Flags = append(rs.Flags, domain.RulesetFlag(&src.Flags[i], &src.Configs[i], src.Versions[i]))
		c.sources = append(c.sources, flagSource{flag: &src.Flags[i], version: src.Versions[i], json: src.FlagJSON[i]})
	}
	for _, s := range src.Segments {
		m := src.Members[s.ID]
		rs.Segments = append(rs.Segments, ruleset.Segment{Key: s.Key, Version: s.Version, Included: m.Included, Excluded: m.Excluded, Rules: s.Rules})
	}
	for _, k := range src.SDKKeys {
		rs.SDKKeys = append(rs.SDKKeys, ruleset.SDKKey{Hash: "sha256:" + k.HashHex, Kind: k.Kind, ExpiresAt: k.ExpiresAt})
	}
	sort.Slice(rs.SDKKeys, func(i, j int) bool { return rs.SDKKeys[i].Hash < rs.SDKKeys[j].Hash })
	c.rs, c.found = rs, true
	return c, nil
}

// encode returns json.Marshal(rs), byte for byte, taking each flag's JSON from what its
// encoding was last time when the flag has not changed since (store.FlagJSON), and encoding and
// keeping it otherwise: publishing a large environment encodes only the flags that changed.
// sources are what rs.Flags were made from, in the same order.
func encode(rs ruleset.Ruleset, sources []flagSource) ([]byte, error) {
	if len(sources) != len(rs.Flags) {
		return json.Marshal(rs)
	}
	rest := rs
	rest.Flags = []ruleset.Flag{}
	head, err := json.Marshal(rest)
	if err != nil {
		return nil, err
	}
	// The top-level field: the fields before it are numbers, strings and an object of strings,
	// and no JSON string can hold `"flags":[` unescaped.
	const open = `"flags":[`
	at := bytes.Index(head, []byte(open+`]`))
	if at < 0 {
		return json.Marshal(rs)
	}
	at += len(open)
	parts, n := make([][]byte, len(rs.Flags)), len(head)+len(rs.Flags)
	for i, s := range sources {
		b, ok := s.json.Get(s.flag, s.version)
		if !ok {
			if b, err = json.Marshal(rs.Flags[i]); err != nil {
				return nil, err
			}
			s.json.Set(s.flag, s.version, b)
		}
		parts[i], n = b, n+len(b)
	}
	out := append(make([]byte, 0, n), head[:at]...)
	for i, b := range parts {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, b...)
	}
	return append(out, head[at:]...), nil
}
