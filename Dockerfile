# Keyflow in one image: the control plane (the default command), the workers, the dashboard and the migrations,
# each run with the command docker-compose.yml gives it. Building needs only the npm registry (and Debian's
# packages): Prisma's client is generated offline (packages/db/scripts/generate.mjs), no engine is downloaded.
ARG NODE_IMAGE=node:20-bookworm-slim

# The dependencies of the lockfile, fetched into pnpm's store: code changes reuse this layer.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
ENV CI=true NEXT_TELEMETRY_DISABLED=1
RUN npm install --global pnpm@10.34.8 && npm cache clean --force
COPY pnpm-lock.yaml pnpm-workspace.yaml ./
RUN pnpm fetch

# Everything installed, the Prisma client generated (packages/db's postinstall) and the dashboard built.
FROM deps AS build
COPY . .
RUN pnpm install --offline --frozen-lockfile \
  && pnpm --filter @keyflow/web build \
  && rm -rf apps/web/.next/cache

# What runs: production dependencies only (no compilers, test runners, Prisma CLI or embedded Postgres). The root
# has none of its own: its scripts (migrate, sink-role) resolve @keyflow/db and tsx through the control plane's.
FROM deps AS prod
COPY . .
RUN pnpm install --offline --frozen-lockfile --prod --ignore-scripts \
  && ln -s ../apps/control/node_modules/@keyflow node_modules/@keyflow \
  && ln -s ../apps/control/node_modules/tsx node_modules/tsx \
  && rm -rf e2e docs .ci
COPY --from=build /app/packages/db/src/generated packages/db/src/generated
COPY --from=build /app/apps/web/.next apps/web/.next

FROM ${NODE_IMAGE}
# KEYFLOW_HEALTH_URL is what the HEALTHCHECK asks; each service sets its own (empty: nothing to ask, as for a worker).
ENV NODE_ENV=production NEXT_TELEMETRY_DISABLED=1 KEYFLOW_HEALTH_URL=http://127.0.0.1:4000/api/health
COPY --from=prod /app /app
# Files stay root's, read-only to the app; only Next's cache is written to.
RUN mkdir -p /app/apps/web/.next/cache && chown -R node:node /app/apps/web/.next/cache
USER node
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "const u = process.env.KEYFLOW_HEALTH_URL; if (!u) process.exit(0); fetch(u, { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
WORKDIR /app/apps/control
EXPOSE 4000 3000
CMD ["node", "--import", "tsx", "src/main.ts"]
