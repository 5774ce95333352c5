# ingest: multi-stage build from the repository root (the Go workspace), alpine runtime.
#   docker build -f deploy/docker/ingest.Dockerfile -t switchyard/ingest .
FROM golang:1.26-alpine AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ingest ./ingest/cmd/ingest

FROM alpine:3.22
RUN apk add --no-cache ca-certificates tzdata && adduser -D -u 10001 switchyard \
    && mkdir -p /var/lib/switchyard/ingest && chown -R switchyard /var/lib/switchyard
USER switchyard
COPY --from=build /out/ingest /usr/local/bin/ingest
EXPOSE 8082
HEALTHCHECK --interval=10s --timeout=3s --retries=5 CMD wget -qO- http://127.0.0.1:8082/healthz >/dev/null || exit 1
ENTRYPOINT ["/usr/local/bin/ingest"]
CMD ["serve"]
