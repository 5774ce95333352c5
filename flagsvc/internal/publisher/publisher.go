package publisher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-io/switchyard/flagsvc/internal/store"
	"github.com/switchyard-io/switchyard/platform/kafka"
)

// leaderLockKey is the Postgres advisory lock that elects the one publishing replica, so
// records of an environment are produced in version order even with many flag services.
const leaderLockKey = 0x5377_5275_6c65 // "SwRule"

// Config configures a Publisher.
type Config struct {
	Topic string
	// Sweep is how often pending rows are looked for without a notification.
	Sweep time.Duration
	// Retry is the pause after a failed publish.
	Retry time.Duration
	// PruneAfter deletes published outbox rows older than this.
	PruneAfter time.Duration
}

// Publisher publishes rulesets from the outbox to Kafka.
type Publisher struct {
	cfg    Config
	store  *store.Store
	client *kgo.Client
	log    *slog.Logger
	now    func() time.Time

	published *prometheus.CounterVec
	latency   prometheus.Histogram
	pending   prometheus.Gauge
	leader    prometheus.Gauge
	// wake asks the publishing loop to look at the outbox now; leading is true while this
	// replica holds the leader lock.
	wake    chan struct{}
	leading atomic.Bool
	// Published is signalled (non-blocking) after every successful publish; tests use it.
	Published chan string
	// afterCompile runs between compiling a ruleset and producing it (AfterCompile).
	afterCompile atomic.Pointer[func(envID string)]
	// decodes spares compiling decoding the flags that did not change since the last compile.
	decodes store.FlagDecodes
	// topicID is the topic's id at the last look (zero: none yet); the publishing loop's own.
	topicID kadm.TopicID
}

// AfterCompile sets a function run after each ruleset is compiled and before it is produced
// (nil: none). Tests use it to commit a change in that window.
func (p *Publisher) AfterCompile(fn func(envID string)) {
	if fn == nil {
		p.afterCompile.Store(nil)
		return
	}
	p.afterCompile.Store(&fn)
}

// New returns a publisher producing with client (which must be configured for acks=all).
func New(cfg Config, st *store.Store, client *kgo.Client, log *slog.Logger, reg prometheus.Registerer) *Publisher {
	if cfg.Sweep == 0 {
		cfg.Sweep = 5 * time.Second
	}
	if cfg.Retry == 0 {
		cfg.Retry = time.Second
	}
	if cfg.PruneAfter == 0 {
		cfg.PruneAfter = 24 * time.Hour
	}
	p := &Publisher{
		cfg: cfg, store: st, client: client, log: log, now: time.Now,
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flagsvc_rulesets_published_total", Help: "Rulesets produced to Kafka, by outcome.",
		}, []string{"outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "flagsvc_ruleset_publish_latency_seconds",
			Help:    "Time from a change's commit to the broker's acknowledgement of the ruleset carrying it.",
			Buckets: []float64{.001, .0025, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
		pending:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "flagsvc_outbox_pending_environments", Help: "Environments with unpublished changes."}),
		leader:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "flagsvc_publisher_leader", Help: "1 when this replica is the publishing leader."}),
		Published: make(chan string, 1024),
		wake:      make(chan struct{}, 1),
	}
	if reg != nil {
		reg.MustRegister(p.published, p.latency, p.pending, p.leader)
	}
	return p
}

// ProducerOptions are the franz-go options the publisher needs: idempotent, acks=all,
// ordered, large records, zstd.
func ProducerOptions(brokers []string) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchMaxBytes(64 << 20),
		kgo.ProducerBatchCompression(kgo.ZstdCompression(), kgo.NoCompression()),
		kgo.RecordDeliveryTimeout(20 * time.Second),
		kgo.ProducerLinger(0),
	}
}

// Name implements lifecycle.Component.
func (p *Publisher) Name() string { return "ruleset publisher" }

// Leading reports whether this replica is the publishing leader now.
func (p *Publisher) Leading() bool { return p.leading.Load() }

// Run publishes until ctx is cancelled. It becomes leader (a Postgres advisory lock held on
// its own connection), republishes every environment, then follows the outbox.
func (p *Publisher) Run(ctx context.Context) error {
	if err := kafka.EnsureTopics(ctx, p.client, kafka.RulesetTopic(p.cfg.Topic)); err != nil {
		p.log.Warn("could not ensure the ruleset topic; will retry", "err", err)
	}
	go p.forwardBumps(ctx)
	for {
		err := p.lead(ctx)
		if ctx.Err() != nil {
			return nil
		}
		p.leader.Set(0)
		p.log.Warn("publisher lost its database session; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(p.cfg.Retry):
		}
	}
}

