# intake — see README.md. Every target works on a clean clone.
GO       ?= go
BIN      ?= bin/intake
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/intake-dev/intake/pkg/cli.version=$(VERSION)
# Tests talk to this PostgreSQL (each package in a fresh schema). With CI=true
# a test that cannot reach it fails instead of skipping.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
export TEST_DATABASE_URL

.PHONY: all build run test test-short bench lint fmt clean

all: lint test build

## build: a static binary at bin/intake, version stamped
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/intake

## run: the embedded default (SQLite + files under ./data, 127.0.0.1:8080)
run: build
	./$(BIN) serve

## test: the whole suite, race detector on
test:
	$(GO) test -race -count=1 -timeout 20m ./...

## test-short: skips the slow end-to-end tests
test-short:
	$(GO) test -short -count=1 ./...

## bench: Go benchmarks (throughput against bare tusd, catalog costs)
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 -timeout 30m ./...

## lint: gofmt and go vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
