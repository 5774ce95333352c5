# evalrelay: multi-stage build from the repository root (the Go workspace), alpine runtime.
#   docker build -f deploy/docker/evalrelay.Dockerfile -t switchyard/evalrelay .
FROM golang:1.26-alpine AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/evalrelay ./evalrelay/cmd/evalrelay

FROM alpine:3.22
RUN apk add --no-cache ca-certificates tzdata && adduser -D -u 10001 switchyard \
    && mkdir -p /var/lib/switchyard/evalrelay && chown -R switchyard /var/lib/switchyard
USER switchyard
COPY --from=build /out/evalrelay /usr/local/bin/evalrelay
EXPOSE 8081
HEALTHCHECK --interval=10s --timeout=3s --retries=5 CMD wget -qO- http://127.0.0.1:8081/healthz >/dev/null || exit 1
ENTRYPOINT ["/usr/local/bin/evalrelay"]
CMD ["serve"]
