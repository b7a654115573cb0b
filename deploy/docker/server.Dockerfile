# syntax=docker/dockerfile:1.7
#
# aims-server: the collector (ingest API, ledger, assessment, dashboard), plus aims-verify, the
# auditor's offline checker, so `docker run --rm --entrypoint aims-verify …` works from the same image.
#
# Build from the repository root (BuildKit is required for the cache mounts):
#   docker build -f deploy/docker/server.Dockerfile -t aims-server:0.1.0 .
#
# Run (state in a named volume; keep it: it holds the database AND the ledger keys):
#   docker run -d -p 8080:8080 -v aims-data:/var/lib/aims \
#     -e AIMS_SERVER__ORIGIN=aims.example.com/ledger aims-server:0.1.0
#   docker exec <container> aims-server token create --config /etc/aims/server.yaml \
#     --role agent --name cluster-a

ARG RUST_VERSION=1.95

############################## builder ##############################
FROM rust:${RUST_VERSION}-slim-bookworm AS builder
WORKDIR /src
# No system libraries are needed: TLS is rustls, SQLite is bundled (libsqlite3-sys), and ring /
# aws-lc / SQLite are compiled by the C compiler that the rust:slim image already carries.
COPY . .
# The registry and target directory live in BuildKit cache mounts, so a rebuild after a source
# change recompiles only the workspace crates. The target dir is not part of the layer, so the
# binaries are copied out of it in the same RUN.
RUN --mount=type=cache,id=aims-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=aims-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=aims-target,target=/src/target,sharing=locked \
    cargo build --release --locked -p aims-server --bin aims-server -p aims-verify --bin aims-verify \
 && install -D -m 0755 target/release/aims-server /out/aims-server \
 && install -D -m 0755 target/release/aims-verify /out/aims-verify

############################## runtime ##############################
FROM debian:bookworm-slim
ARG UID=10001
ARG GID=10001
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid "${GID}" aims \
 && useradd --system --uid "${UID}" --gid aims --home-dir /var/lib/aims --no-create-home \
      --shell /usr/sbin/nologin aims \
 && install -d -o aims -g aims -m 0700 /var/lib/aims /var/lib/aims/keys \
 && install -d -m 0755 /etc/aims

COPY --from=builder /out/aims-server /out/aims-verify /usr/local/bin/
# Defaults: listen on 0.0.0.0:8080, SQLite at /var/lib/aims/aims.db, keys in /var/lib/aims/keys.
# Override with a mounted file or AIMS_SERVER__<FIELD> variables (AIMS_SERVER__DATABASE,
# AIMS_SERVER__ORIGIN, …); AIMS_SERVER_LOG_KEY / AIMS_SERVER_CLOCK_KEY (hex) supply the keys.
COPY deploy/examples/server.yaml /etc/aims/server.yaml

# One volume for everything that must persist: the SQLite database and keys/ (log.key,
# clock.key, last-checkpoint). Losing keys/ means a new log identity: auditors' pinned trust
# policies stop matching and old checkpoints can no longer be extended.
VOLUME ["/var/lib/aims"]
WORKDIR /var/lib/aims
USER 10001:10001
EXPOSE 8080

# No HEALTHCHECK: the image has no curl/wget and aims-server has no health subcommand. Use the
# orchestrator's HTTP probes instead: GET /healthz (liveness) and GET /readyz (readiness, checks
# the database); the Helm chart and deploy/k8s configure them.
ENTRYPOINT ["aims-server"]
CMD ["serve", "--config", "/etc/aims/server.yaml"]
