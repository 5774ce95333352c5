package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-io/switchyard/flagsvc/internal/publisher"
	"github.com/switchyard-io/switchyard/flagsvc/internal/store"
	"github.com/switchyard-io/switchyard/platform/testenv"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

func sha(key string) string {
	h := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(h[:])
}

func envID(t testing.TB, s *stack, project, env string) string {
	t.Helper()
	var id string
	if err := s.app.Store.Pool.QueryRow(context.Background(), `SELECT e.id FROM environments e JOIN projects p ON p.id = e.project_id
		WHERE p.key = $1 AND e.key = $2`, project, env).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// compile builds an environment's ruleset as the publisher would.
func compile(s *stack, project, env string) (ruleset.Ruleset, bool, error) {
	return publisher.Compile(context.Background(), s.app.Store, envID(s.t, s, project, env), time.Now())
}

// rulesetConsumer reads the stack's ruleset topic from the beginning with a real consumer.
type rulesetConsumer struct {
	t  testing.TB
	cl *kgo.Client
	// raw is the record value of the last ruleset next returned.
	raw []byte
}

func consume(t testing.TB, s *stack) *rulesetConsumer {
	return &rulesetConsumer{t: t, cl: testenv.KafkaClient(t, kgo.ConsumeTopics(s.topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))}
}

// next returns the next ruleset of the environment (nil for a tombstone), skipping others.
func (c *rulesetConsumer) next(env string, timeout time.Duration) (*ruleset.Ruleset, bool) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		fetches := c.cl.PollRecords(ctx, 1)
		if ctx.Err() != nil {
			return nil, false
		}
		for _, err := range fetches.Errors() {
			if ctx.Err() == nil {
				c.t.Logf("fetch error (retrying): %v", err.Err)
			}
		}
		for _, rec := range fetches.Records() {
			if string(rec.Key) != env {
				continue
			}
			if rec.Value == nil {
				return nil, true
			}
			var rs ruleset.Ruleset
			if err := json.Unmarshal(rec.Value, &rs); err != nil {
				c.t.Fatalf("ruleset is not JSON: %v", err)
			}
			c.raw = rec.Value
			return &rs, true
		}
	}
}

// until reads rulesets of env until cond holds, returning every one read (in order).
func (c *rulesetConsumer) until(env string, timeout time.Duration, cond func(*ruleset.Ruleset) bool) []*ruleset.Ruleset {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var seen []*ruleset.Ruleset
	for {
		rs, ok := c.next(env, time.Until(deadline))
		if !ok {
			c.t.Fatalf("timed out after %s waiting for a ruleset of %s (read %d)", timeout, env, len(seen))
		}
		seen = append(seen, rs)
		if rs != nil && cond(rs) {
			return seen
		}
	}
}

// TestChangePublishedToKafka: a change through the API arrives on the topic with a higher
// version and the new content; deleting an environment publishes a tombstone.
func TestChangePublishedToKafka(t *testing.T) {
	s := newStack(t)
	s.project("shop")
	s.boolFlag("shop", "checkout")
	env := envID(t, s, "shop", "production")
	c := consume(t, s)
	first := c.until(env, 30*time.Second, func(rs *ruleset.Ruleset) bool { return rs.Flag("checkout") != nil })
	v0 := first[len(first)-1].Version
	s.must(200, "PUT", configPath("shop", "checkout", "production"), map[string]any{"on": true, "fallthrough": rollout(10000, 90000)}, nil)
	got := c.until(env, 30*time.Second, func(rs *ruleset.Ruleset) bool { return rs.Flag("checkout").On })
	last := got[len(got)-1]
	if last.Version <= v0 {
		t.Fatalf("version did not increase: %d then %d", v0, last.Version)
	}
	f := last.Flag("checkout")
	if f.Fallthrough.Rollout == nil || f.Fallthrough.Rollout.Variations[0].Weight != 10000 || last.Environment.Key != "production" || last.Environment.ProjectKey != "shop" {
		t.Fatalf("published content: %+v", f)
	}
	if errs := last.Validate(); len(errs) > 0 {
		t.Fatalf("published ruleset fails validation: %v", errs)
	}
	// Archived flags leave the ruleset.
	s.must(200, "PATCH", "/api/v1/projects/shop/flags/checkout", map[string]any{"lifecycle": "archived"}, nil)
	c.until(env, 30*time.Second, func(rs *ruleset.Ruleset) bool { return rs.Flag("checkout") == nil })
	// Deleting an environment publishes a tombstone, so relays forget it.
	staging := envID(t, s, "shop", "staging")
	s.must(204, "DELETE", "/api/v1/projects/shop/environments/staging", nil, nil)
	for {
		rs, ok := c.next(staging, 30*time.Second)
		if !ok {
			t.Fatal("no tombstone for the deleted environment")
		}
		if rs == nil {
			break
		}
	}
}

