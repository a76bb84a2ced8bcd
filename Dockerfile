# syntax=docker/dockerfile:1
# The Tidings image: one image for every role.
#   docker build -t tidings .
#   docker run --rm -e DATABASE_URL=… -e REDIS_URL=… -e TIDINGS_TOKEN_SECRET=… -p 8000:8000 tidings gateway
# Commands: gateway (default), worker, migrate, token. See docker-compose.yml for a full deployment.
# The project runs on Node 20 and later; the image runs an LTS line that is still supported.
ARG NODE_IMAGE=node:24.16.0-bookworm-slim

# --- build: every dependency, then TypeScript → dist/ --------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Scripts wait until the sources are here: `prepare` is the build itself, run just below.
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# --- runtime: production dependencies, dist/ and migrations/, as a non-root user ------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production PORT=8000
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY migrations ./migrations
USER node
EXPOSE 8000
# Gateways (and dev) answer GET /health on PORT, workers on TIDINGS_METRICS_PORT when it is set;
# a process with no HTTP port passes while it runs.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "const a=require('fs').readFileSync('/proc/1/cmdline','utf8').split('\\0'),e=process.env;const p=a.includes('worker')?e.TIDINGS_METRICS_PORT:a.includes('gateway')||a.includes('dev')?e.PORT||8000:0;if(!p)process.exit(0);fetch('http://127.0.0.1:'+p+'/health',{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["gateway"]
