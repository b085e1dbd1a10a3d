# vggish-go. `make test` and `make run` work on a fresh Debian/Ubuntu machine with Go >= 1.25:
# `setup` installs what is missing (libtorch, ffmpeg, the Python reference) and adapts gotch.

SHELL := /bin/bash
GO ?= go
# Debian/Ubuntu packages: libtorch and a C++ compiler for gotch, OpenBLAS (Debian 13's libtorch calls
# the generic libblas.so.3, which is the reference implementation unless OpenBLAS is there: the network
# ran 3x to 10x slower), ffmpeg's libraries (decode/libav) and command (standard input, and builds with
# -tags nolibav) for non-WAV audio, and the Python reference the parity tests run (always as
# /usr/bin/python3).
APT_PACKAGES := g++ libtorch-dev libopenblas0 pkg-config libavformat-dev libavcodec-dev libavutil-dev ffmpeg \
	python3-torch python3-numpy python3-scipy python3-resampy python3-soundfile
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
WEIGHTS ?=
# How long `make fuzz` runs each fuzz target, and `make test` (a smoke run, so that they stay runnable).
# The smoke run counts executions: Go 1.26's fuzzing coordinator can report its own -fuzztime deadline
# as a failure ("context deadline exceeded", no input: go.dev/issue/75804, fixed in Go 1.27), which
# a loaded CI machine hit; a count has no deadline.
FUZZTIME ?= 60s
TEST_FUZZTIME ?= 2000x

# Runs each fuzz target of the repository's tests for $(1); go test takes one target at a time.
fuzz_each = set -e; for f in $$(grep -rl --include='*_test.go' --exclude-dir=.build --exclude-dir=.cache '^func Fuzz' .); do \
	for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\).*/\1/p' $$f); do \
		echo "fuzz $$(dirname $$f) $$t for $(1)"; \
		$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(1) $$(dirname $$f); done; done

PARQUET_READER := internal/batch/batchtest/testdata/parquet-reader

.PHONY: setup deps apt-packages build test test-debian13 test-ffmpeg4 test-image bench fuzz run docker docker-cuda clean proto

setup: deps
	$(GO) run ./torch/adapt

# Installs only what is missing, so a warm machine pays a dpkg query. $LIBTORCH (an upstream libtorch)
# replaces libtorch-dev. Node runs the Parquet tests' reader (hyparquet, pinned by package-lock.json,
# installed into its git-ignored node_modules/); a node that is already there (Debian's or another)
# is used.
deps:
	@missing=$$(for p in $(APT_PACKAGES); do \
		[ "$$p" = libtorch-dev ] && [ -n "$$LIBTORCH" ] && continue; \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done; \
		command -v node >/dev/null || echo nodejs; command -v npm >/dev/null || echo npm); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null; then \
		echo "Not a Debian/Ubuntu machine: install these (or their equivalents) and re-run: $$missing" >&2; \
		echo "libtorch may instead be an upstream libtorch folder named by LIBTORCH=/path/to/libtorch." >&2; exit 1; fi; \
	echo "setup: installing $$missing"; \
	$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null
	@[ $(PARQUET_READER)/node_modules/.package-lock.json -nt $(PARQUET_READER)/package-lock.json ] || \
		(cd $(PARQUET_READER) && npm ci --no-audit --no-fund --loglevel=error)

# The Debian packages deps may install (CI's Debian 13 run downloads them ahead: .ci/debian13).
apt-packages:
	@echo $(APT_PACKAGES) nodejs npm

build: setup
	$(GO) build -o bin/vggish ./cmd/vggish
	$(GO) build -o bin/vggish-engine ./cmd/vggish-engine
	$(GO) build -o bin/vggish-decoder ./cmd/vggish-decoder

# The parity tests run the Python reference live; -count=1 because go test cannot see that input change.
# VGGISH_REQUIRE_REFERENCE=1 makes a reference that cannot run a failure (plain `go test` skips those
# tests, and runs the goldens' tests, which need no Python).
# The tests of the embeddings against the reference, at each precision, run verbosely: their figures
# (the README's) are printed.
FIGURES := ^(TestEmbeddingsMatchReference|TestPrecisionDrift)$$
# The race detector and the fuzz smoke runs exercise Go code alone, the same on every distribution:
# GO_CHECKS=0 skips them (CI's Debian 13 run does, sparing a race build of gotch's C++, ~4 minutes).
GO_CHECKS ?= 1
test bench: export VGGISH_REQUIRE_REFERENCE = 1
test: setup
	$(GO) mod verify
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 30m -skip '$(FIGURES)' ./...
	$(GO) test -count=1 -timeout 30m -run '$(FIGURES)' -v ./vggish/
	@if [ "$(GO_CHECKS)" = 1 ]; then set -x; $(GO) test -race -count=1 -run 'Concurrent|Closed' ./vggish/; fi
	@if [ "$(GO_CHECKS)" = 1 ]; then $(call fuzz_each,$(TEST_FUZZTIME)); fi

# `make run` and `make test` on Debian 13 (libtorch 2.6, torch 2.6, ffmpeg 7) from a clean clone of HEAD,
# in a fresh copy of a debootstrapped root cached in .cache/debian13 (see .ci/debian13). Needs root.
test-debian13:
	GO="$(GO)" .ci/debian13

