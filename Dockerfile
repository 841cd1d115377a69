# syntax=docker/dockerfile:1
# mintgate image: the broker (the default command), the proxy (`proxy --config ...`) and the demo
# model server (entry point `node dist/dev/demo_model_main.js`). Multi-stage: the build stage
# compiles TypeScript and drops dev dependencies; the runtime stage holds only dist/, production
# node_modules, package.json and openapi.yaml, and runs as the unprivileged `node` user.
# No signing key, KEK or admin secret is baked in: keys live in the volume at
# /var/lib/mintgate/keys (MINTGATE_KEYS_DIR) or, with a Redis store, in Redis encrypted with
# MINTGATE_KEK; secrets come from the environment at run time (see docker-compose.yml).

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Scripts are skipped here because `prepare` (the build) needs the sources copied below.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build.mjs ./scripts/build.mjs
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    MINTGATE_KEYS_DIR=/var/lib/mintgate/keys
WORKDIR /app
# Application files stay owned by root: the `node` user can read them but not change them.
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json openapi.yaml ./
# The proxy's audit spool: a named volume mounted here starts as a copy of this directory,
# ownership included, so the non-root user can write to it (docker-compose.yml, proxy-spool).
RUN mkdir -p /var/lib/mintgate/keys /var/lib/mintgate/spool /etc/mintgate \
 && chown node:node /var/lib/mintgate/keys /var/lib/mintgate/spool \
 && chmod 0700 /var/lib/mintgate/keys /var/lib/mintgate/spool
VOLUME ["/var/lib/mintgate/keys"]
USER node
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["serve", "--config", "/etc/mintgate/mintgate.yaml", "--host", "0.0.0.0"]
