# The FHIR server, production-like: `docker compose up` (see docker-compose.yml).
# node:20-slim ships npm 10, which ignores package.json's `allowScripts` (an npm 11
# setting) and runs the install scripts of the locked dependencies as usual.
FROM node:20-slim

ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080

WORKDIR /app

# Dependencies first: this layer is rebuilt only when the lockfile changes.
# tsx and typescript are runtime dependencies (the server runs from TypeScript source).
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# The source stays owned by root, read-only for the server; only .data (the embedded
# PostgreSQL, used when DATABASE_URL is unset, the reads' audit journal and the audit
# chains' anchors) is writable by it.
COPY . .
RUN mkdir -p /app/.data/audit-journal /app/.data/audit-anchors && chown -R node:node /app/.data

USER node
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=5 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# node itself (not npm) is the main process, so SIGTERM reaches the server's own
# handler, which drains in-flight requests and exits; same code path as `npm start`.
CMD ["node", "--max-semi-space-size=64", "--import", "tsx", "server/main.ts"]