# decode/libav's tests against ffmpeg 4 (Debian 11's 4.3; the CUDA image builds against Ubuntu 22.04's
# 4.4) in a debootstrapped root cached in .cache/debian11 (see .ci/ffmpeg4). Needs root; not in CI.
test-ffmpeg4:
	GO="$(GO)" .ci/ffmpeg4

# Benchmarks report the Python reference's time on the same input and thread count beside their own
# (ref-ms/op) and the speed-up over it (x-reference). BenchmarkMemory embeds 10,000 clips once.
bench: setup
	$(GO) test -run '^$$' -bench . -skip Memory -benchtime 3x -timeout 60m ./...
	$(GO) test -run '^$$' -bench Memory -benchtime 1x -timeout 60m ./vggish/

fuzz: setup
	@$(call fuzz_each,$(FUZZTIME))

# The main job: embeddings of a folder of synthesised WAVs printed the way a Towhee pipeline's show()
# does, then written to testdata/gen/out (one .npy per file, vggish-run.json). WEIGHTS=FILE uses that
# state dict; otherwise the published weights are downloaded once, and where they cannot be (no
# internet) seeded random demo weights are generated instead, with a warning.
DEMO := testdata/gen
PYTHON = $${VGGISH_PYTHON:-/usr/bin/python3}
run: build $(DEMO)/audio/manifest.json
	@set -e; weights="$(WEIGHTS)"; \
	if [ -z "$$weights" ] && ! weights=$$(./bin/vggish weights download model); then \
		weights=$(DEMO)/demo-weights.pth; \
		echo "make run: *** the published weights could not be downloaded: using DEMO WEIGHTS, NOT THE PUBLISHED ONES ***" >&2; \
		echo "make run: *** seeded random weights ($$weights, from testdata/make_weights.py): the numbers below mean nothing ***" >&2; \
		$(MAKE) --no-print-directory $$weights; \
	fi; \
	set -x; \
	./bin/vggish embed --weights "$$weights" $(DEMO)/audio; \
	./bin/vggish embed --weights "$$weights" --overwrite --out-dir $(DEMO)/out $(DEMO)/audio; \
	ls -l $(DEMO)/out | head -8

# Regenerates serve/inference's gRPC code from its .proto (not part of test: the generated code is
# committed). Needs Debian's protobuf-compiler; the plugins match go.mod's protobuf and grpc.
PROTOC_GEN_GO := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GO_GRPC := google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
proto:
	command -v protoc >/dev/null || $(SUDO) apt-get install -y protobuf-compiler
	GOBIN=$(CURDIR)/.build/bin $(GO) install $(PROTOC_GEN_GO) $(PROTOC_GEN_GO_GRPC)
	PATH=$(CURDIR)/.build/bin:$$PATH protoc --proto_path=serve/inference \
		--go_out=serve/inference --go_opt=paths=source_relative \
		--go-grpc_out=serve/inference --go-grpc_opt=paths=source_relative serve/inference/grpc_predict_v2.proto

# The demo's inputs: seeded random weights in the published layout, and synthesised WAVs.
$(DEMO)/demo-weights.pth:
	$(PYTHON) testdata/make_weights.py --seed 1 --out $@
$(DEMO)/audio/manifest.json:
	$(PYTHON) testdata/reference.py synth --out $(DEMO)/audio >/dev/null

# Container images (README "Containers"): with docker when its daemon answers, else podman, else
# buildah (ENGINE=... chooses); the OCI labels get this checkout's version and commit, and
# DOCKER_BUILD_ARGS is passed on (e.g. "--build-arg BASE_IMAGE=..."). $(1): the Dockerfile, $(2): the tag.
DOCKER_BUILD_ARGS ?=
define image
@set -e; engine=$${ENGINE:-}; \
if [ -z "$$engine" ]; then \
	if command -v docker >/dev/null && docker info >/dev/null 2>&1; then engine=docker; \
	else command -v docker >/dev/null && echo "docker is installed but its daemon does not answer" >&2; \
		for e in podman buildah; do command -v $$e >/dev/null && { engine=$$e; break; }; done; fi; \
fi; \
[ -n "$$engine" ] || { echo "no container engine: install docker, podman or buildah" >&2; exit 1; }; \
echo "building $(2) from $(1) with $$engine"; \
case $$engine in buildah) build="bud --layers --isolation $${BUILDAH_ISOLATION:-chroot}";; *) build=build;; esac; \
set -x; $$engine $$build -f $(1) -t $(2) $(DOCKER_BUILD_ARGS) \
	--build-arg VERSION="$$(git describe --tags --always --dirty 2>/dev/null || echo dev)" \
	--build-arg REVISION="$$(git rev-parse HEAD 2>/dev/null || echo unknown)" .
endef

docker:
	$(call image,Dockerfile,vggish-go:cpu)

docker-cuda:
	$(call image,Dockerfile.cuda,vggish-go:cuda)

# Builds the CPU image with buildah from a debootstrapped Debian 12 base (cached in .cache/debian12)
# and checks that its embeddings of the demo audio equal the host binary's byte for byte, that it runs
# as a user other than root, and its info and version (see .ci/test-image). Needs root.
test-image: build $(DEMO)/demo-weights.pth $(DEMO)/audio/manifest.json
	GO="$(GO)" .ci/test-image bin/vggish $(DEMO)/demo-weights.pth $(DEMO)/audio

clean:
	rm -rf bin .build go.work go.work.sum testdata/gen .cache $(PARQUET_READER)/node_modules
