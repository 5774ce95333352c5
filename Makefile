# Switchyard — one Makefile for the local stack, the tests and the benchmarks.
# Quick start: `make up`, then `make test`. See README.md.

SHELL := /bin/bash
LOCAL := deploy/local
# Every Go module of the workspace (go.work).
MODULES = $(shell go list -m -f '{{.Dir}}' 2>/dev/null)
GO_TEST_FLAGS ?= -count=1 -timeout 20m
# Packages whose tests stop a shared service (Kafka, ClickHouse) to test outages: they run after
# the rest of their module, on their own, so that no other package's test meets the outage.
OUTAGE_PKGS = github.com/switchyard-io/switchyard/flagsvc/internal/api github.com/switchyard-io/switchyard/ingest/internal/itest
BENCH_TIME ?= 1s

.PHONY: up down install infra-up infra-down services-up services-down status build seed \
        test test-go test-other test-dashboards dashboards-build node-deps vet bench bench-eval bench-stats bench-relay bench-flagsvc bench-ingest bench-experiments bench-jobs clean logs

## up: install what is missing, start Postgres, Kafka, ClickHouse and every service, seed a demo.
up: install infra-up dashboards-build services-up seed
	@echo
	@echo "Switchyard is up."
	@$(LOCAL)/services.sh status
	@echo "Owner API token: .data/admin-token"

## down: stop every service and the infrastructure (only the processes we started).
down: services-down infra-down

install:
	@$(LOCAL)/install.sh

infra-up:
	@$(LOCAL)/stack.sh up

infra-down:
	@$(LOCAL)/stack.sh down

services-up:
	@$(LOCAL)/services.sh up

services-down:
	@$(LOCAL)/services.sh down

status:
	@$(LOCAL)/stack.sh status || true
	@$(LOCAL)/services.sh status

build: dashboards-build
	@$(LOCAL)/services.sh build

# The web app (React + Vite), embedded by the dashboards binary: build it before the Go builds.
dashboards-build:
	@dashboards/scripts/build.sh

seed:
	@if [ -x $(LOCAL)/seed.sh ]; then $(LOCAL)/seed.sh; fi

logs:
	@tail -n 50 .data/log/*.log

## test: start the infrastructure if needed, then run every test (unit and integration).
test: install infra-up node-deps dashboards-build test-go test-other test-dashboards

# Node packages some Go tests drive (the OpenFeature OFREP provider against the relay).
node-deps:
	@cd evalrelay/ofreptest && npm ci --no-audit --no-fund --loglevel=error

test-go:
	@set -e; for m in $(MODULES); do \
	  echo "=== go test $${m#$(CURDIR)/}"; \
	  (cd $$m && files=$$(go list -f '{{$$d := .Dir}}{{range .GoFiles}}{{$$d}}/{{.}} {{end}}{{range .TestGoFiles}}{{$$d}}/{{.}} {{end}}{{range .XTestGoFiles}}{{$$d}}/{{.}} {{end}}' ./... 2>/dev/null) && \
	   unformatted=$$(if [ -n "$$files" ]; then gofmt -l $$files; fi) && \
	   if [ -n "$$unformatted" ]; then echo "not gofmt-formatted: $$unformatted" >&2; exit 1; fi && \
	   go vet ./... && $${SWITCHYARD_DATA:-$(CURDIR)/.data}/bin/staticcheck ./... && pkgs=$$(go list ./...) && \
	   outage=$$(printf '%s\n' $$pkgs | grep -x -F $(addprefix -e ,$(OUTAGE_PKGS)) || true) && \
	   rest=$$(printf '%s\n' $$pkgs | grep -v -x -F $(addprefix -e ,$(OUTAGE_PKGS)) || true) && \
	   if [ -n "$$rest" ]; then go test $(GO_TEST_FLAGS) $$rest; fi && \
	   for p in $$outage; do go test $(GO_TEST_FLAGS) $$p; done); \
	done

# Tests in other languages (OpenFeature OFREP provider against the relay, the web app).
test-other:
	@if [ -x scripts/test-other.sh ]; then scripts/test-other.sh; fi

# The web app: Vitest component tests, the JS budget, Playwright in Debian's Chromium against
# the real services.
test-dashboards:
	@dashboards/scripts/test.sh

## bench: run the benchmarks and print their results (docs/benchmarks.md records them).
## bench-eval and bench-stats need nothing running; the others run against the local stack.
bench: bench-eval bench-stats bench-relay bench-flagsvc bench-ingest bench-experiments bench-jobs

# Local evaluation: Switchyard's engine and client beside LaunchDarkly's and GrowthBook's Go SDKs
# (a separate module outside the workspace, so they never become dependencies).
bench-eval:
	cd sdks/go/benchcompare && GOWORK=off go test -run '^$$' -bench . -benchmem -benchtime $(BENCH_TIME) .

# Relay: 304s and remote evaluation under wrk and at fixed rates (vegeta), propagation to 1,000 streaming SDK clients.
bench-relay: up
	scripts/bench-relay.sh

# Flag service: toggle latency at 200 req/s, commit-to-Kafka-ack, list/search over 10,000 flags.
bench-flagsvc: up
	cd flagsvc && go build -o ../.data/bin/flagsvcbench ./cmd/flagsvcbench
	.data/bin/flagsvcbench -token-file .data/admin-token -rate 200 -duration 30s -list-flags 10000

# Event pipeline: sustained throughput, accepted-to-queryable latency, collector memory under overload.
bench-ingest: infra-up
	cd ingest && go run ./cmd/ingestbench -mode all

# Experiment results at scale: 10M exposures and 100M events generated into ClickHouse, then a full
# refresh of 5 metrics and an incremental refresh after one more day.
bench-experiments: infra-up
	cd ingest && go build -o ../.data/bin/ingest ./cmd/ingest
	cd stats && go build -o ../.data/bin/resultsbench ./cmd/resultsbench
	.data/bin/resultsbench -ingest-bin .data/bin/ingest -exposures $${EXPOSURES:-10000000} -events $${EVENTS:-100000000} -days 14

bench-jobs: infra-up
	cd jobs && go test -run '^$$' -bench BenchmarkSweep100 -benchtime 3x ./internal/guardrail/
	cd jobs && JOBS_E2E_GUARDRAIL_INTERVAL=1m go test -count=1 -v -run TestGuardrailRollsBack ./internal/e2etest/ | grep 'breach to SDK'

bench-stats:
	cd stats && go test -run '^$$' -bench . -benchmem -benchtime $(BENCH_TIME) ./...

clean: down
	rm -rf .data
