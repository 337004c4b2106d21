# Keyflow's control plane and worker (one image, two commands); used by docker-compose.yml.
FROM node:20-bookworm-slim
WORKDIR /app
ENV CI=true

# Dependencies first, from the lockfile alone, so that code changes reuse this layer.
COPY pnpm-lock.yaml pnpm-workspace.yaml ./
RUN npx -y pnpm@10.34.8 fetch

COPY . .
RUN npx -y pnpm@10.34.8 install --offline --frozen-lockfile

ENV NODE_ENV=production
CMD ["node", "--import", "tsx", "scripts/migrate.ts"]
