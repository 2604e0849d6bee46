# syntax=docker/dockerfile:1
# Build: compile TypeScript with the dev dependencies, then keep only the
# production ones. Runtime: Node.js 24 on Debian slim (of the two maintained
# LTS lines, 22 and 24, the one supported longest: until April 2028, against
# April 2027 for 22; the code itself runs on Node >= 20.18), non-root, tini as
# PID 1 so SIGTERM reaches node and triggers the graceful drain.

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY bench ./bench
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim
# Set by the pipeline (docker build --build-arg, or docker/metadata-action's labels).
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="canary-proxy" \
      org.opencontainers.image.description="A reverse proxy that releases a new version safely: weighted stable/canary split, in-process analysis, automatic progression and rollback." \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.base.name="docker.io/library/node:24-bookworm-slim"
ENV NODE_ENV=production \
    CANARY_PROXY_CONFIG=/app/config/container.yaml
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# The code and config belong to root and are read-only for the node user that
# runs them; the only directory it can write is /app/data (state and audit).
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY package.json LICENSE README.md ./
COPY config/canary-proxy.yaml config/container.yaml ./config/
RUN mkdir -p /app/data && chown node:node /app/data
USER node
# data plane, admin plane (0.0.0.0 in config/container.yaml, with the required token)
EXPOSE 8080 9901
VOLUME ["/app/data"]
# Probes the admin port of the config `serve` reads (CANARY_PROXY_CONFIG), whatever it is.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "dist/src/healthcheck.js"]
ENTRYPOINT ["/usr/bin/tini", "--", "node", "dist/src/main.js"]
CMD ["serve"]
