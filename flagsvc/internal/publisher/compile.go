// Package publisher compiles the ruleset of an environment from Postgres and publishes it to
// the compacted Kafka topic that relays consume: woken by LISTEN/NOTIFY on every committed
// change (transactional outbox), with a periodic sweep, one leader at a time, marking outbox
// rows done only after the broker acknowledged. It republishes every environment when it becomes
// leader and when the topic was deleted and created again (a new topic id: empty).
package publisher

import (
	"context"
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
	rs, found, _, err = compile(ctx, st, envID, now, nil)
	return rs, found, err
}

// compile is Compile that also returns the ids of the outbox rows the snapshot saw pending:
// the changes this ruleset carries. decodes (nil: none) keeps flags' decodings between compiles.
func compile(ctx context.Context, st *store.Store, envID string, now time.Time, decodes *store.FlagDecodes) (rs ruleset.Ruleset, found bool, pending []int64, err error) {
	err = st.Read(ctx, func(tx *store.Tx) error {
		src, err := tx.RulesetSources(ctx, envID, decodes)
		pending = src.PendingOutbox
		if errs.KindOf(err) == errs.KindNotFound {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		env := src.Env
		rs = ruleset.Ruleset{
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
		}
		for _, s := range src.Segments {
			m := src.Members[s.ID]
			rs.Segments = append(rs.Segments, ruleset.Segment{Key: s.Key, Version: s.Version, Included: m.Included, Excluded: m.Excluded, Rules: s.Rules})
		}
		for _, k := range src.SDKKeys {
			rs.SDKKeys = append(rs.SDKKeys, ruleset.SDKKey{Hash: "sha256:" + k.HashHex, Kind: k.Kind, ExpiresAt: k.ExpiresAt})
		}
		sort.Slice(rs.SDKKeys, func(i, j int) bool { return rs.SDKKeys[i].Hash < rs.SDKKeys[j].Hash })
		return nil
	})
	return rs, found, pending, err
}
