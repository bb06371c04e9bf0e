# The production image of login-ingest: the worker (default command), the one-shot
# migration, the codec server and the CLI, as compiled JavaScript (see docker-compose.yml
# and deploy/). Two stages: `build` installs everything, generates the Prisma client,
# compiles TypeScript and bundles the workflows once; the runtime stage has only the
# production dependencies and dist/, and runs as the unprivileged `node` user (uid 1000).

FROM node:22-bookworm-slim AS build
# openssl: the Prisma CLI probes the OpenSSL version to pick its platform.
RUN apt-get update \
 && apt-get install -y --no-install-recommends openssl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
ENV NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false
WORKDIR /app
# Dependencies first, so source edits don't invalidate the `npm ci` layer. The postinstall
# (scripts/ensure-deps.js) generates the Prisma client offline, so it and the schema come along.
COPY package.json package-lock.json prisma.config.ts ./
COPY scripts/ensure-deps.js scripts/
COPY prisma ./prisma
RUN npm ci --no-audit
COPY . .
# tsc → dist/, then migrations and sample next to the code, and dist/workflow-bundle.js.
RUN npm run build

FROM node:22-bookworm-slim AS runtime
ENV NODE_ENV=production \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    DATA_DIR=/data
WORKDIR /app
# /data: DATA_DIR (operators' private keys, one-time recovery keys); a named volume mounted
# there starts out owned by `node`, as this directory is.
RUN mkdir -p /data && chown node:node /app /data
USER node
COPY --chown=node:node package.json package-lock.json ./
# Production dependencies only; no install scripts (the Prisma client is compiled into dist/).
RUN npm ci --omit=dev --ignore-scripts --no-audit && npm cache clean --force
COPY --from=build --chown=node:node /app/dist ./dist
# The worker's metrics, readiness (/readyz) and health (/healthz) endpoint, when METRICS_ADDRESS is set.
EXPOSE 9464
CMD ["node", "dist/worker.js"]
