// Package feed keeps a relay's rulesets current from the compacted Kafka topic: it reads the
// topic from the beginning (every relay reads every partition; relays never coordinate),
// applies each record to the store, and tracks whether the relay has caught up and whether
// the broker is reachable — serving from the disk cache, marked stale, when it is not.
package feed

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"maps"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-io/switchyard/evalrelay/internal/rulesets"
	"github.com/switchyard-io/switchyard/platform/kafka"
)

// Config configures a Feed.
type Config struct {
	Brokers []string
	Topic   string
	// Probe is how often the broker's reachability is checked (staleness).
	Probe time.Duration
}

// Feed consumes rulesets into a store.
type Feed struct {
	cfg   Config
	store *rulesets.Store
	log   *slog.Logger

	caughtUp atomic.Bool
	applied  *prometheus.CounterVec

	posMu sync.Mutex
	pos   map[int32]int64 // next offset to consume, per partition
	// seen holds the environments the topic has records of, until the feed has caught up.
	seen map[string]bool
}

// New returns a feed; reg may be nil.
func New(cfg Config, store *rulesets.Store, log *slog.Logger, reg prometheus.Registerer) *Feed {
	if cfg.Probe == 0 {
		cfg.Probe = 3 * time.Second
	}
	f := &Feed{cfg: cfg, store: store, log: log, pos: map[int32]int64{}, seen: map[string]bool{},
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evalrelay_ruleset_records_total", Help: "Ruleset records consumed, by outcome (applied, stale, rejected, deleted).",
		}, []string{"outcome"})}
	if reg != nil {
		reg.MustRegister(f.applied)
	}
	return f
}

// CaughtUp reports whether the feed has read the topic up to where it ended at start-up.
func (f *Feed) CaughtUp() bool { return f.caughtUp.Load() }

// Name implements lifecycle.Component.
func (f *Feed) Name() string { return "ruleset feed" }

// Run consumes until ctx is cancelled.
func (f *Feed) Run(ctx context.Context) error {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(f.cfg.Brokers...),
		kgo.ConsumeTopics(f.cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(128<<20),
		kgo.BrokerMaxReadBytes(256<<20),
		kgo.FetchMaxPartitionBytes(64<<20),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.MetadataMinAge(time.Second),
		kgo.MetadataMaxAge(10*time.Second),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	// Create the topic if the flag service has not yet, so consumption starts at once (a
	// consumer of a missing topic only notices it at its next metadata refresh).
	ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
	if err := kafka.EnsureTopics(ectx, cl, kafka.RulesetTopic(f.cfg.Topic)); err != nil {
		f.log.Warn("could not ensure the rulesets topic", "err", err)
	}
	cancel()
	go f.watch(ctx, cl)
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		recreated := false
		fetches.EachError(func(topic string, p int32, err error) {
			if errors.Is(err, kerr.UnknownTopicID) {
				recreated = true
			}
			if !errors.Is(err, context.Canceled) {
				f.log.Debug("fetch error", "topic", topic, "partition", p, "err", err)
			}
		})
		f.consume(fetches)
		if recreated {
			// The topic was deleted and created again (a rebuilt cluster, a topic recreated by
			// hand): the client keeps the old topic's id, and every fetch fails at once, for
			// ever, until the topic is dropped from the client and added again — which reads
			// the new topic from its start.
			f.log.Warn("the ruleset topic was deleted and created again; reading the new one from its start", "topic", f.cfg.Topic)
			cl.PurgeTopicsFromClient(f.cfg.Topic)
			cl.AddConsumeTopics(f.cfg.Topic)
		}
	}
}

// consume applies one fetch's records. Within a fetch only the newest version of each
// environment matters: skipping the others makes catching up with a long (not yet compacted)
// topic cheap. The newest version is not always the last record — a lagging publisher can
// write an older version after a newer one — so the records are tried from the highest version
// down (the lower ones are stale, as they would be read one at a time), and one that is
// malformed gives way to the next. A tombstone deletes what came before it.
//
// The positions move past the fetch only once its records are applied: the feed has caught up
// (readiness, and forgetting the environments the topic no longer has) when the positions reach
// the topic's end, and by then every record up to it must be served.
func (f *Feed) consume(fetches kgo.Fetches) {
	var order []string
	byKey := map[string][]*kgo.Record{}
	next := map[int32]int64{}
	fetches.EachRecord(func(r *kgo.Record) {
		k := string(r.Key)
		if _, seen := byKey[k]; !seen {
			order = append(order, k)
		}
		byKey[k] = append(byKey[k], r)
		next[r.Partition] = r.Offset + 1
	})
	for _, k := range order {
		tombstone, live := newestFirst(byKey[k])
		if tombstone != nil {
			_ = f.apply(tombstone)
		}
		for _, r := range live {
			if !errors.Is(f.apply(r), rulesets.ErrMalformed) {
				break
			}
		}
	}
	f.posMu.Lock()
	defer f.posMu.Unlock()
	for p, o := range next {
		f.pos[p] = o
	}
	if f.seen != nil {
		for _, k := range order {
			f.seen[k] = true
		}
	}
}

