// Package keys authenticates SDK keys for the collector. It consumes the compacted rulesets
// topic from the beginning, keeps the newest ruleset of every environment, and maps each SDK
// key hash ("sha256:<hex>") to its environment and kind. The environment of an event always
// comes from here, never from the request body.
package keys

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// Key is what an authenticated SDK key grants.
type Key struct {
	// Hash is the key's "sha256:<hex>" form; it identifies the key in logs and rate limits.
	Hash          string
	EnvironmentID string
	Kind          ruleset.KeyKind
	ExpiresAt     *time.Time
}

// ErrUnknownKey is returned by Lookup for a key that no current ruleset lists.
var ErrUnknownKey = errors.New("unknown SDK key")

// ErrExpiredKey is returned by Lookup for a rotated key whose grace period is over.
var ErrExpiredKey = errors.New("SDK key expired")

// Hash returns the "sha256:<hex>" form of an SDK key, as rulesets list it.
func Hash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Ring is the current set of SDK keys. It is safe for concurrent use.
type Ring struct {
	mu     sync.RWMutex
	byHash map[string]Key
	envs   map[string]envKeys
	ready  atomic.Bool
	now    func() time.Time
}

type envKeys struct {
	version int64
	hashes  []string
}

// NewRing returns an empty ring; now is the clock used for key expiry (time.Now when nil).
func NewRing(now func() time.Time) *Ring {
	if now == nil {
		now = time.Now
	}
	return &Ring{byHash: map[string]Key{}, envs: map[string]envKeys{}, now: now}
}

// Lookup authenticates a raw SDK key.
func (r *Ring) Lookup(key string) (Key, error) {
	h := Hash(key)
	r.mu.RLock()
	k, ok := r.byHash[h]
	r.mu.RUnlock()
	if !ok {
		return Key{}, ErrUnknownKey
	}
	if k.ExpiresAt != nil && !r.now().Before(*k.ExpiresAt) {
		return Key{}, ErrExpiredKey
	}
	return k, nil
}

// Ready reports whether the ring has caught up with the rulesets topic as it was at start-up.
func (r *Ring) Ready() bool { return r.ready.Load() }

// rulesetKeys is the part of a ruleset the collector needs; flags and segments are skipped.
type rulesetKeys struct {
	Environment ruleset.Environment `json:"environment"`
	Version     int64               `json:"version"`
	SDKKeys     []ruleset.SDKKey    `json:"sdk_keys"`
}

// Apply applies one record of the rulesets topic: a ruleset replaces its environment's keys
// unless it is older than the one held; an empty value (a tombstone) removes the environment.
func (r *Ring) Apply(recordKey, value []byte) error {
	if len(value) == 0 {
		r.replace(string(recordKey), envKeys{}, nil, true)
		return nil
	}
	var rs rulesetKeys
	if err := json.Unmarshal(value, &rs); err != nil {
		return fmt.Errorf("keys: decode ruleset %q: %w", recordKey, err)
	}
	env := rs.Environment.ID
	if env == "" {
		env = string(recordKey)
	}
	if env == "" {
		return errors.New("keys: ruleset without environment id")
	}
	keys := make([]Key, 0, len(rs.SDKKeys))
	for _, k := range rs.SDKKeys {
		if !strings.HasPrefix(k.Hash, "sha256:") || (k.Kind != ruleset.KeyServer && k.Kind != ruleset.KeyClient) {
			continue
		}
		keys = append(keys, Key{Hash: strings.ToLower(k.Hash), EnvironmentID: env, Kind: k.Kind, ExpiresAt: k.ExpiresAt})
	}
	r.replace(env, envKeys{version: rs.Version}, keys, false)
	return nil
}

func (r *Ring) replace(env string, state envKeys, keys []Key, tombstone bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, had := r.envs[env]
	if had && !tombstone && state.version < old.version {
		return // an older ruleset republished out of order
	}
	for _, h := range old.hashes {
		if k, ok := r.byHash[h]; ok && k.EnvironmentID == env {
			delete(r.byHash, h)
		}
	}
	if tombstone {
		delete(r.envs, env)
		return
	}
	for _, k := range keys {
		r.byHash[k.Hash] = k
		state.hashes = append(state.hashes, k.Hash)
	}
	r.envs[env] = state
}

// Consumer keeps a Ring up to date from the rulesets topic. It is a lifecycle component.
type Consumer struct {
	Ring    *Ring
	Brokers []string
	Topic   string
	Log     *slog.Logger
	// CatchUpTimeout marks the ring ready even if the end offsets seen at start-up were not
	// reached (a compacted-away tail), after logging a warning. Default 30 s.
	CatchUpTimeout time.Duration
}

// Name implements lifecycle.Component.
func (c *Consumer) Name() string { return "sdk-keys " + c.Topic }

// Run consumes the topic from the beginning until ctx is cancelled.
func (c *Consumer) Run(ctx context.Context) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Brokers...), kgo.ConsumeTopics(c.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	pending, err := c.endOffsets(ctx, cl)
	if err != nil {
		return err
	}
	timeout := c.CatchUpTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	deadline := time.Now().Add(timeout)
	if len(pending) == 0 {
		c.Ring.ready.Store(true)
	}
	for {
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if !c.Ring.Ready() {
			pctx, cancel = context.WithDeadline(ctx, deadline)
		}
		fetches := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				c.Log.Warn("rulesets fetch error", "topic", t, "partition", p, "err", err)
			}
		})
		fetches.EachRecord(func(rec *kgo.Record) {
			if err := c.Ring.Apply(rec.Key, rec.Value); err != nil {
				c.Log.Warn("skipping ruleset record", "offset", rec.Offset, "err", err)
			}
			if end, ok := pending[rec.Partition]; ok && rec.Offset+1 >= end {
				delete(pending, rec.Partition)
			}
		})
		if !c.Ring.Ready() && (len(pending) == 0 || time.Now().After(deadline)) {
			if len(pending) > 0 {
				c.Log.Warn("rulesets: end offsets not reached; serving with what was read", "partitions", len(pending))
			}
			c.Ring.ready.Store(true)
			c.Log.Info("sdk keys loaded from rulesets topic")
		}
	}
}

// endOffsets returns, per non-empty partition, the end offset to reach before being ready.
func (c *Consumer) endOffsets(ctx context.Context, cl *kgo.Client) (map[int32]int64, error) {
	adm := kadm.NewClient(cl)
	for {
		ends, err := adm.ListEndOffsets(ctx, c.Topic)
		if err == nil {
			err = ends.Error()
		}
		var starts kadm.ListedOffsets
		if err == nil {
			starts, err = adm.ListStartOffsets(ctx, c.Topic)
			if err == nil {
				err = starts.Error()
			}
		}
		if err == nil {
			out := map[int32]int64{}
			ends.Each(func(o kadm.ListedOffset) {
				if s, ok := starts.Lookup(o.Topic, o.Partition); ok && s.Offset < o.Offset {
					out[o.Partition] = o.Offset
				}
			})
			return out, nil
		}
		c.Log.Warn("rulesets: listing offsets failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
