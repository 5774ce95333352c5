package app

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-io/switchyard/evalrelay/internal/relaytest"
	"github.com/switchyard-io/switchyard/platform/kafka"
	"github.com/switchyard-io/switchyard/platform/testenv"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// TestKafkaReplacedDuringOutage: the rulesets topic is deleted and created again while the
// relay is cut off from Kafka (a cluster rebuilt, a topic recreated by hand), and the new log
// is shorter than what the relay had read. When Kafka answers again, the relay's position is
// past the new log's end: that must not count as "read up to the end" — it stays stale until
// it has read the new log, and then serves what the new log says.
func TestKafkaReplacedDuringOutage(t *testing.T) {
	name, prod := topic(t)
	produceRuleset(t, prod, relaytest.Ruleset("env1", 1, true))
	produceRuleset(t, prod, relaytest.Ruleset("env2", 1, true))
	produceRuleset(t, prod, relaytest.Ruleset("env2", 2, true))
	proxy := newKafkaProxy(t, testenv.KafkaBrokers()[0])
	cfg := testConfig(t, name, t.TempDir())
	cfg.KafkaBrokers = proxy.addr
	r := startRelay(t, cfg)
	r.waitVersion(t, "env1", 1)
	r.waitVersion(t, "env2", 2)
	r.waitCaughtUp(t)
	server1, _ := relaytest.Keys("env1")
	served := func() (version int64, stale bool) {
		resp, body := get(t, "GET", r.base+"/sdk/v1/ruleset", server1, "")
		if resp.StatusCode != 200 {
			t.Fatalf("ruleset: %d %s", resp.StatusCode, body)
		}
		var rs ruleset.Ruleset
		if err := json.Unmarshal(body, &rs); err != nil {
			t.Fatalf("ruleset: %v %s", err, body)
		}
		return rs.Version, resp.Header.Get("X-Switchyard-Stale") == "true"
	}

	proxy.Cut()
	testenv.Eventually(t, 30*time.Second, "the relay to notice Kafka is unreachable", func() bool { _, s := served(); return s })
	// The topic is replaced by one holding a single record: its end offset (1) is below the
	// relay's position (3).
	adm := kadm.NewClient(prod)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := adm.DeleteTopic(ctx, name); err != nil {
		t.Fatal(err)
	}
	spec := kafka.RulesetTopic(name)
	configs := map[string]*string{}
	for k, v := range spec.Configs {
		configs[k] = &v
	}
	testenv.Eventually(t, 60*time.Second, "the topic to be created again", func() bool {
		resp, err := adm.CreateTopic(ctx, spec.Partitions, -1, configs, name)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			t.Logf("create topic: %v", err)
		}
		return err == nil
	})
	// A new producer: the first one knows the deleted topic's id.
	prod2 := testenv.KafkaClient(t, kgo.DefaultProduceTopic(name), kgo.RequiredAcks(kgo.AllISRAcks()))
	produceRuleset(t, prod2, relaytest.Ruleset("env1", 2, false))
	if ends, err := adm.ListEndOffsets(ctx, name); err != nil || ends.Error() != nil {
		t.Fatalf("end offsets: %v %v", err, ends.Error())
	} else if o, _ := ends.Lookup(name, 0); o.Offset != 1 {
		t.Fatalf("new topic's end offset %d, want 1", o.Offset)
	}

	// Kafka comes back with the relay's fetches held: it has seen Kafka answer twice but has
	// read nothing of the new log.
	hold := holdFetchesAndSecondProbe(t, proxy)
	proxy.Restore()
	select {
	case <-hold.second:
	case <-time.After(30 * time.Second):
		t.Fatal("the relay did not list offsets twice after Kafka came back")
	}
	if v, stale := served(); !stale || v != 1 {
		t.Fatalf("Kafka answered with a log shorter than what the relay had read, none of it read yet: version %d, stale %t; want stale at version 1", v, stale)
	}
	proxy.SetGate(nil)
	hold.release()

	// Once the new log is read, the relay is current again and serves it.
	testenv.Eventually(t, 30*time.Second, "staleness to clear", func() bool { _, s := served(); return !s })
	if v, _ := served(); v != 2 {
		t.Fatalf("first fresh answer after the topic was replaced: version %d, want 2", v)
	}
}