// lead holds one connection: it waits to become leader, then listens and publishes.
func (p *Publisher) lead(ctx context.Context) error {
	conn, err := p.store.Pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	for {
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, int64(leaderLockKey)).Scan(&ok); err != nil {
			return err
		}
		if ok {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(p.cfg.Sweep):
		}
	}
	defer func() {
		// Release the lock on a clean stop; a broken connection releases it by itself.
		uctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, _ = conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, int64(leaderLockKey))
	}()
	p.leader.Set(1)
	p.leading.Store(true)
	defer p.leading.Store(false)
	p.log.Info("publisher is leader")
	if _, err := conn.Exec(ctx, `LISTEN `+store.NotifyChannel); err != nil {
		return err
	}
	listenErr := make(chan error, 1)
	lctx, stopListening := context.WithCancel(ctx)
	listenDone := make(chan struct{})
	go func() {
		defer close(listenDone)
		p.listen(lctx, conn, listenErr)
	}()
	// Runs before the unlock above: the connection must be idle before it is used again.
	defer func() { stopListening(); <-listenDone }()

	sweep := time.NewTicker(p.cfg.Sweep)
	defer sweep.Stop()
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	// Every environment is republished when this replica becomes leader, and again whenever the
	// topic turns out to be a new one (deleted and created again: empty).
	st := round{checkTopic: true, republish: true}
	for {
		if err := p.publishRound(ctx, &st); err != nil && ctx.Err() == nil {
			p.log.Warn("publishing failed; will retry", "err", err)
			if errors.Is(err, kerr.UnknownTopicID) {
				// The topic was deleted and created again since this client learned its id: the
				// client keeps failing every produce to it until the topic is purged from it; and the
				// new topic is empty.
				p.client.PurgeTopicsFromClient(p.cfg.Topic)
				st.checkTopic, st.republish = true, true
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(p.cfg.Retry):
			}
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-listenErr:
			return err
		case <-p.wake:
		case <-sweep.C:
			st.checkTopic = true
		case <-prune.C:
			if n, err := p.store.PruneOutbox(ctx, p.now().Add(-p.cfg.PruneAfter)); err == nil && n > 0 {
				p.log.Info("pruned published outbox rows", "rows", n)
			}
		}
	}
}

// round is what the publishing loop still owes beyond the pending outbox rows.
type round struct {
	// checkTopic: compare the topic's id with the one last seen (a sweep, or a produce refused).
	checkTopic bool
	// republish: publish every environment, not only those with pending changes.
	republish bool
}

// publishRound does what st asks for, then publishes the pending changes. What it asked for is
// cleared once done, so a failure retries it in the next round.
func (p *Publisher) publishRound(ctx context.Context, st *round) error {
	if st.checkTopic {
		recreated, err := p.followTopic(ctx)
		if err != nil {
			// Not fatal to publishing: the next sweep looks again.
			p.log.Warn("could not look up the ruleset topic", "topic", p.cfg.Topic, "err", err)
		}
		st.checkTopic = false
		if recreated {
			st.republish = true
		}
	}
	// A republish that fails (Kafka down, an environment that does not compile) is owed to
	// the next round; the pending changes are published anyway.
	var rerr error
	if st.republish {
		if rerr = p.republishAll(ctx); rerr == nil {
			st.republish = false
		}
	}
	if err := p.publishPending(ctx); err != nil {
		return err
	}
	return rerr
}

