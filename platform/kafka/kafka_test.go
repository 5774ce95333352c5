package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-io/switchyard/platform/testenv"
)

// TestProduceConsumeThroughRealBroker creates a topic, produces a record with acks=all and
// reads it back with a consumer — against the real Kafka of the local stack.
func TestProduceConsumeThroughRealBroker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topic := testenv.KafkaTopicName(t, "platform")
	admin := testenv.KafkaClient(t)
	if err := Ping(ctx, admin); err != nil {
		t.Fatal(err)
	}
	spec := RulesetTopic(topic)
	if err := EnsureTopics(ctx, admin, spec); err != nil {
		t.Fatal(err)
	}
	// Idempotent: a second call is fine.
	if err := EnsureTopics(ctx, admin, spec); err != nil {
		t.Fatal(err)
	}
	cfgs, err := kadm.NewClient(admin).DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := cfgs.On(topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	compacted := false
	for _, c := range cfg.Configs {
		if c.Key == "cleanup.policy" && c.MaybeValue() == "compact" {
			compacted = true
		}
	}
	if !compacted {
		t.Fatalf("topic %s is not compacted", topic)
	}

	producer := testenv.KafkaClient(t, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err := producer.ProduceSync(ctx, &kgo.Record{Key: []byte("env-1"), Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	consumer := testenv.KafkaClient(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for {
		fetches := consumer.PollFetches(ctx)
		if err := fetches.Err0(); err != nil {
			t.Fatal(err)
		}
		recs := fetches.Records()
		if len(recs) == 0 {
			continue
		}
		if string(recs[0].Key) != "env-1" || string(recs[0].Value) != "hello" {
			t.Fatalf("got %q=%q", recs[0].Key, recs[0].Value)
		}
		return
	}
}
