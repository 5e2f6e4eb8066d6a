# tunctl: build, test, demo. See README.md.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
export CGO_ENABLED := 0
GO ?= go
REBAR3 ?= rebar3
PORT := priv/tunctl_port
# Every non-test Go file tunctl_port is built from, its dependencies' too
# (go list -deps), so that a change in any package (policy/, sandbox/, ...)
# rebuilds it. check-gosrc checks it.
GOSRC := $(shell $(GO) list -deps -f '{{if not .Standard}}{{range .GoFiles}}{{$$.Dir}}/{{.}} {{end}}{{end}}' ./cmd/tunctl_port) go.mod go.sum
INNS := scripts/in-netns
# make test's fuzzing slice is bounded by executions, not time: a -fuzztime
# duration can end a clean run with "context deadline exceeded" under load
# (golang/go#75804, fixed in Go 1.27). make fuzz FUZZTIME=10m runs by time.
FUZZTIME ?=
FUZZ_N = $(if $(FUZZTIME),$(FUZZTIME),$(1))
EBIN := erlang/_build/default/lib/tunctl/ebin

.PHONY: all deps erlang examples test check-format vet check-gosrc test-go test-go-integration fuzz-short fuzz \
        test-erlang xref dialyzer eunit ct test-unpriv test-unpriv-ct demo bench setcap clean \
        docs test-examples test-ecosystem demo-reflector generate

all: $(PORT) erlang examples

$(PORT): $(GOSRC)
	@mkdir -p priv
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o $@ ./cmd/tunctl_port

erlang: $(PORT)
	cd erlang && $(REBAR3) compile

examples: erlang
	@mkdir -p examples/ebin
	erlc -o examples/ebin -pa $(EBIN) examples/*.erl

deps:
	scripts/deps.sh

# The protocol's vocabulary is declared in Go (portproto/spec.go, table.go):
# render it into doc/protocol.md's tables and the Erlang header. Commit the
# result; portproto's TestGeneratedFilesCurrent (make test-go) fails when
# they are stale.
generate:
	$(GO) run ./cmd/tunctl_gen -doc doc/protocol.md -hrl erlang/include/tunctl_proto.hrl

# Everything, in the order a failure is cheapest to find.
test: deps
	$(MAKE) check-format vet test-go fuzz-short $(PORT) check-gosrc test-go-integration test-erlang \
	    docs test-ecosystem
	@echo "make test: all stages passed"

check-format:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi

vet:
	$(GO) vet ./...

# The binary depends on every package it is built from: pretending any of
# their files changed (make -W) must make $(PORT) out of date.
check-gosrc: $(PORT)
	@for d in $$($(GO) list -deps -f '{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}' ./cmd/tunctl_port); do \
	    f=$$(ls $$d/*.go | grep -v '_test.go$$' | head -1); \
	    if $(MAKE) -f $(firstword $(MAKEFILE_LIST)) -q -W $$f $(PORT) >/dev/null 2>&1; then echo "GOSRC misses $$f: $(PORT) would stay stale"; exit 1; fi; \
	done; echo "check-gosrc: $(PORT) depends on every package it is built from"

test-go:
	CGO_ENABLED=1 $(GO) test -count=1 -race ./etf/... ./portproto/... ./device/... ./sandbox/... ./policy/... ./gro/... ./cmd/...

test-go-integration:
	TUNCTL_REQUIRE_NETNS=1 $(INNS) $(GO) test -count=1 -v ./test/... 2>&1 | grep -Ev '^(=== RUN|=== PAUSE|=== CONT)' ; exit $${PIPESTATUS[0]}

fuzz-short:
	$(GO) test ./etf -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(call FUZZ_N,150000x)
	$(GO) test ./portproto -run '^$$' -fuzz '^FuzzParseSend$$' -fuzztime $(call FUZZ_N,150000x)
	$(GO) test ./portproto -run '^$$' -fuzz '^FuzzParseSendv$$' -fuzztime $(call FUZZ_N,150000x)
	$(GO) test ./portproto -run '^$$' -fuzz '^FuzzHandle$$' -fuzztime $(call FUZZ_N,10000x)
	$(GO) test ./policy -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(call FUZZ_N,150000x)
	$(GO) test ./gro -run '^$$' -fuzz '^FuzzPlan$$' -fuzztime $(call FUZZ_N,75000x)

# make fuzz FUZZTIME=10m
fuzz: FUZZTIME = 2m
fuzz: fuzz-short

test-erlang: xref dialyzer eunit ct test-unpriv

xref: $(PORT)
	cd erlang && $(REBAR3) xref

dialyzer: $(PORT)
	cd erlang && $(REBAR3) dialyzer

eunit: $(PORT)
	cd erlang && $(REBAR3) eunit

ct: $(PORT) examples
	cd erlang && TUNCTL_REQUIRE_NETNS=1 ../$(INNS) $(REBAR3) ct --readable=true

# The examples' suite alone (ct runs it too): reflector, br, vpwn.
test-examples: $(PORT) examples
	cd erlang && TUNCTL_REQUIRE_NETNS=1 ../$(INNS) $(REBAR3) ct --suite=examples_SUITE --readable=true

# A throwaway rebar3 project and a throwaway mix project that depend on this
# repository (git), build it with their own tools and move a packet with it.
test-ecosystem:
	$(INNS) scripts/test-ecosystem.sh

# API documentation (erlang/doc/), checked: every exported function of every
# public module is documented.
docs: erlang
	cd erlang && $(REBAR3) edoc
	escript scripts/check-edoc.escript erlang/src $(EBIN) erlang/doc

# The CT suites' unprivileged counterpart: uid 65534, setcap'd binary only.
test-unpriv: $(PORT) erlang
	$(INNS) scripts/unpriv-test.sh

test-unpriv-ct: $(PORT) erlang
	$(INNS) scripts/unpriv-ct.sh

demo: deps all
	$(INNS) scripts/demo.sh

# The first demo: a TUN device answering ping and UDP (examples/reflector.erl).
demo-reflector: deps all
	$(INNS) scripts/demo-reflector.sh

bench: deps all
	$(INNS) scripts/bench.sh

# File capabilities are lost whenever the binary is rebuilt or copied.
setcap: $(PORT)
	setcap cap_net_admin=ep $(PORT)
	getcap $(PORT)

clean:
	rm -rf priv/tunctl_port erlang/_build examples/ebin
