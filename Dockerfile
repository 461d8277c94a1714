# syntax=docker/dockerfile:1
#
# meshlimit image: `docker build -t meshlimit:0.1.0 .` from a clean clone (BuildKit, the default
# builder since Docker 23). Multi-stage: dependencies and the TypeScript build in one stage, a
# small runtime stage with production dependencies only, running as the unprivileged `node` user.
#
# The same image runs the sample user service: `node dist/sample/user-service/main.js`.
#
# Node: 26, the active LTS line since October 2026, one of the lines package.json's `engines`
# names (^20.12 || ^22 || ^24 || >=26; test/unit/tooling/node-versions.test.ts keeps the two and
# README.md in step). `--build-arg NODE_VERSION=24` (or 22) builds on an older LTS line. Pin the
# base by digest in production (docker buildx imagetools inspect).
ARG NODE_VERSION=26

FROM node:${NODE_VERSION}-alpine AS build
WORKDIR /app
# Dependencies first: this layer is rebuilt only when the lockfile changes.
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY scripts ./scripts
# Compile to dist/, then drop devDependencies (typescript, vitest, ...) from node_modules.
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM node:${NODE_VERSION}-alpine AS runtime
ENV NODE_ENV=production
WORKDIR /app
# Everything owned by root and not writable by the `node` user the process runs as.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Read at run time relative to the app root: Lua scripts (found next to package.json), the
# proto files (dist/server/grpc -> ../../../proto), the example config (CONFIG_DIR=./config), and
# the CLI (`node bin/meshlimit.js check-config <dir>`).
COPY lua ./lua
COPY console ./console
COPY proto ./proto
COPY config ./config
COPY bin ./bin
USER node
# HTTP admin (/healthcheck, /json, /rlconfig, /metrics) and gRPC (RLS v3, grpc.health.v1).
EXPOSE 8080 8081
# For plain Docker/compose; Kubernetes ignores it and uses the Deployment's probes. Assumes the
# default PORT=8080.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD wget -q -O /dev/null http://127.0.0.1:8080/healthcheck || exit 1
# node directly as PID 1 (no npm wrapper): it receives SIGTERM and drains (GRACEFUL_SHUTDOWN_MS).
# The same command as `npm start` (test/deploy/docker.test.ts checks): a 32 MiB young-generation
# semi-space cuts garbage-collection work per request (benchmarks/README.md).
CMD ["node", "--max-semi-space-size=32", "dist/main.js"]