// TestFollowerWakesTheLeader: a change made through a replica that does not lead the
// publishing reaches the topic without waiting for a sweep — the leader's is an hour, so only
// the follower's NOTIFY can have woken it.
func TestFollowerWakesTheLeader(t *testing.T) {
	leader := newStackWith(t, stackOptions{sweep: time.Hour})
	deadline := time.Now().Add(30 * time.Second)
	for !leader.app.Publisher.Leading() {
		if time.Now().After(deadline) {
			t.Fatal("the first replica never became the publishing leader")
		}
		time.Sleep(10 * time.Millisecond)
	}
	follower := newStackWith(t, stackOptions{replicaOf: leader, sweep: time.Hour})
	leader.project("shop")
	leader.boolFlag("shop", "checkout")
	env := envID(t, leader, "shop", "development")
	c := consume(t, leader)
	c.until(env, 30*time.Second, func(rs *ruleset.Ruleset) bool { return rs.Flag("checkout") != nil })
	if follower.app.Publisher.Leading() {
		t.Fatal("the second replica leads too")
	}
	follower.must(200, "POST", configPath("shop", "checkout", "development")+"/toggle", map[string]any{"on": true}, nil)
	c.until(env, 30*time.Second, func(rs *ruleset.Ruleset) bool { return rs.Flag("checkout").On })
}

// TestPublisherCatchesUpAfterKafkaOutage stops the real broker, makes three changes (they
// commit), starts the broker, and expects the rulesets to arrive in version order with the
// final state last.
func TestPublisherCatchesUpAfterKafkaOutage(t *testing.T) {
	s := newStack(t)
	s.project("shop")
	s.boolFlag("shop", "checkout")
	env := envID(t, s, "shop", "development")
	c := consume(t, s)
	c.until(env, 30*time.Second, func(rs *ruleset.Ruleset) bool { return rs.Flag("checkout") != nil })

	kafka := kafkaScript(t)
	run := func(arg string) {
		t.Helper()
		out, err := exec.Command(kafka, arg).CombinedOutput()
		if err != nil {
			t.Fatalf("kafka.sh %s: %v\n%s", arg, err, out)
		}
	}
	run("stop")
	t.Cleanup(func() { _ = exec.Command(kafka, "start").Run() })
	p := configPath("shop", "checkout", "development")
	s.must(200, "POST", p+"/toggle", map[string]any{"on": true, "comment": "one"}, nil)
	s.must(200, "PUT", p, map[string]any{"on": true, "fallthrough": rollout(25000, 75000), "comment": "two"}, nil)
	s.must(200, "PUT", p, map[string]any{"on": true, "fallthrough": rollout(50000, 50000), "comment": "three"}, nil)
	var pending int
	if err := s.app.Store.Pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox WHERE published_at IS NULL AND environment_id = $1`, env).Scan(&pending); err != nil || pending < 3 {
		t.Fatalf("changes while Kafka is down should wait in the outbox: %d pending (%v)", pending, err)
	}
	run("start")
	got := c.until(env, 90*time.Second, func(rs *ruleset.Ruleset) bool {
		r := rs.Flag("checkout").Fallthrough.Rollout
		return r != nil && r.Variations[0].Weight == 50000
	})
	testenv.Eventually(t, 30*time.Second, "outbox drained", func() bool {
		var n int
		_ = s.app.Store.Pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox WHERE published_at IS NULL`).Scan(&n)
		return n == 0
	})
	var newest int64
	if err := s.app.Store.Pool.QueryRow(context.Background(), `SELECT version FROM published_rulesets WHERE environment_id = $1`, env).Scan(&newest); err != nil {
		t.Fatal(err)
	}
	// A produce that timed out during the outage may still have been delivered, and then been
	// published again under a newer version: read up to the newest one. Every record from the
	// first with the final state on carries the final state, in increasing versions.
	if got[len(got)-1].Version < newest {
		got = append(got, c.until(env, 30*time.Second, func(rs *ruleset.Ruleset) bool { return rs.Version >= newest })...)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Version <= got[i-1].Version {
			t.Fatalf("versions out of order: %d then %d", got[i-1].Version, got[i].Version)
		}
	}
	final := got[len(got)-1]
	r := final.Flag("checkout").Fallthrough.Rollout
	if final.Version != newest || !final.Flag("checkout").On || r == nil || r.Variations[0].Weight != 50000 {
		t.Fatalf("final ruleset version %d (newest published %d) does not carry the final state", final.Version, newest)
	}
}

