# jobs: multi-stage build from the repository root (the Go workspace), alpine runtime.
#   docker build -f deploy/docker/jobs.Dockerfile -t switchyard/jobs .
FROM golang:1.26-alpine AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/jobs ./jobs/cmd/jobs

FROM alpine:3.22
RUN apk add --no-cache ca-certificates tzdata && adduser -D -u 10001 switchyard
USER switchyard
COPY --from=build /out/jobs /usr/local/bin/jobs
EXPOSE 8084
HEALTHCHECK --interval=10s --timeout=3s --retries=5 CMD wget -qO- http://127.0.0.1:8084/healthz >/dev/null || exit 1
ENTRYPOINT ["/usr/local/bin/jobs"]
CMD ["serve"]
