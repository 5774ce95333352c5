# stats: multi-stage build from the repository root (the Go workspace), alpine runtime.
#   docker build -f deploy/docker/stats.Dockerfile -t switchyard/stats .
FROM golang:1.26-alpine AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/stats ./stats/cmd/stats

FROM alpine:3.22
RUN apk add --no-cache ca-certificates tzdata && adduser -D -u 10001 switchyard \
    && mkdir -p /var/lib/switchyard/stats && chown -R switchyard /var/lib/switchyard
USER switchyard
COPY --from=build /out/stats /usr/local/bin/stats
EXPOSE 8083
HEALTHCHECK --interval=10s --timeout=3s --retries=5 CMD wget -qO- http://127.0.0.1:8083/healthz >/dev/null || exit 1
ENTRYPOINT ["/usr/local/bin/stats"]
CMD ["serve"]