func kafkaScript(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "../../../deploy/local/kafka.sh")
}

// shopWithTwoFlags is a stack with a project "shop" of two boolean flags, a and b, and the id of
// one of its environments.
func shopWithTwoFlags(t *testing.T, env string) (*stack, string) {
	s := newStack(t)
	s.project("shop")
	s.boolFlag("shop", "a")
	s.boolFlag("shop", "b")
	return s, envID(t, s, "shop", env)
}

// TestChangeCommittedDuringAPublishIsNotLost: a change that took its outbox id before another
// but committed after the publisher's snapshot (while that ruleset was being produced) is not
// marked published with it; it is published next.
func TestChangeCommittedDuringAPublishIsNotLost(t *testing.T) {
	s, env := shopWithTwoFlags(t, "development")
	c := consume(t, s)
	c.until(env, 30*time.Second, func(rs *ruleset.Ruleset) bool { return rs.Flag("a") != nil && rs.Flag("b") != nil })

	// The slow change: turns a on and takes its outbox id, but does not commit yet.
	ctx := context.Background()
	slow, err := s.app.Store.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Rollback(ctx)
	if _, err := slow.Exec(ctx, `UPDATE flag_configs SET "on" = true, config = jsonb_set(config, '{on}', 'true'), version = version + 1 WHERE environment_id = $1
		AND flag_id = (SELECT f.id FROM flags f JOIN projects p ON p.id = f.project_id WHERE p.key = 'shop' AND f.key = 'a')`, env); err != nil {
		t.Fatal(err)
	}
	if _, err := slow.Exec(ctx, `INSERT INTO outbox (environment_id) VALUES ($1)`, env); err != nil {
		t.Fatal(err)
	}
	// It commits right after the publisher compiled the next ruleset, before that is produced
	// and its changes are marked published.
	var once sync.Once
	committed := make(chan error, 1)
	s.app.Publisher.AfterCompile(func(id string) {
		if id == env {
			once.Do(func() { committed <- slow.Commit(ctx) })
		}
	})
	defer s.app.Publisher.AfterCompile(nil)
	s.must(200, "POST", configPath("shop", "b", "development")+"/toggle", map[string]any{"on": true}, nil)
	select {
	case err := <-committed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the publisher never compiled the toggle of b")
	}
	c.until(env, 30*time.Second, func(rs *ruleset.Ruleset) bool { return rs.Flag("a").On && rs.Flag("b").On })
}

