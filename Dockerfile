# syntax=docker/dockerfile:1
# edgeship's container image, a drop-in for Fluent Bit's: it runs
# /fluent-bit/etc/fluent-bit.conf (mount your own there), /fluent-bit/bin/fluent-bit is
# edgeship, and `docker run IMAGE -i dummy -o stdout` passes the options as Fluent Bit's does.
#
#   docker buildx build --platform linux/amd64,linux/arm64,linux/arm/v7 -t edgeship .
#   docker run -p 24224:24224 -v edgeship-spool:/var/lib/edgeship edgeship
#
# Debian's own Python (bookworm: 3.11) on debian:bookworm-slim, which exists for amd64, arm64
# and armhf (arm/v7, the 32-bit Raspberry Pi OS). tools/container_test.sh runs the same steps
# in a debootstrapped bookworm rootfs, since no Docker engine runs where edgeship is tested.
ARG DEBIAN_RELEASE=bookworm
# Extras: fast (orjson), lua (lupa) or all; empty for the core alone.
ARG EXTRAS=fast

FROM debian:${DEBIAN_RELEASE}-slim AS build
ARG EXTRAS
# A compiler for the armhf dependencies PyPI has no wheel of; only in this stage.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-dev gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md LICENSE /src/
COPY edgeship /src/edgeship
RUN python3 -m venv /opt/edgeship \
 && /opt/edgeship/bin/pip install --no-cache-dir "/src${EXTRAS:+[$EXTRAS]}"

FROM debian:${DEBIAN_RELEASE}-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/edgeship /opt/edgeship
# The service user owns only the spool volume; the program and config stay root's.
RUN groupadd --gid 10001 edgeship \
 && useradd --uid 10001 --gid 10001 --home-dir /var/lib/edgeship --no-create-home \
        --shell /usr/sbin/nologin edgeship \
 && mkdir -p /fluent-bit/bin /fluent-bit/etc /var/lib/edgeship \
 && chown edgeship:edgeship /var/lib/edgeship \
 && chmod 0750 /var/lib/edgeship \
 && ln -s /opt/edgeship/bin/edgeship /fluent-bit/bin/fluent-bit \
 && ln -s /opt/edgeship/bin/edgeship /usr/local/bin/edgeship
COPY edgeship/examples/container/fluent-bit.conf /fluent-bit/etc/fluent-bit.conf
# STATE_DIRECTORY is where the spool and tail DBs go (storage.path
# ${STATE_DIRECTORY}/edgeship-spool), as systemd sets it for the unit.
ENV STATE_DIRECTORY=/var/lib/edgeship \
    EDGESHIP_HEALTH_URL=http://127.0.0.1:2020/api/v1/health
VOLUME ["/var/lib/edgeship"]
# 2020: monitoring HTTP server (HTTP_Port); 24224: the default config's forward input.
EXPOSE 2020 24224
USER 10001:10001
WORKDIR /var/lib/edgeship
# Healthy while /api/v1/health answers 200 (HTTP_Server On and Health_Check On in the config;
# Fluent Bit answers 500 once an output's errors or failed retries pass HC_* in HC_Period).
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["/opt/edgeship/bin/python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['EDGESHIP_HEALTH_URL'], timeout=4)"]
ENTRYPOINT ["/opt/edgeship/bin/edgeship"]
CMD ["-c", "/fluent-bit/etc/fluent-bit.conf"]
