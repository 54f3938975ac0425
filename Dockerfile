# syntax=docker/dockerfile:1
# envoy-lifecycle: one static binary on scratch, running as nonroot.
#
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg VERSION=v1.2.3 --build-arg COMMIT=$(git rev-parse --short HEAD) -t envoy-lifecycle .
#
# Wrap mode, in the app's own image:
#   COPY --from=envoy-lifecycle /envoy-lifecycle /usr/local/bin/
# image_test.go builds the binary with the same flags and checks that it is
# static and runs as PID 1 in a root filesystem holding nothing else.

# The builder runs on the build machine's platform and cross-compiles, so a
# multi-arch build needs no emulation. nethttpomithttp2 leaves out net/http's
# bundled HTTP/2 (about 530 KB): Envoy's admin, pilot-agent and kubelet's
# httpGet hooks all speak HTTP/1.1.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS TARGETARCH VERSION=dev COMMIT=none
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -tags nethttpomithttp2 -trimpath -ldflags "-s -w -X main.version=$VERSION -X main.commit=$COMMIT" -o /out/envoy-lifecycle .
# scratch has no /tmp, where the shutdown manager writes its ready file by
# default.
RUN mkdir -p /out/tmp && chmod 1777 /out/tmp

# scratch rather than distroless: the binary needs no libc, CA bundle, tzdata
# or passwd file (it talks to Envoy on loopback and runs as a numeric user),
# and the image stays at the binary's size, under 10 MB.
FROM scratch
COPY --from=build /out/tmp /tmp
COPY --from=build /out/envoy-lifecycle /envoy-lifecycle
USER 65532:65532
ENTRYPOINT ["/envoy-lifecycle"]
