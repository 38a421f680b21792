# katafs: `make run` and `make test` do all set-up on a fresh Debian machine.
SHELL      := /bin/bash
GO         ?= go
GUEST      := build/guest
STATE_DIR  ?= /var/lib/katafs
MOUNTPOINT ?= /kata
VERSION    ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
GOFILES    := $(shell find . -name '*.go' -not -path './build/*' 2>/dev/null) go.mod go.sum
LDFLAGS    := -X github.com/katafs/katafs/sandbox.Version=$(VERSION)

.PHONY: all deps build guest run test unit shelltest bench proto check fmt vet clean

all: build

deps: build/.deps
build/.deps: scripts/install-deps.sh
	@mkdir -p build
	@scripts/install-deps.sh
	@touch $@

build: deps bin/katafs guest

bin/katafs: $(GOFILES)
	@echo "build: bin/katafs"
	@$(GO) build -ldflags '$(LDFLAGS)' -o $@ ./cmd/katafs

bin/katafs-agent: $(GOFILES)
	@echo "build: bin/katafs-agent (static)"
	@CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $@ ./cmd/katafs-agent

guest: deps bin/katafs-agent
	@guest/build.sh $(GUEST) bin/katafs-agent

run: build
	bin/katafs mount --state-dir $(STATE_DIR) $(MOUNTPOINT)

check: build
	bin/katafs check

# Unit tests and real-VM Go tests, then the shell tests on a real mount.
test: build vet unit shelltest

unit:
	$(GO) test -count=1 -timeout 15m ./...

shelltest: build
	bats --timing shelltests/

bench: build
	@scripts/bench.sh

proto:
	@agent/proto/gen.sh

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...

clean:
	rm -rf bin build/guest
