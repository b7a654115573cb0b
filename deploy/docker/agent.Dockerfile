# syntax=docker/dockerfile:1.7
#
# aims-agent: polls sources (git, dir, S3, MLflow, GitHub), spools evidence durably and ships it
# to aims-server.
#
# Build from the repository root (BuildKit is required for the cache mounts):
#   docker build -f deploy/docker/agent.Dockerfile -t aims-agent:0.1.0 .
#
# Run (the config is mounted, the token comes from the environment, the spool is a volume):
#   docker run -d -v aims-spool:/var/lib/aims-agent \
#     -v "$PWD/agent.yaml:/etc/aims/agent.yaml:ro" \
#     -e AIMS_AGENT__SERVER__TOKEN="$TOKEN" aims-agent:0.1.0
#   docker run --rm -v "$PWD/agent.yaml:/etc/aims/agent.yaml:ro" aims-agent:0.1.0 \
#     validate --config /etc/aims/agent.yaml

ARG RUST_VERSION=1.95

############################## builder ##############################
FROM rust:${RUST_VERSION}-slim-bookworm AS builder
WORKDIR /src
# No system libraries are needed: TLS is rustls and the C parts (ring, aws-lc) are compiled by
# the C compiler that the rust:slim image already carries.
COPY . .
RUN --mount=type=cache,id=aims-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=aims-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=aims-target,target=/src/target,sharing=locked \
    cargo build --release --locked -p aims-agent --bin aims-agent \
 && install -D -m 0755 target/release/aims-agent /out/aims-agent

############################## runtime ##############################
FROM debian:bookworm-slim
ARG UID=10001
ARG GID=10001
# git: the git source shells out to the `git` CLI (clone/fetch/ls-tree). For ssh:// remotes add
# openssh-client and mount a key plus known_hosts; https remotes need nothing more.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates git \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid "${GID}" aims \
 && useradd --system --uid "${UID}" --gid aims --home-dir /home/aims --create-home \
      --shell /usr/sbin/nologin aims \
 && install -d -o aims -g aims -m 0700 /var/lib/aims-agent \
 && install -d -m 0755 /etc/aims

COPY --from=builder /out/aims-agent /usr/local/bin/aims-agent

# HOME is only read (git looks for ~/.gitconfig), so a read-only root filesystem is fine.
ENV HOME=/home/aims
# The spool, cursors and git caches. It must survive restarts: the spool holds evidence not yet
# acknowledged by the server, and the cursors are what makes an unchanged source cost no
# downloads. An empty volume is safe (everything is re-read and deduplicated) but loses
# unshipped evidence.
VOLUME ["/var/lib/aims-agent"]
WORKDIR /var/lib/aims-agent
USER 10001:10001

# The agent serves no HTTP, so there is no HEALTHCHECK; it exits non-zero on a fatal error and
# the orchestrator restarts it.
ENTRYPOINT ["aims-agent"]
CMD ["run", "--config", "/etc/aims/agent.yaml"]
