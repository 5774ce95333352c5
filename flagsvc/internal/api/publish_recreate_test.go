package api_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-io/switchyard/platform/kafka"
	"github.com/switchyard-io/switchyard/platform/testenv"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// recreateTopic deletes the stack's ruleset topic on the real broker and creates it again
// (empty, with a new topic id), as a rebuilt cluster or an operator would.
func recreateTopic(t *testing.T, s *stack) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := testenv.KafkaClient(t)
	adm := kadm.NewClient(cl)
	before, err := adm.ListTopics(ctx, s.topic)
	if err != nil || !before.Has(s.topic) {
		t.Fatalf("list topic %s before deleting it: %v", s.topic, err)
	}
	resp, err := adm.DeleteTopic(ctx, s.topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("delete topic %s: %v", s.topic, err)
	}
	// The broker may still be finishing the deletion: retry the creation until it takes.
	var created kadm.TopicDetail
	testenv.Eventually(t, 30*time.Second, "the topic created again", func() bool {
		if kafka.EnsureTopics(ctx, cl, kafka.RulesetTopic(s.topic)) != nil {
			return false
		}
		after, err := adm.ListTopics(ctx, s.topic)
		if err != nil || !after.Has(s.topic) {
			return false
		}
		created = after[s.topic]
		return created.Err == nil && created.ID != before[s.topic].ID
	})
	if created.ID == before[s.topic].ID {
		t.Fatalf("topic id did not change: %s", created.ID)
	}
}

// drained waits until no outbox row of the stack is pending.
func drained(t *testing.T, s *stack, what string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, what, func() bool {
		var n int
		if err := s.app.Store.Pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox WHERE published_at IS NULL`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 0
	})
}

// recreatedUnderPublisher is a stack with project "shop" and flag "checkout" published, whose
// topic was then deleted and created again under its running publisher.
func recreatedUnderPublisher(t *testing.T, o stackOptions) *stack {
	s := newStackWith(t, o)
	s.project("shop")
	s.boolFlag("shop", "checkout")
	c := consume(t, s)
	c.until(envID(t, s, "shop", "development"), 30*time.Second, func(rs *ruleset.Ruleset) bool { return rs.Flag("checkout") != nil })
	// Nothing pending, so what follows is the publisher's answer to the recreation.
	drained(t, s, "outbox drained before the recreation")
	recreateTopic(t, s)
	return s
}

// TestPublisherFollowsARecreatedTopic: a change committed after the ruleset topic was deleted
// and created again (empty, new topic id) under a running publisher is published to the new
// topic — the producer, refused with UNKNOWN_TOPIC_ID, drops the old id — and its outbox row
// marked published only then; and the environments nobody changed are republished to it, so
// relays reading the new topic from its start learn all of them. The sweep is an hour: only the
// refused produce can have told the publisher.
func TestPublisherFollowsARecreatedTopic(t *testing.T) {
	s := recreatedUnderPublisher(t, stackOptions{sweep: time.Hour})
	dev, prod := envID(t, s, "shop", "development"), envID(t, s, "shop", "production")
	s.must(200, "POST", configPath("shop", "checkout", "development")+"/toggle", map[string]any{"on": true}, nil)
	fresh := consume(t, s)
	fresh.until(dev, 30*time.Second, func(rs *ruleset.Ruleset) bool { return rs.Flag("checkout").On })
	drained(t, s, "outbox drained after the recreation")
	if rs, ok := consume(t, s).next(prod, 30*time.Second); !ok || rs == nil || rs.Flag("checkout") == nil {
		t.Fatalf("the unchanged environment %s was not republished to the recreated topic (found %v)", prod, ok)
	}
}

// TestPublisherRepublishesToARecreatedIdleTopic: with no change at all after the topic was
// deleted and created again, the publisher's sweep notices the new topic id and republishes
// every environment to it.
func TestPublisherRepublishesToARecreatedIdleTopic(t *testing.T) {
	s := recreatedUnderPublisher(t, stackOptions{})
	allRepublished(t, s)
}

// allRepublished reads the stack's topic from its start until every environment of "shop" is
// there with the flag "checkout".
func allRepublished(t *testing.T, s *stack) {
	t.Helper()
	want := map[string]string{}
	for _, env := range []string{"development", "staging", "production"} {
		want[envID(t, s, "shop", env)] = env
	}
	cl := testenv.KafkaClient(t, kgo.ConsumeTopics(s.topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for len(want) > 0 {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("environments not published to the new topic: %v", want)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			var rs ruleset.Ruleset
			if json.Unmarshal(r.Value, &rs) == nil && rs.Flag("checkout") != nil {
				delete(want, string(r.Key))
			}
		})
	}
}

// TestPublisherCreatesADeletedTopic: when the ruleset topic is deleted and nobody creates it
// again (the broker does not create topics on its own), the publisher's sweep creates it,
// compacted, and republishes every environment to it.
func TestPublisherCreatesADeletedTopic(t *testing.T) {
	s := newStack(t)
	s.project("shop")
	s.boolFlag("shop", "checkout")
	consume(t, s).until(envID(t, s, "shop", "development"), 30*time.Second, func(rs *ruleset.Ruleset) bool { return rs.Flag("checkout") != nil })
	drained(t, s, "outbox drained before the deletion")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm := kadm.NewClient(testenv.KafkaClient(t))
	resp, err := adm.DeleteTopic(ctx, s.topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("delete topic %s: %v", s.topic, err)
	}
	allRepublished(t, s)
	cfgs, err := adm.DescribeTopicConfigs(ctx, s.topic)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := cfgs.On(s.topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg.Configs {
		if c.Key == "cleanup.policy" && c.MaybeValue() != "compact" {
			t.Fatalf("the topic created again has cleanup.policy=%s", c.MaybeValue())
		}
	}
}
