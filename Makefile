# uniter — the two commands a newcomer needs are `make demo` and `make test`.
GO      ?= go
BIN     := bin/uniter
# The hook tools' small binary: the agent points tools/ at it when it lies
# beside uniter (docs/hook-tools.md, "Cost").
TOOLBIN := bin/uniter-hooktools
PKGS    := ./...
SRCS    := $(shell find . -name '*.go' -not -path './bin/*' -not -path './bench/etcdv3/*') go.mod go.sum
# The binaries are static (CGO_ENABLED=0): hook tools start ~0.8 ms faster.
# Every test runs with the race detector; the whole suite stays under 10 min.
TESTFLAGS ?= -race -count=1 -timeout 9m

.PHONY: build test lint deps fmt clean demo

build: $(BIN) $(TOOLBIN)

$(BIN): $(SRCS)
	CGO_ENABLED=0 $(GO) build -o $(BIN) ./cmd/uniter

$(TOOLBIN): $(SRCS)
	CGO_ENABLED=0 $(GO) build -o $(TOOLBIN) ./cmd/uniter-hooktools

# deps installs what the tests need beyond Go modules (Debian packages).
deps:
	./scripts/install-deps.sh
	$(GO) mod download

test: deps
	$(GO) vet $(PKGS)
	$(GO) test $(TESTFLAGS) $(PKGS)
	# A brief fuzzing pass over the API's request decoding and the lease
	# FSM's interleavings (their seed corpora already ran above).
	$(GO) test -run '^$$' -fuzz FuzzDecodeRequest -fuzztime 10s ./controller/
	$(GO) test -run '^$$' -fuzz FuzzInterleavings -fuzztime 10s ./lease/

# staticcheck 2026.2.2 is module version v0.8.2 (the proxy knows only the latter).
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(PKGS)

# demo: a 3-unit leader-demo deployment on the embedded controller, kept in
# .uniter-demo/ (Ctrl-C stops it; run again to resume).
demo: build
	UNITER_HOME=$(CURDIR)/.uniter-demo $(BIN) up testcharms/leader-demo --units 3

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin

# bench runs the benchmarks B1–B10 and B6b against real processes (bench/README.md)
# and writes bench/results/latest.md and latest.json. BENCH_QUICK=1 is the
# short pass (under 9 minutes, 3 of them B10's soak); the full pass takes
# about 50 minutes on 2 cores, 30 of them B10's churn soak. BENCH_ONLY=B1,B5 runs a subset. B9's etcd
# (server and clientv3 load) is the separate module bench/etcdv3, whose
# modules are downloaded here and which the suite builds; `make test` never
# builds it, and the root module carries no etcd or gRPC.
.PHONY: bench
bench:
	$(GO) -C bench/etcdv3 mod download
	CGO_ENABLED=0 $(GO) run ./bench/cmd/bench $(if $(filter-out 0,$(BENCH_QUICK)),-quick) $(if $(BENCH_ONLY),-only $(BENCH_ONLY))

# release: static uniter and uniter-hooktools for linux/amd64 and
# linux/arm64 in dist/, with the version and commit stamped in, and
# dist/SHA256SUMS. VERSION defaults to the latest tag (or the dev version).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0-dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X github.com/uniter-dev/uniter/internal/version.Version=$(VERSION) -X github.com/uniter-dev/uniter/internal/version.Commit=$(COMMIT)
PLATFORMS := linux/amd64 linux/arm64
.PHONY: release
release:
	rm -rf dist && mkdir -p dist
	for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; d=dist/uniter-$(VERSION)-$$os-$$arch; mkdir -p $$d; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $$d/ ./cmd/uniter ./cmd/uniter-hooktools || exit 1; \
		tar -C dist -czf $$d.tar.gz $${d#dist/} && rm -rf $$d; \
	done
	cd dist && sha256sum *.tar.gz > SHA256SUMS
	@cat dist/SHA256SUMS
