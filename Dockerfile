# syntax=docker/dockerfile:1
#
# intake's container image: one static binary on Alpine, run as a non-root
# user, serving on :8080 with its data under /data.
#
#   docker build --build-arg VERSION="$(git describe --tags --always --dirty)" -t intake .
#   docker run -p 8080:8080 -v intake-data:/data intake
#
# Alpine rather than distroless: intake has no self-check subcommand, and the
# health check needs a client; BusyBox wget is in the base image. Alpine's
# base image also carries the CA certificates that https S3 endpoints need.
#
# internal/deploytest checks this file: every image pinned to an exact tag,
# the builder's Go at least go.mod's go line and of the same minor version,
# a non-root USER in the final stage, and the version variable -X stamps.

FROM golang:1.26.8-bookworm AS build
# local: a go.mod newer than this image fails the build instead of quietly
# downloading another toolchain.
ENV GOTOOLCHAIN=local
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
# CGO_ENABLED=0: the binary must not link glibc, which Alpine does not have.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/intake-dev/intake/pkg/cli.version=${VERSION}" -o /out/intake ./cmd/intake

FROM alpine:3.22.2
# A numeric uid/gid, so that runtimes can tell it is not root without
# reading /etc/passwd (Kubernetes runAsNonRoot). /data is created owned by
# it: a new named volume mounted there takes that ownership.
RUN addgroup -S -g 10001 intake \
    && adduser -S -D -H -u 10001 -G intake -h /data intake \
    && mkdir /data \
    && chown intake:intake /data
COPY --from=build /out/intake /intake
# Inside a container intake must listen on all interfaces; its default,
# 127.0.0.1, would be unreachable through a published port.
ENV INTAKE_LISTEN=:8080 INTAKE_DATA_DIR=/data
USER 10001:10001
WORKDIR /data
VOLUME /data
EXPOSE 8080
# /readyz answers 503 while the catalog or the store is unreachable.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/readyz"]
ENTRYPOINT ["/intake"]
CMD ["serve"]