// followTopic looks the topic up on the broker, creating it when it is missing (deleted: the
// broker does not create topics on its own), and reports whether its id changed since the last
// look (deleted and created again, so empty: every environment must be published again). On a
// change it purges the topic from the client, which otherwise keeps producing to the old id.
func (p *Publisher) followTopic(ctx context.Context) (recreated bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	adm := kadm.NewClient(p.client)
	lookUp := func() (kadm.TopicDetail, error) {
		topics, err := adm.ListTopics(ctx, p.cfg.Topic)
		if err != nil {
			return kadm.TopicDetail{}, err
		}
		d, ok := topics[p.cfg.Topic]
		if !ok {
			return kadm.TopicDetail{}, kerr.UnknownTopicOrPartition
		}
		return d, d.Err
	}
	d, err := lookUp()
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		p.log.Warn("the ruleset topic is missing; creating it", "topic", p.cfg.Topic)
		if err := kafka.EnsureTopics(ctx, p.client, kafka.RulesetTopic(p.cfg.Topic)); err != nil {
			return false, err
		}
		d, err = lookUp()
	}
	if err != nil {
		return false, err
	}
	prev := p.topicID
	p.topicID = d.ID
	if prev == (kadm.TopicID{}) || prev == d.ID {
		return false, nil
	}
	p.log.Warn("the ruleset topic was deleted and created again; republishing every environment to the new one",
		"topic", p.cfg.Topic, "old_id", prev.String(), "new_id", d.ID.String())
	p.client.PurgeTopicsFromClient(p.cfg.Topic)
	return true, nil
}

func (p *Publisher) listen(ctx context.Context, conn *pgxpool.Conn, errc chan<- error) {
	for {
		if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
			if ctx.Err() == nil {
				errc <- err
			}
			return
		}
		p.wakeUp()
	}
}

func (p *Publisher) wakeUp() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// forwardBumps passes this replica's committed changes to the leader: straight to the
// publishing loop when this replica leads (which takes them with Store.TakeBumped), else by
// NOTIFY (coalesced: one for all the commits made while the previous one was being sent). The
// sweep covers a lost notification.
func (p *Publisher) forwardBumps(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.store.Bumps():
		}
		if p.leading.Load() {
			p.wakeUp()
			continue
		}
		p.store.TakeBumped() // the leader reads them from the outbox
		if _, err := p.store.Pool.Exec(ctx, `SELECT pg_notify($1, '')`, store.NotifyChannel); err != nil && ctx.Err() == nil {
			p.log.Warn("could not notify the publishing leader; its sweep will publish the change", "err", err)
		}
	}
}

func (p *Publisher) republishAll(ctx context.Context) error {
	ids, err := p.store.AllEnvironmentIDs(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := p.publish(ctx, id); err != nil {
			return err
		}
	}
	p.log.Info("republished every environment", "environments", len(ids))
	return nil
}

// publishPending publishes the environments with unpublished changes: first those this replica
// committed (Store.TakeBumped), without waiting on the outbox read that would name them, then
// the ones the outbox still lists — changes other replicas committed, or a failed round left.
func (p *Publisher) publishPending(ctx context.Context) error {
	for _, id := range p.store.TakeBumped() {
		if err := p.publish(ctx, id); err != nil {
			return err
		}
	}
	pending, err := p.store.PendingOutbox(ctx)
	if err != nil {
		return err
	}
	p.pending.Set(float64(len(pending)))
	for _, id := range pending {
		if err := p.publish(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// publish compiles the environment's current ruleset, produces it and waits for the broker's
// acknowledgement, then marks done the outbox rows the compile saw (a change committed since
// stays pending and is published next).
func (p *Publisher) publish(ctx context.Context, envID string) error {
	c, err := compile(ctx, p.store, envID, p.now(), &p.decodes, true)
	if err != nil {
		return fmt.Errorf("compile ruleset of %s: %w", envID, err)
	}
	if hook := p.afterCompile.Load(); hook != nil {
		(*hook)(envID)
	}
	rec := &kgo.Record{Topic: p.cfg.Topic, Key: []byte(envID)}
	if c.found {
		if rec.Value, err = encode(c.rs, c.sources); err != nil {
			return err
		}
	} // else: a tombstone, so relays forget the deleted environment and compaction drops it.
	if err := p.client.ProduceSync(ctx, rec).FirstErr(); err != nil {
		p.published.WithLabelValues("error").Inc()
		if errors.Is(err, context.Canceled) {
			return err
		}
		return fmt.Errorf("produce ruleset of %s: %w", envID, err)
	}
	p.published.WithLabelValues("ok").Inc()
	if !c.oldestAt.IsZero() {
		p.latency.Observe(p.now().Sub(c.oldestAt).Seconds())
	}
	if err := p.store.MarkPublished(ctx, envID, c.pending, c.found); err != nil {
		return err
	}
	p.log.Debug("ruleset published", "environment", envID, "version", c.rs.Version, "bytes", len(rec.Value), "offset", rec.Offset)
	select {
	case p.Published <- envID:
	default:
	}
	return nil
}
