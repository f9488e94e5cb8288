# posd: the two commands a newcomer needs are `make run` and `make test`.
SHELL   := /bin/bash
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN     := bin

.PHONY: all build run test bench bench-once lint fuzz cross clean chaos soak deb install sim box bench-journal

PREFIX  ?= /usr/local
DESTDIR ?=
ARCH    ?= $(shell go env GOARCH)
# A tag v1.2.3 is 1.2.3; otherwise 0~COUNT+HASH, so that versions sort by
# commit and the package's downgrade check means something.
COMMITS := $(shell git rev-list --count HEAD 2>/dev/null || echo 0)
DEBVER  ?= $(shell echo '$(VERSION)' | sed -e 's/^v\([0-9]\)/\1/;t' -e 's/^/0~$(COMMITS)+/' | sed 's/[^0-9A-Za-z.+~]/+/g')

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/posd ./cmd/posd
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/posctl ./cmd/posctl
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/posd-hq ./cmd/posd-hq

# posd on the embedded sandbox gateway: type a payment code and Enter.
run: build
	$(BIN)/posd run -config config.yaml

# The whole suite, race detector on. It ends by naming the tests that
# skipped (a tool this machine lacks: QEMU, Chromium...), as a green run
# does not say what it left out. The raw stream is kept in bin/test.json.
# PKGS narrows it: make test PKGS=./payment/...
PKGS ?= ./...
test:
	@mkdir -p $(BIN)
	set -o pipefail; $(GO) test -race -count=1 -timeout 25m -json $(PKGS) | tee $(BIN)/test.json | $(GO) run ./.ci/testsum

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Every benchmark once, at small sizes (their environment variables): one
# that no longer finishes fails CI. The figures come from make bench and
# the commands docs/performance.md names.
bench-once:
	POSD_FLEET_BOXES=20 POSD_HQ_EVENTS=2000 POSD_EXPORT_ORDERS=2000 $(GO) test -run '^$$' -bench . -benchtime 1x -timeout 15m ./...

STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

# The journal at the scale of years (docs/performance.md): 400,000 orders,
# the page cache dropped first (root), posd started and pruning measured.
bench-journal:
	POSD_JOURNAL_ORDERS=400000 POSD_JOURNAL_COLD=1 $(GO) test -count=1 -timeout 20m -run '^TestJournalAtScale$$' -v ./test/e2e

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) mod tidy -diff
	$(GO) run $(STATICCHECK) ./...

# Each fuzz target for a bounded number of executions. Counts, not
# durations: Go 1.26 reports a spurious "context deadline exceeded" when a
# duration-based -fuzztime ends on a busy machine (golang/go#75804).
# FUZZTIME=200000x (or 60s) for a longer run.
FUZZTIME ?= 10000x
fuzz:
	$(GO) test ./payment -run '^$$' -fuzz '^FuzzDecodeEnvelope$$' -fuzztime $(FUZZTIME)
	$(GO) test ./payment -run '^$$' -fuzz '^FuzzClassify$$' -fuzztime $(FUZZTIME)
	$(GO) test ./scanner -run '^$$' -fuzz '^FuzzRoute$$' -fuzztime $(FUZZTIME)
	$(GO) test ./scanner -run '^$$' -fuzz '^FuzzDecoders$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/config -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)
	$(GO) test ./display -run '^$$' -fuzz '^FuzzParseVFD$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/natsauth -run '^$$' -fuzz '^FuzzOption$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/api -run '^$$' -fuzz '^FuzzAPIBodies$$' -fuzztime $(FUZZTIME)

# The deterministic simulation of the whole daemon (internal/sim, see
# docs/reliability.md): SEEDS seeds from SEED with EVENTS events each, race
# detector on, then the seeds that ever failed. It prints how often it
# reached each transition of the state machine, and fails, at CI's budget
# or more, if one was never reached; then each money-path defect
# (internal/defect), put back on purpose (-tags posd_defects), must be caught
# within DEFECT_SEEDS seeds of DEFECT_EVENTS events. REGRESSIONS=0 leaves
# out the seeds that ever failed (CI: make test has just run them).
#   make sim SEED=123 SEEDS=1 EVENTS=20000   replays one seed
sim: SEED ?= 1
sim: SEEDS ?= 100
sim: EVENTS ?= 5000
sim: DEFECT_SEEDS ?= 40
sim: DEFECT_EVENTS ?= 5000
sim: REGRESSIONS ?= 1
sim:
	set -o pipefail; POSD_SIM_SEED=$(SEED) POSD_SIM_SEEDS=$(SEEDS) POSD_SIM_EVENTS=$(EVENTS) POSD_SIM_COVERAGE=1 $(GO) test -race -count=1 -timeout 0 -run '^TestSimulation$(if $(filter 1,$(REGRESSIONS)),(Regressions)?)$$' -v ./internal/sim 2>&1 | grep -v '^\s*--- PASS: TestSimulation/seeds/\|^=== \(RUN\|PAUSE\|CONT\)'
	POSD_SIM_DEFECT_SEEDS=$(DEFECT_SEEDS) POSD_SIM_DEFECT_EVENTS=$(DEFECT_EVENTS) $(GO) test -race -tags posd_defects -count=1 -timeout 0 -run '^TestSimulationCatchesDefects$$' -v ./internal/sim

