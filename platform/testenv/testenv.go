// Package testenv gives integration tests isolated resources on the real local stack started by
// `make test` (deploy/local): a fresh Postgres database, a unique Kafka topic name, a fresh
// ClickHouse database. Addresses come from the same SWITCHYARD_* variables as the services.
//
// Tests fail (never skip) when the stack is not running, and say how to start it.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// PostgresAdminDSN is the DSN of the local stack's maintenance database.
func PostgresAdminDSN() string {
	return fmt.Sprintf("postgres://%s:%s@%s:%s/postgres?sslmode=disable",
		env("SWITCHYARD_PG_USER", "switchyard"), env("SWITCHYARD_PG_PASSWORD", "switchyard"),
		env("SWITCHYARD_PG_HOST", "127.0.0.1"), env("SWITCHYARD_PG_PORT", "15432"))
}

// KafkaBrokers is the local stack's broker list.
func KafkaBrokers() []string {
	return strings.Split(env("SWITCHYARD_KAFKA_BROKERS", env("SWITCHYARD_KAFKA_HOST", "127.0.0.1")+":"+env("SWITCHYARD_KAFKA_PORT", "19092")), ",")
}

// ClickHouseAddr is the local stack's ClickHouse native-protocol address.
func ClickHouseAddr() string {
	return env("SWITCHYARD_CLICKHOUSE_ADDR", env("SWITCHYARD_CH_HOST", "127.0.0.1")+":"+env("SWITCHYARD_CH_PORT", "19000"))
}

// Suffix returns a random lowercase hex string for unique resource names.
func Suffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func requireTCP(t testing.TB, what, addr string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("%s is not reachable at %s (%v): start the local stack with `make infra-up` or run `make test`", what, addr, err)
	}
	conn.Close()
}

// PostgresDB creates a fresh database for the test, drops it at cleanup, and returns its DSN.
func PostgresDB(t testing.TB) string {
	t.Helper()
	admin := PostgresAdminDSN()
	cfg, err := pgx.ParseConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	requireTCP(t, "Postgres", net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to Postgres: %v", err)
	}
	defer conn.Close(ctx)
	name := "test_" + Suffix()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return strings.Replace(admin, "/postgres?", "/"+name+"?", 1)
}

// KafkaTopicName returns a topic name unique to this test run (the topic is not created).
func KafkaTopicName(t testing.TB, prefix string) string {
	t.Helper()
	requireTCP(t, "Kafka", KafkaBrokers()[0])
	name := prefix + ".test." + Suffix()
	t.Cleanup(func() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(KafkaBrokers()...))
		if err != nil {
			return
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = kadm.NewClient(cl).DeleteTopics(ctx, name)
	})
	return name
}

// KafkaClient returns a client of the local broker, closed at cleanup.
func KafkaClient(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	requireTCP(t, "Kafka", KafkaBrokers()[0])
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(KafkaBrokers()...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// RequireClickHouse fails the test when ClickHouse is not reachable, and returns its address.
func RequireClickHouse(t testing.TB) string {
	t.Helper()
	addr := ClickHouseAddr()
	requireTCP(t, "ClickHouse", addr)
	return addr
}

// Eventually polls cond every few milliseconds until it returns true or the timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	wait := 5 * time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(wait)
		if wait < 100*time.Millisecond {
			wait *= 2
		}
	}
}