// newestFirst splits one environment's records of a fetch (in offset order) into the last
// tombstone, if any, and the records after it from the highest version down (the later first
// among equal versions; those whose version cannot be read last).
func newestFirst(recs []*kgo.Record) (tombstone *kgo.Record, live []*kgo.Record) {
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Value == nil {
			tombstone, recs = recs[i], recs[i+1:]
			break
		}
	}
	live = make([]*kgo.Record, len(recs))
	versions := make(map[*kgo.Record]int64, len(recs))
	for i, r := range recs {
		live[len(recs)-1-i] = r
		versions[r] = math.MinInt64
		if v, ok := rulesets.PeekVersion(r.Value); ok {
			versions[r] = v
		}
	}
	slices.SortStableFunc(live, func(a, b *kgo.Record) int { return cmp.Compare(versions[b], versions[a]) })
	return tombstone, live
}

func (f *Feed) apply(r *kgo.Record) error {
	env := string(r.Key)
	e, err := f.store.Apply(env, r.Value)
	switch {
	case r.Value == nil:
		f.applied.WithLabelValues("deleted").Inc()
		f.log.Info("environment deleted", "environment", env)
	case errors.Is(err, rulesets.ErrStale):
		f.applied.WithLabelValues("stale").Inc()
	case errors.Is(err, rulesets.ErrMalformed):
		f.applied.WithLabelValues("rejected").Inc()
		f.log.Warn("malformed ruleset rejected; keeping the previous one", "environment", env, "offset", r.Offset, "err", err)
	case err != nil:
		f.log.Warn("ruleset not applied", "environment", env, "err", err)
	default:
		f.applied.WithLabelValues("applied").Inc()
		f.log.Debug("ruleset applied", "environment", env, "version", e.Version)
	}
	return err
}

// watch probes the broker: unreachable means stale; it also decides when the feed caught up
// (the consumer's position reached the end offsets listed when the broker first answered).
// Staleness clears the same way: when the broker answers again after an outage, the relay is
// still stale until the consumer has read up to the end offsets of that answer — the records
// published during the outage — so it never says fresh while serving a ruleset Kafka replaced.
func (f *Feed) watch(ctx context.Context, cl *kgo.Client) {
	adm := kadm.NewClient(cl)
	var target, recovery kadm.ListedOffsets
	t := time.NewTicker(f.cfg.Probe)
	defer t.Stop()
	for {
		// The positions before the listing: a position past an end listed after it is not a
		// record appended in between, but a log that is gone (see beyond).
		read := f.positions()
		pctx, cancel := context.WithTimeout(ctx, f.cfg.Probe)
		ends, err := adm.ListEndOffsets(pctx, f.cfg.Topic)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil || ends.Error() != nil {
			if !f.store.Stale() {
				f.log.Warn("Kafka unreachable; serving the last rulesets, marked stale", "err", firstErr(err, ends.Error()))
			}
			f.store.SetStale(true)
			recovery = nil // the next answer lists the ends to read up to
		} else {
			if target == nil {
				target = ends
			}
			if !f.caughtUp.Load() && f.reached(target) {
				f.forgetUnseen()
				f.caughtUp.Store(true)
				f.log.Info("caught up with the ruleset topic", "environments", len(f.store.Entries()))
			}
			if f.caughtUp.Load() && f.store.Stale() {
				if recovery == nil {
					recovery = ends
				}
				if f.reached(recovery) && !beyond(read, ends) {
					f.log.Info("Kafka reachable again and read to its end; rulesets are current")
					f.store.SetStale(false)
					recovery = nil
				}
			}
		}
		wait := f.cfg.Probe
		if !f.caughtUp.Load() || recovery != nil {
			wait = 50 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		case <-t.C:
		}
	}
}

// forgetUnseen drops the environments loaded from disk that the topic, read to its end, has no
// record of. An empty topic is not evidence of anything (a new or wiped cluster, which the flag
// service will fill again), so then the disk copies stay.
func (f *Feed) forgetUnseen() {
	f.posMu.Lock()
	seen := f.seen
	f.seen = nil
	f.posMu.Unlock()
	if len(seen) == 0 {
		return
	}
	if gone := f.store.Forget(seen); len(gone) > 0 {
		f.applied.WithLabelValues("deleted").Add(float64(len(gone)))
		f.log.Info("forgot environments the ruleset topic no longer has (deleted while this relay was down)", "environments", gone)
	}
}

// reached reports whether the consumer has consumed up to the target end offsets.
func (f *Feed) reached(target kadm.ListedOffsets) bool {
	f.posMu.Lock()
	defer f.posMu.Unlock()
	ok := true
	target.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 && f.pos[o.Partition] < o.Offset {
			ok = false
		}
	})
	return ok
}

// positions copies the consumer's positions.
func (f *Feed) positions() map[int32]int64 {
	f.posMu.Lock()
	defer f.posMu.Unlock()
	return maps.Clone(f.pos)
}

// beyond reports whether a position read before ends were listed is past a partition's end:
// the log the consumer read is gone (the topic was deleted and created again, or the broker
// lost data while unreachable). Until the consumer has started over on the log Kafka now has
// (its reset offset) and read it to the end, positions say nothing of what was read of it. An
// empty partition has nothing to read (as in reached).
func beyond(read map[int32]int64, ends kadm.ListedOffsets) bool {
	out := false
	ends.Each(func(o kadm.ListedOffset) {
		if p, ok := read[o.Partition]; ok && o.Offset > 0 && p > o.Offset {
			out = true
		}
	})
	return out
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