# More chaos than CI's one round: make chaos ROUNDS=20 [SEED=N]
ROUNDS ?= 5
chaos:
	POSD_CHAOS_ROUNDS=$(ROUNDS) $(if $(SEED),POSD_CHAOS_SEED=$(SEED)) $(GO) test -race -count=1 -run '^TestChaos$$' -v -timeout 0 ./test/e2e

# A longer soak than CI's: make soak PAYMENTS=20000
PAYMENTS ?= 10000
soak:
	POSD_SOAK_PAYMENTS=$(PAYMENTS) $(GO) test -count=1 -run '^TestSoak$$' -v -timeout 0 ./internal/daemon

# Static cross builds for the boxes posd runs on.
cross:
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/posd-linux-amd64 ./cmd/posd
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/posd-linux-arm64 ./cmd/posd
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/posd-linux-arm ./cmd/posd

# A plain install: binaries, unit, udev rules, the config template.
install: build
	install -D -m 0755 $(BIN)/posd $(DESTDIR)$(PREFIX)/bin/posd
	install -D -m 0755 $(BIN)/posctl $(DESTDIR)$(PREFIX)/bin/posctl
	install -D -m 0644 systemd/posd.service $(DESTDIR)/etc/systemd/system/posd.service
	sed -i 's#/usr/bin/posd#$(PREFIX)/bin/posd#g' $(DESTDIR)/etc/systemd/system/posd.service
	install -D -m 0644 systemd/99-posd.rules $(DESTDIR)/etc/udev/rules.d/99-posd.rules
	[ -e $(DESTDIR)/etc/posd/config.yaml ] || install -D -m 0640 packaging/config.yaml $(DESTDIR)/etc/posd/config.yaml
	# The service reads its config as group posd (root:posd 0640).
	if getent group posd >/dev/null; then chgrp posd $(DESTDIR)/etc/posd $(DESTDIR)/etc/posd/config.yaml; chmod 0750 $(DESTDIR)/etc/posd; fi

# The Debian package: bin/posd_VERSION_ARCH.deb
deb: build
	rm -rf $(BIN)/deb && mkdir -p $(BIN)/deb/DEBIAN
	install -D -m 0755 $(BIN)/posd $(BIN)/deb/usr/bin/posd
	install -D -m 0755 $(BIN)/posctl $(BIN)/deb/usr/bin/posctl
	install -D -m 0644 systemd/posd.service $(BIN)/deb/lib/systemd/system/posd.service
	install -D -m 0644 systemd/99-posd.rules $(BIN)/deb/lib/udev/rules.d/99-posd.rules
	install -D -m 0644 systemd/posd-modules.conf $(BIN)/deb/usr/lib/modules-load.d/posd.conf
	install -D -m 0640 packaging/config.yaml $(BIN)/deb/etc/posd/config.yaml
	install -D -m 0644 README.md $(BIN)/deb/usr/share/doc/posd/README.md
	install -m 0644 packaging/debian/conffiles $(BIN)/deb/DEBIAN/conffiles
	install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm $(BIN)/deb/DEBIAN/
	sed 's/@VERSION@/$(DEBVER)/' packaging/debian/preinst.in > $(BIN)/deb/DEBIAN/preinst && chmod 0755 $(BIN)/deb/DEBIAN/preinst
	sed 's/@VERSION@/$(DEBVER)/; s/@ARCH@/$(ARCH)/' packaging/debian/control.in > $(BIN)/deb/DEBIAN/control
	dpkg-deb --root-owner-group --build $(BIN)/deb $(BIN)/posd_$(DEBVER)_$(ARCH).deb

# The installed box (TestInstalledBox): a Debian guest with
# systemd under QEMU (.ci/box-image builds it once, as root, into
# BOX_CACHE), the package made by `make deb` installed as the README says,
# the service checked. The guest's console, the test's transcript and
# posd's journal are left in $(BIN)/box/.
BOX_CACHE ?= /var/cache/posd-box
box:
	@mkdir -p $(BIN)/box
	dir=$$(bash .ci/box-image $(BOX_CACHE)) && POSD_BOX_DIR=$$dir POSD_BOX_LOG_DIR=$(abspath $(BIN))/box POSD_REQUIRE_ALL=1 \
	  $(GO) test -race -count=1 -timeout 20m -run '^TestInstalledBox$$' -v ./test/box

clean:
	rm -rf $(BIN) var
