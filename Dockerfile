# vggish-go on CPUs: Debian 12's libtorch (1.13.1). Build with `make docker` (docker, podman or
# buildah); run with
#   docker run --rm -v "$PWD":/data vggish-go:cpu embed --out-dir /data/emb /data/audio
# The published weights are downloaded into the /cache volume at the first run (or mount a folder
# holding them there, or pass --weights). README.md: "Containers".
#
# BUILD_IMAGE needs Go >= go.mod's and Debian 12's apt (Debian 12's own golang is too old);
# BASE_IMAGE is the runtime's Debian 12. CI builds both from a debootstrapped root (make test-image).
ARG BUILD_IMAGE=docker.io/library/golang:1.25-bookworm
ARG BASE_IMAGE=docker.io/library/debian:bookworm-slim

FROM ${BUILD_IMAGE} AS build
# ffmpeg's libraries decode compressed audio in-process (decode/libav): their runtime packages
# (libavformat59 ...) reach the runtime stage through runtime-packages, below.
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        g++ libtorch-dev pkg-config libavformat-dev libavcodec-dev libavutil-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
# The whole context, less what .dockerignore keeps out (a checkout's go.work, .build and outputs), so
# that every package reaches the build (cmd/vggish-engine's TestDockerBuildContext checks it).
COPY . .
# The adapter builds gotch against Debian's libtorch. The runtime needs the Debian packages that hold
# the libraries the binary links to (libtorch's runtime package, not its -dev): found here, installed
# there.
RUN go run ./torch/adapt \
    && go build -trimpath -buildvcs=false -o /out/vggish ./cmd/vggish \
    && go build -trimpath -buildvcs=false -o /out/vggish-engine ./cmd/vggish-engine \
    && go build -trimpath -buildvcs=false -o /out/vggish-decoder ./cmd/vggish-decoder \
    && readelf -d /out/vggish-engine | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' \
        | while read -r lib; do dpkg -S "*/$lib" | sed -n '1s/:.*//p'; done | sort -u >/out/runtime-packages \
    && cat /out/runtime-packages

FROM ${BASE_IMAGE}
ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=https://github.com/vggish-go/vggish
LABEL org.opencontainers.image.title="vggish-go" \
      org.opencontainers.image.description="VGGish audio embeddings on libtorch (CPU)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"
COPY --from=build /out/runtime-packages /tmp/runtime-packages
# libopenblas0: libtorch recommends OpenBLAS as libblas.so.3; without it (--no-install-recommends) the
# reference BLAS would serve, slower and with other results than a Debian install of libtorch.
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates ffmpeg libopenblas0 $(cat /tmp/runtime-packages) \
    && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages \
    && useradd --system --uid 10001 --user-group --home-dir /cache --no-create-home vggish \
    && mkdir -m 1777 /cache && chown vggish:vggish /cache
# vggish, the front door (no libtorch: help, version and usage errors in milliseconds), and the
# engine it hands the commands that run the network to, found beside it.
COPY --from=build /out/vggish /usr/local/bin/vggish
COPY --from=build /out/vggish-engine /usr/local/bin/vggish-engine
# The decoding workers' program (no libtorch: a worker starts in 0.1 s), found beside the engine.
COPY --from=build /out/vggish-decoder /usr/local/bin/vggish-decoder
# A library missing from the runtime, or another BLAS, fails the build, not the first run.
RUN ! ldd /usr/local/bin/vggish /usr/local/bin/vggish-engine /usr/local/bin/vggish-decoder | grep 'not found' \
    && ldd /usr/local/bin/vggish-engine | grep -q openblas \
    && ! ldd /usr/local/bin/vggish | grep -q libtorch \
    && vggish version && vggish info
# The weights cache: a volume, so that it outlives the container and the root file system can be
# read-only; writable by any user (sticky, as /tmp), for `docker run --user`. The numeric user lets
# Kubernetes' runAsNonRoot check it.
ENV VGGISH_CACHE=/cache
# gotch makes $GOTCH_CACHE (default $HOME/.cache/gotch) when the program starts, and exits if it cannot:
# under `docker run --user` HOME is /, read-only with --read-only.
ENV GOTCH_CACHE=/cache/gotch
VOLUME /cache
USER 10001:10001
ENTRYPOINT ["vggish"]
CMD ["info"]
