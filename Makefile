# intake — see README.md. Every target works on a clean clone.
GO       ?= go
BIN      ?= bin/intake
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/intake-dev/intake/pkg/cli.version=$(VERSION)
# Tests talk to this PostgreSQL (each package in a fresh schema). With CI=true
# a test that cannot reach it fails instead of skipping.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
export TEST_DATABASE_URL
# Tools the tests run, installed once into a git-ignored, cached directory.
# Bumping a version does not reinstall: run make clean-tools first.
TOOLS_BIN ?= $(CURDIR)/tools/bin
VERSITYGW_VERSION := v1.8.0
VERSITYGW := $(abspath $(TOOLS_BIN))/versitygw

.PHONY: all build run test test-short bench bench-go lint fmt clean tools clean-tools

all: lint test build

## build: a static binary at bin/intake, version stamped
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/intake

## run: the embedded default (SQLite + files under ./data, 127.0.0.1:8080)
run: build
	./$(BIN) serve

## test: the whole suite, race detector on, against a real S3 (versitygw)
test: $(VERSITYGW)
	INTAKE_VERSITYGW=$(VERSITYGW) $(GO) test -race -count=1 -timeout 20m ./...

## test-short: skips the slow end-to-end tests
test-short:
	$(GO) test -short -count=1 ./...

## bench: the benchmark harness (cmd/intake-bench): intake against a
## reference tusd binary on the file store and on versitygw, written to
## docs/benchmarks.md and docs/benchmarks.json. BENCH_FLAGS adds flags,
## e.g. make bench BENCH_FLAGS='--quick --backends file'.
BENCH_FLAGS ?=
bench: $(VERSITYGW)
	$(GO) build -o bin/intake-bench ./cmd/intake-bench
	INTAKE_VERSITYGW=$(VERSITYGW) bin/intake-bench $(BENCH_FLAGS)

## bench-go: Go benchmarks (throughput against tusd's handler in-process, catalog costs)
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 -timeout 30m ./...

## lint: gofmt and go vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin

## tools: the S3 server the tests start (internal/s3test)
tools: $(VERSITYGW)

# go install takes over a minute and downloads a lot, so it only runs when
# the binary is missing. It installs into a staging directory and renames,
# so that an interrupted install never leaves a binary that counts as done.
$(VERSITYGW):
	@mkdir -p $(TOOLS_BIN)/.install
	GOBIN=$(abspath $(TOOLS_BIN)/.install) $(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)
	mv $(TOOLS_BIN)/.install/versitygw $@
	@rmdir $(TOOLS_BIN)/.install

clean-tools:
	rm -rf $(TOOLS_BIN) tools/_node
