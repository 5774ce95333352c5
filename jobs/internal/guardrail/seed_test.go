package guardrail_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
)

// arm is one variation's simulated population: units exposed and how many of them sent the
// metric's event.
type arm struct {
	variation string
	units     int
	converted int
}

// seedExperiment writes exposures (with the experiment key, as the SDK sends them) and metric
// events into ClickHouse, as the ingest writer would: every unit is exposed at start+1s and a
// converting unit sends one event at start+2s. Keys are prefixed so experiments do not share
// units.
func seedExperiment(t testing.TB, conn driver.Conn, env, flag, experiment, eventKey string, start time.Time, arms ...arm) {
	t.Helper()
	ctx := context.Background()
	exp, err := conn.PrepareBatch(ctx, `INSERT INTO exposures (environment_id, event_id, timestamp, timestamp_ms, client_timestamp_ms,
		received_at, clamped, context_kind, context_key, flag_key, variation_key, flag_version, reason, rule_id, experiment_key, sdk_name, sdk_version)`)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := conn.PrepareBatch(ctx, `INSERT INTO tracks (environment_id, event_id, timestamp, timestamp_ms, client_timestamp_ms, received_at,
		clamped, context_kind, context_key, event_key, value, has_value, properties.key, properties.type, properties.value, sdk_name, sdk_version)`)
	if err != nil {
		t.Fatal(err)
	}
	at, conv := start.Add(time.Second), start.Add(2*time.Second)
	for _, a := range arms {
		for i := 0; i < a.units; i++ {
			key := fmt.Sprintf("%s-%s-%06d", experiment, a.variation, i)
			if err := exp.Append(env, uuid.New(), at, uint64(at.UnixMilli()), at.UnixMilli(), at, uint8(0), "user", key, flag, a.variation,
				uint64(1), "SPLIT", "", experiment, "go", "1.0"); err != nil {
				t.Fatal(err)
			}
			if i < a.converted {
				if err := tr.Append(env, uuid.New(), conv, uint64(conv.UnixMilli()), conv.UnixMilli(), conv, uint8(0), "user", key, eventKey,
					float64(1), uint8(0), []string{}, []string{}, []string{}, "go", "1.0"); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := exp.Send(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Send(); err != nil {
		t.Fatal(err)
	}
}

// seedExposures writes exposures of contexts the flag served with the given reason (no
// experiment), one each at start+1s.
func seedExposures(t testing.TB, conn driver.Conn, env, flag, variation, reason, prefix string, n int, start time.Time) {
	t.Helper()
	b, err := conn.PrepareBatch(context.Background(), `INSERT INTO exposures (environment_id, event_id, timestamp, timestamp_ms, client_timestamp_ms,
		received_at, clamped, context_kind, context_key, flag_key, variation_key, flag_version, reason, rule_id, experiment_key, sdk_name, sdk_version)`)
	if err != nil {
		t.Fatal(err)
	}
	at := start.Add(time.Second)
	for i := 0; i < n; i++ {
		if err := b.Append(env, uuid.New(), at, uint64(at.UnixMilli()), at.UnixMilli(), at, uint8(0), "user", fmt.Sprintf("%s-%06d", prefix, i),
			flag, variation, uint64(1), reason, "", "", "go", "1.0"); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}
