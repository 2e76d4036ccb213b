# Run `make` or `make help` to list the targets.

GO        ?= go
GOFMT     ?= gofmt
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
# Extra flags for go test, e.g. make test TESTFLAGS='-run TestFoo -count=1'.
TESTFLAGS ?=
# Arguments for the gateway, e.g. make run ARGS='--config configs/asyncgw.yaml'.
ARGS      ?=

.DEFAULT_GOAL := help
# How long `make chaos` keeps the upstream down.
OUTAGE    ?= 60s
# Load of `make soak`: writes per second and how long (see loadtest/chaos).
SOAK_RATE     ?= 100
SOAK_DURATION ?= 2m
# Load of `make chaos-ha` (its faults come at 20 s to 140 s: keep it 3m or longer).
CHAOS_HA_RATE     ?= 100
CHAOS_HA_DURATION ?= 3m
# Load of `make chaos-cluster` (its faults come at 20 s to 145 s: keep it 3m or longer).
CHAOS_CLUSTER_RATE     ?= 100
CHAOS_CLUSTER_DURATION ?= 3m
# Flags for the benchmark harness, e.g. make bench BENCHFLAGS='-only accept,sse -profiles bin/prof'.
BENCHFLAGS ?=

.PHONY: help run build test test-ts ts-generate chaos soak chaos-ha chaos-cluster bench loadtest lint fmt

help: ## List the targets
	@awk 'BEGIN { FS = ":.*## " } /^[a-zA-Z0-9_-]+:.*## / { printf "  %-13s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

run: ## Run the gateway (go run ./cmd/asyncgw)
	$(GO) run -ldflags '$(LDFLAGS)' ./cmd/asyncgw $(ARGS)

build: ## Build bin/asyncgw
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/asyncgw ./cmd/asyncgw

test: ## Install redis-server if needed, run all tests with -race, then the e2e suite again on a Redis Cluster with 6 shards, then the TypeScript client's tests
	./scripts/ensure-redis.sh
	./scripts/ensure-node-tools.sh
	./scripts/ensure-chromium.sh
	$(GO) test -race -timeout 20m $(TESTFLAGS) ./...
	ASYNCGW_TEST_REDIS=cluster ASYNCGW_TEST_SHARDS=6 $(GO) test -race -timeout 20m $(TESTFLAGS) ./internal/e2e/
	GO=$(GO) ./scripts/test-typescript.sh

test-ts: ## Run the TypeScript client's tests (npm ci, tsc, node --test against a real gateway)
	./scripts/ensure-redis.sh
	GO=$(GO) ./scripts/test-typescript.sh

ts-generate: ## Regenerate the TypeScript client's types from gateway/openapi.json
	cd clients/typescript && npm ci --no-audit --no-fund --loglevel=error && npm run --silent generate

chaos: ## Take an upstream down for $(OUTAGE) under load (breaker, DLQ, bulk replay)
	./scripts/ensure-redis.sh
	ASYNCGW_OUTAGE=$(OUTAGE) $(GO) test -race -count=1 -timeout 30m -run 'TestUpstreamOutageUnderLoad' -v ./internal/e2e/

soak: ## Soak with a ledger: kill -9 Redis, a worker and the gateway under load (report in bin/soak.md)
	./scripts/ensure-redis.sh
	@mkdir -p bin
	ASYNCGW_SOAK=long ASYNCGW_SOAK_RATE=$(SOAK_RATE) ASYNCGW_SOAK_DURATION=$(SOAK_DURATION) \
		ASYNCGW_SOAK_OUT=$(CURDIR)/bin/soak.md \
		$(GO) test -count=1 -timeout 20m -run '^TestSoak$$' -v ./loadtest/chaos/

chaos-ha: ## Soak with a ledger on Redis Sentinel: master kills, SENTINEL FAILOVER, worker and gateway kills (bin/chaos-ha.md)
	./scripts/ensure-redis.sh
	@mkdir -p bin
	ASYNCGW_SOAK=long ASYNCGW_SOAK_RATE=$(CHAOS_HA_RATE) ASYNCGW_SOAK_DURATION=$(CHAOS_HA_DURATION) \
		ASYNCGW_SOAK_OUT=$(CURDIR)/bin/chaos-ha.md \
		$(GO) test -count=1 -timeout 30m -run '^TestSoakSentinel$$' -v ./loadtest/chaos/

chaos-cluster: ## Soak with a ledger on Redis Cluster: master kills, slot migrations, worker and gateway kills (bin/chaos-cluster.md)
	./scripts/ensure-redis.sh
	@mkdir -p bin
	ASYNCGW_SOAK=long ASYNCGW_SOAK_RATE=$(CHAOS_CLUSTER_RATE) ASYNCGW_SOAK_DURATION=$(CHAOS_CLUSTER_DURATION) \
		ASYNCGW_SOAK_OUT=$(CURDIR)/bin/chaos-cluster.md \
		$(GO) test -count=1 -timeout 30m -run '^TestSoakCluster$$' -v ./loadtest/chaos/

bench: ## Micro-benchmarks, then the side-by-side harness (table also in bin/bench.md)
	./scripts/ensure-redis.sh
	$(GO) test -run '^$$' -bench . -benchmem ./gateway ./jobs/... ./sse ./status
	@mkdir -p bin
	$(GO) run ./loadtest/bench -out bin/bench.md $(BENCHFLAGS)

loadtest: ## Run the k6 load tests (installs k6 into ./bin); BASE_URL=... for a remote gateway
	@if [ ! -x bin/k6 ] && ! k6 version 2>/dev/null | grep -q '^k6 v1\.8\.'; then \
		echo "installing k6 v1.8.1 into ./bin (takes a few minutes)"; \
		GOBIN=$(CURDIR)/bin $(GO) install go.k6.io/k6@v1.8.1; \
	fi
	GO=$(GO) ./scripts/loadtest.sh

lint: ## Check gofmt, run go vet, and golangci-lint if installed
	@out="$$($(GOFMT) -l .)"; \
	if [ -n "$$out" ]; then echo "gofmt -l reports unformatted files:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@if command -v golangci-lint >/dev/null 2>&1; then \
		golangci-lint run ./...; \
	else \
		echo "golangci-lint is not installed; skipped (see https://golangci-lint.run)"; \
	fi

fmt: ## Format all Go files (gofmt -w)
	$(GOFMT) -w .
