# syntax=docker/dockerfile:1
# Build: compile TypeScript with the dev dependencies, then keep only the
# production ones. Runtime: a current Node.js LTS on Debian slim, non-root,
# tini as PID 1 so SIGTERM reaches node and triggers the graceful drain.

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY bench ./bench
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim
ENV NODE_ENV=production
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist/src ./dist/src
COPY --chown=node:node package.json ./
COPY --chown=node:node config/canary-proxy.yaml ./config/canary-proxy.yaml
RUN mkdir -p /app/data && chown node:node /app/data
USER node
# data plane, admin plane (the admin API stays on loopback unless configured with a token)
EXPOSE 8080 9901
# state.file and audit.file default to data/: keep them across containers
VOLUME ["/app/data"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9901/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--", "node", "dist/src/main.js"]
CMD ["serve", "--config", "config/canary-proxy.yaml"]
