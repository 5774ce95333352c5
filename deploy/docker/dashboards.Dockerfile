# dashboards: the web app built with Node, embedded by the Go server; alpine runtime.
#   docker build -f deploy/docker/dashboards.Dockerfile -t switchyard/dashboards .
FROM node:20-alpine AS web
WORKDIR /src/dashboards/web
COPY dashboards/web/package.json dashboards/web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY dashboards/web/ ./
RUN npx vite build --logLevel warn

FROM golang:1.26-alpine AS build
WORKDIR /src
COPY . .
COPY --from=web /src/dashboards/web/dist ./dashboards/web/dist
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/dashboards ./dashboards/cmd/dashboards

FROM alpine:3.22
RUN apk add --no-cache ca-certificates tzdata && adduser -D -u 10001 switchyard \
    && mkdir -p /var/lib/switchyard/dashboards && chown -R switchyard /var/lib/switchyard
USER switchyard
COPY --from=build /out/dashboards /usr/local/bin/dashboards
EXPOSE 8085
HEALTHCHECK --interval=10s --timeout=3s --retries=5 CMD wget -qO- http://127.0.0.1:8085/healthz >/dev/null || exit 1
ENTRYPOINT ["/usr/local/bin/dashboards"]
CMD ["serve"]
