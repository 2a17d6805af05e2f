# notion-sync container image.
#
#   docker build -t notion-sync:0.1.0 .
#   docker run --rm -p 8080:8080 -v notion-sync-data:/data --env-file deploy/notion-sync.env notion-sync:0.1.0
#
# Stages: chef (toolchain + cargo-chef) -> planner (dependency recipe) -> builder (cached
# dependency layer, then the release binary) -> runtime (debian slim, non-root, /data volume).
# Only Cargo.toml, Cargo.lock, crates/ and migrations/ reach the build (see .dockerignore).
# deploy/README.md explains how to run the image.

# ---------------------------------------------------------------------------------------
FROM rust:1.95-bookworm AS chef
# cargo-chef turns the workspace manifests into a "recipe" so the dependency build is a
# layer of its own that only a Cargo.toml/Cargo.lock change invalidates.
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src
# Checked sqlx macros must never reach for a database while building.
ENV SQLX_OFFLINE=true \
    CARGO_TERM_COLOR=never

# ---------------------------------------------------------------------------------------
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# ---------------------------------------------------------------------------------------
FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# Dependencies only (our crates are stubs here): cached until the recipe changes.
RUN cargo chef cook --release --locked -p notion-sync --recipe-path recipe.json
COPY . .
# The same command CI runs (.ci/run): the migrations are embedded at compile time.
RUN cargo build --release --locked -p notion-sync \
    && install -D -m 0755 target/release/notion-sync /out/notion-sync \
    && /out/notion-sync --version

# ---------------------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

ARG APP_UID=10001
ARG APP_GID=10001

# ca-certificates: reqwest/rustls reads the system roots to reach api.notion.com.
# sqlite3: online backups and ad-hoc queries of the mirror (`sqlite3 /data/notion-sync.db`).
# Versions are not pinned on purpose: both must follow Debian security updates on every
# rebuild, and the base image tag pins the release (bookworm).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates sqlite3 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid "${APP_GID}" notion-sync \
    && useradd --system --uid "${APP_UID}" --gid "${APP_GID}" --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin notion-sync \
    && install -d -o "${APP_UID}" -g "${APP_GID}" -m 0750 /data

COPY --from=builder /out/notion-sync /usr/local/bin/notion-sync

# The SQLite file lives on the /data volume. Environment overrides win over the config
# file, so change these with `-e`/`environment:` rather than in a mounted config file.
ENV NOTION_SYNC_STORE__URL=sqlite:///data/notion-sync.db \
    NOTION_SYNC_LOG__FORMAT=json

WORKDIR /data
VOLUME ["/data"]
USER ${APP_UID}:${APP_GID}
EXPOSE 8080

# SIGTERM: stop intake, let running jobs finish (server.shutdown_grace_seconds = 30), exit 0.
# Give the container at least 35 s to stop (docker stop -t 40, stop_grace_period: 40s).
STOPSIGNAL SIGTERM

# Unhealthy = /healthz unreachable or "failing" (store down, token rejected). "degraded"
# (dead jobs, schema drift, rate-limit pause, no webhook secret yet) stays healthy on purpose:
# a restart fixes none of those, and orchestrators replace unhealthy containers.
# `docker exec <container> notion-sync healthcheck` (without the flag) shows the reasons.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["notion-sync", "healthcheck", "--allow-degraded"]

ENTRYPOINT ["notion-sync"]
CMD ["serve"]
