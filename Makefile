# rollwave build. Every target works on a fresh machine of this kind.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/rollwave/rollwave/internal/version.Version=$(VERSION)
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
STATICCHECK_VERSION := v0.8.2
TOOLS := $(CURDIR)/bin/tools
# Build tags of rollwave-agent. grpcnotrace drops grpc-go's golang.org/x/net/trace
# support (/debug/requests pages, which the agent never serves): x/net/trace
# executes html/template, and a reachable template executor makes the linker
# keep every exported method of every reachable type, ~3 MiB of the agent's
# 18 MiB binary and of its resident pages (docs/performance.md, "Agent
# footprint"). cmd/agent's TestAgentDependencies reads this line.
AGENT_TAGS := grpcnotrace nopprof

.PHONY: all build test e2e bench fuzz proto lint demo packages clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/rollwave ./cmd/coordinator
	CGO_ENABLED=0 $(GO) build -trimpath -tags '$(AGENT_TAGS)' -ldflags '$(LDFLAGS)' -o bin/rollwave-agent ./cmd/agent

# Installs prometheus and chromium first when missing (scripts/test-deps.sh).
test:
	./scripts/test-deps.sh
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

# Real-host scenarios (test/integration): systemd-nspawn hosts on a bridge,
# the agent installed from dist/*.deb. Needs root; builds the rootfs once
# into /var/cache/rollwave-e2e.
e2e:
	@if [ "$$(id -u)" != 0 ]; then echo "e2e: SKIPPED: needs root (network namespaces, a bridge, systemd-nspawn); run: sudo make e2e"; exit 0; fi; \
	for tool in systemd-nspawn debootstrap nsenter ip; do \
		command -v $$tool >/dev/null || { echo "e2e: SKIPPED: $$tool not installed; run: apt-get install -y systemd-container debootstrap iproute2"; exit 0; }; \
	done; \
	$(MAKE) build packages && \
	$(GO) test -tags e2e -count=1 -timeout 40m -p 1 -v ./test/integration/... 2>&1 | tee /tmp/rollwave-e2e.log; \
	rc=$${PIPESTATUS[0]}; echo "e2e timings:"; grep -h 'TIMING' /tmp/rollwave-e2e.log | sed 's/^ *//'; exit $$rc

# Benchmark suite (test/bench, docs/performance.md): Go micro-benchmarks,
# the fleet simulator (3 coordinator processes + BENCH_N simulated agents,
# one zero-bake release; several sizes: BENCH_N="500 1000 2000 5000"),
# BENCH_KILLS leader-SIGKILL rounds with BENCH_KILL_N agents,
# BENCH_MULTI_APPS releases at once over BENCH_MULTI_N agents hosting every
# app (after one alone; 0 skips), one 3-node cluster per region of
# BENCH_REGIONS side by side with BENCH_REGION_N agents each (after one
# alone; empty skips), and the agent
# footprint over BENCH_FOOT_WINDOW; as root also the real-host part
# (test/bench/realhost: BENCH_HOSTS systemd-nspawn hosts; the rollout, a
# rollback of every host and a rollout with one bad host timed against
# Ansible serial; the blast radius of a bad release under BENCH_BLAST_RPS
# requests/s per host; the isolation revert; BENCH_REALHOST=0 skips it),
# for which it installs ansible and the e2e tools with apt-get. Prints a
# table; every figure lands in $(BENCH_OUT)/results.json. Each part is
# time-bounded (< 25 min in all with the defaults).
BENCH_N ?= 1000
BENCH_KILL_N ?= 200
BENCH_KILLS ?= 20
BENCH_FOOT_WINDOW ?= 60s
BENCH_HOSTS ?= 50
BENCH_BLAST_RPS ?= 50
BENCH_MULTI_APPS ?= 20
BENCH_MULTI_N ?= 1000
BENCH_REGIONS ?= eu,us
BENCH_REGION_N ?= 1000
BENCH_REALHOST ?= 1
BENCH_OUT ?= bin/bench
# Real memberlist pool sizes of the gossip part (test/bench/gossip); empty skips it.
BENCH_GOSSIP_N ?= 200 1000
# Wall-clock bound on the gossip part; a size that does not build within its
# share is reported NOT MEASURED with how far it got.
BENCH_GOSSIP_BUDGET ?= 5m
bench: build
	mkdir -p $(BENCH_OUT)
	@realhost=0; \
	if [ "$(BENCH_REALHOST)" != 0 ]; then \
		if [ "$$(id -u)" != 0 ]; then echo "bench: real-host part SKIPPED: needs root (systemd-nspawn hosts)"; \
		else \
			missing=; for tool in ansible-playbook systemd-nspawn debootstrap nsenter ip ssh; do command -v $$tool >/dev/null || missing=1; done; \
			if [ -n "$$missing" ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q ansible openssh-client systemd-container debootstrap iproute2 util-linux || exit 1; fi; \
			$(MAKE) packages || exit 1; realhost=1; \
		fi; \
	fi; \
	echo $$realhost > $(BENCH_OUT)/.realhost
	set -o pipefail; $(GO) test -run '^$$' -bench . -benchmem -benchtime 1s -timeout 5m ./test/bench/micro/ | tee $(BENCH_OUT)/micro.txt
	$(GO) run ./test/bench/cmd/benchsuite -bin bin -n '$(BENCH_N)' -kill-n $(BENCH_KILL_N) -kills $(BENCH_KILLS) \
		-multi-apps $(BENCH_MULTI_APPS) -multi-n $(BENCH_MULTI_N) -regions '$(BENCH_REGIONS)' -region-n $(BENCH_REGION_N) \
		-foot-window $(BENCH_FOOT_WINDOW) -realhost=$$(cat $(BENCH_OUT)/.realhost) -hosts $(BENCH_HOSTS) -blast-rps $(BENCH_BLAST_RPS) -out $(BENCH_OUT) \
		-gossip-n '$(BENCH_GOSSIP_N)' -gossip-budget $(BENCH_GOSSIP_BUDGET)

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

# A narrated local session: 3 coordinators and 6 agents on 127.0.0.1 (no
# root), releases 1.0.0, 2.0.0 (phase by phase) and 3.0.0 (10 % of its
# requests fail: the error-rate gate fails its canary, rolled back). Prints
# the dashboard's and /metrics URLs. Stops every process it started on exit
# and on Ctrl-C; DEMO_KEEP=1 keeps the cluster up after the narration until
# Ctrl-C.
demo: build
	CGO_ENABLED=0 $(GO) build -o bin/demo-app ./examples/demo-app
	CGO_ENABLED=0 $(GO) build -o bin/rollwave-demo ./examples/demo
	@bin/rollwave-demo -bin bin -demo-app bin/demo-app

# deb and rpm of rollwave (server + CLI) and rollwave-agent in dist/, built
# with nfpm as a Go library (packaging/cmd/mkpkg; no external tools).
# VERSION (git describe, or VERSION=1.2.3) becomes a dpkg/rpm version by the
# rule in packaging/README.md.
packages: build
	rm -f dist/rollwave_*.deb dist/rollwave-agent_*.deb dist/rollwave-*.rpm
	$(GO) run ./packaging/cmd/mkpkg -version '$(VERSION)' -bin bin -out dist

clean:
	rm -rf bin dist