// TestPublishedFlagsFollowTheirChanges: the publisher keeps each flag's encoded JSON between
// publishes (store.FlagJSON); a published ruleset still carries every change — of a flag's
// configuration (a toggle) and of its row alone (client_side, which leaves the stored
// configuration as it was) — and is exactly what encoding/json writes for it.
func TestPublishedFlagsFollowTheirChanges(t *testing.T) {
	s, env := shopWithTwoFlags(t, "production")
	c := consume(t, s)
	exact := func(rs *ruleset.Ruleset) {
		t.Helper()
		if want, err := json.Marshal(rs); err != nil || !bytes.Equal(c.raw, want) {
			t.Fatalf("published ruleset is not what encoding/json writes (%v):\n%s\n%s", err, c.raw, want)
		}
	}
	rs := c.until(env, 30*time.Second, func(rs *ruleset.Ruleset) bool { return rs.Flag("a") != nil && rs.Flag("b") != nil })
	exact(rs[len(rs)-1])
	s.must(200, "POST", configPath("shop", "a", "production")+"/toggle", map[string]any{"on": true}, nil)
	rs = c.until(env, 30*time.Second, func(rs *ruleset.Ruleset) bool { return rs.Flag("a").On })
	exact(rs[len(rs)-1])
	s.must(200, "PATCH", "/api/v1/projects/shop/flags/b", map[string]any{"client_side": true}, nil)
	rs = c.until(env, 30*time.Second, func(rs *ruleset.Ruleset) bool { return rs.Flag("b").ClientSide })
	last := rs[len(rs)-1]
	exact(last)
	if !last.Flag("a").On || last.Flag("a").ClientSide {
		t.Fatalf("flag a changed with b: %+v", last.Flag("a"))
	}
	s.must(200, "PATCH", "/api/v1/projects/shop/flags/b", map[string]any{"client_side": false}, nil)
	rs = c.until(env, 30*time.Second, func(rs *ruleset.Ruleset) bool { return !rs.Flag("b").ClientSide })
	exact(rs[len(rs)-1])
}

// TestRulesetSourcesReuseUnchangedFlags: with FlagDecodes, reading an environment again takes
// the decoded variations and configuration of flags whose stored JSON did not change from the
// previous read (the same slices), decodes the changed ones again, and gives what a read
// without it gives.
func TestRulesetSourcesReuseUnchangedFlags(t *testing.T) {
	s, env := shopWithTwoFlags(t, "production")
	var decodes store.FlagDecodes
	read := func(d *store.FlagDecodes) store.RulesetSources {
		t.Helper()
		src, err := s.app.Store.RulesetSources(context.Background(), env, d)
		if err != nil {
			t.Fatal(err)
		}
		if len(src.Flags) != 2 || src.Flags[0].Key != "a" || src.Flags[1].Key != "b" {
			t.Fatalf("flags read: %+v", src.Flags)
		}
		return src
	}
	same := func(x, y store.RulesetSources) {
		t.Helper()
		if !reflect.DeepEqual(x.Flags, y.Flags) || !reflect.DeepEqual(x.Configs, y.Configs) || !reflect.DeepEqual(x.Versions, y.Versions) {
			t.Fatalf("reads differ:\n%+v %+v\n%+v %+v", x.Flags, x.Configs, y.Flags, y.Configs)
		}
	}
	// Decoded the same time: the same variations array and the same configuration strings.
	shared := func(x, y store.RulesetSources, i int) bool {
		return &x.Flags[i].Variations[0] == &y.Flags[i].Variations[0] &&
			unsafe.StringData(x.Configs[i].OffVariation) == unsafe.StringData(y.Configs[i].OffVariation)
	}
	first, second := read(&decodes), read(&decodes)
	if first.Configs[0].OffVariation == "" {
		t.Fatalf("the test needs an off variation: %+v", first.Configs[0])
	}
	same(second, read(nil))
	if !shared(first, second, 0) || !shared(first, second, 1) {
		t.Fatal("the second read decoded unchanged flags again")
	}
	s.must(200, "PUT", configPath("shop", "a", "production"), map[string]any{"on": true, "fallthrough": rollout(30000, 70000)}, nil)
	third := read(&decodes)
	same(third, read(nil))
	if c := third.Configs[0]; !c.On || c.Fallthrough.Rollout == nil || c.Fallthrough.Rollout.Variations[0].Weight != 30000 {
		t.Fatalf("changed flag read as %+v", c)
	}
	if shared(second, third, 0) || !shared(second, third, 1) {
		t.Fatal("only the changed flag should have been decoded again")
	}
}
