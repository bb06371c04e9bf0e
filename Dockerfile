# Image for the login-ingest worker, the one-shot `migrate` job and the `client` CLI
# (see docker-compose.yml). Runs the TypeScript sources directly with ts-node.
FROM node:22-bookworm-slim

# openssl: the Prisma CLI probes the OpenSSL version to pick its platform and warns or
# fails on slim images without it. ca-certificates: TLS for npm and outbound HTTPS.
RUN apt-get update \
 && apt-get install -y --no-install-recommends openssl ca-certificates \
 && rm -rf /var/lib/apt/lists/*

ENV NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false

WORKDIR /app
# Run as the image's unprivileged `node` user (uid 1000), which owns /app.
RUN chown node:node /app
USER node

# Dependencies first, so source edits don't invalidate the `npm ci` layer.
# devDependencies are needed at runtime (ts-node, typescript, prisma).
COPY --chown=node:node package.json package-lock.json ./
RUN npm ci

COPY --chown=node:node . .

# `prisma generate` needs no database; the throwaway URL only exists for this step so a
# prisma.config.ts that reads DATABASE_URL cannot fail the build. The real URL comes
# from the container environment at run time.
RUN DATABASE_URL="postgresql://build:build@127.0.0.1:5432/build" npm run prisma:generate

CMD ["npx", "ts-node", "worker.ts"]
