# rollwave build. Every target works on a fresh machine of this kind.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/rollwave/rollwave/internal/version.Version=$(VERSION)
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
STATICCHECK_VERSION := v0.8.2
TOOLS := $(CURDIR)/bin/tools

.PHONY: all build test e2e bench fuzz proto lint demo packages clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/rollwave ./cmd/coordinator
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/rollwave-agent ./cmd/agent

test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 10m ./...

e2e:
	@echo "e2e: not yet (real-host scenarios arrive with the Real hosts issue)"

# Benchmark suite (test/bench, docs/performance.md): Go micro-benchmarks,
# the fleet simulator (3 coordinator processes + BENCH_N simulated agents,
# one zero-bake release; several sizes: BENCH_N="500 1000 2000 5000"),
# BENCH_KILLS leader-SIGKILL rounds with BENCH_KILL_N agents, and the agent
# footprint over BENCH_FOOT_WINDOW. Prints a table; every figure lands in
# $(BENCH_OUT)/results.json. Each part is time-bounded (< 20 min in all
# with the defaults).
BENCH_N ?= 1000
BENCH_KILL_N ?= 200
BENCH_KILLS ?= 20
BENCH_FOOT_WINDOW ?= 60s
BENCH_OUT ?= bin/bench
bench: build
	mkdir -p $(BENCH_OUT)
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 1s -timeout 5m ./test/bench/micro/ | tee $(BENCH_OUT)/micro.txt
	$(GO) run ./test/bench/cmd/benchsuite -bin bin -n '$(BENCH_N)' -kill-n $(BENCH_KILL_N) -kills $(BENCH_KILLS) \
		-foot-window $(BENCH_FOOT_WINDOW) -out $(BENCH_OUT)

# Runs every fuzz target for FUZZTIME (default 2m) each; fails on a crash.
fuzz:
	FUZZTIME=$${FUZZTIME:-2m} ./scripts/fuzz.sh

# Regenerates the committed Go code from proto/ with pinned generators.
proto:
	@command -v protoc >/dev/null || { apt-get update && apt-get install -y protobuf-compiler; }
	GOBIN=$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(TOOLS) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	PATH=$(TOOLS):$$PATH protoc -I proto \
		--go_out=paths=source_relative:proto \
		--go-grpc_out=paths=source_relative:proto \
		proto/rollwave/v1/*.proto

lint:
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

demo:
	@echo "demo: not yet (the demo arrives with the Rollout issue)"

# deb and rpm of rollwave (server + CLI) and rollwave-agent in dist/, built
# with nfpm as a Go library (packaging/cmd/mkpkg; no external tools).
# VERSION (git describe, or VERSION=1.2.3) becomes a dpkg/rpm version by the
# rule in packaging/README.md.
packages: build
	rm -f dist/rollwave_*.deb dist/rollwave-agent_*.deb dist/rollwave-*.rpm
	$(GO) run ./packaging/cmd/mkpkg -version '$(VERSION)' -bin bin -out dist

clean:
	rm -rf bin dist
