# The ipydeps repository server: `ipydeps-repo serve` on port 8080 with its data in /data.
# Build from the repository root:  docker build -f docker/repo.Dockerfile -t ipydeps-repo .
# On first start it creates the signing key and a publish token in the /data volume.

ARG ALPINE_VERSION=3.22.6
# Digest of the alpine:3.22.6 multi-arch index (see docker/runtime.Dockerfile).
ARG ALPINE_DIGEST=sha256:5291449c3df73caf6ed85e649dec1b9e818b39a5d8c871e97afc13e9cd5e8fa8

# ---- wheels: ipydeps, ipydeps-repo and their dependencies, never shipped
FROM alpine:${ALPINE_VERSION}@${ALPINE_DIGEST} AS wheels

ARG PIP_VERSION=26.3
ARG SETUPTOOLS_VERSION=84.2.1

COPY pyproject.toml README.md /src/
COPY repo-server/pyproject.toml repo-server/README.md /src/repo-server/

# hadolint ignore=DL3018
RUN set -eux; \
    apk add --no-cache \
        python3 \
    ; \
    apk add --no-cache --virtual .build-deps \
        gcc \
        libffi-dev \
        musl-dev \
        python3-dev \
    ; \
    python3 -m venv /opt/build; \
    /opt/build/bin/pip install --no-cache-dir "pip==${PIP_VERSION}" "setuptools==${SETUPTOOLS_VERSION}"; \
    python3 -c 'import tomllib; load = lambda path: tomllib.load(open(path, "rb"))["project"]["dependencies"]; print("\n".join(load("/src/pyproject.toml") + [d for d in load("/src/repo-server/pyproject.toml") if not d.startswith("ipydeps")]))' \
        > /src/requirements.txt; \
    /opt/build/bin/pip wheel --no-cache-dir --wheel-dir /wheels --requirement /src/requirements.txt; \
    apk del --no-network .build-deps

COPY ipydeps/ /src/ipydeps/
COPY repo-server/ipydeps_repo/ /src/repo-server/ipydeps_repo/

RUN set -eux; \
    /opt/build/bin/pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels \
        /src \
        /src/repo-server \
    ; \
    cp /src/requirements.txt /wheels/requirements.txt; \
    printf 'ipydeps-client\nipydeps-repo\n' >> /wheels/requirements.txt

# ---- the server image
FROM alpine:${ALPINE_VERSION}@${ALPINE_DIGEST} AS repo

ARG REPO_USER=ipydeps
ARG REPO_UID=1001

ENV IPYDEPS_REPO_DATA=/data \
    PATH=/opt/repo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# hadolint ignore=DL3018
RUN set -eux; \
    apk add --no-cache \
        python3 \
        tini \
    ; \
    addgroup -g "$REPO_UID" "$REPO_USER"; \
    adduser -D -u "$REPO_UID" -G "$REPO_USER" -h /home/ipydeps -s /sbin/nologin "$REPO_USER"; \
    mkdir -p /data; \
    chown "$REPO_USER:$REPO_USER" /data

# pip stays: `ipydeps-repo mirror` downloads upstream wheels with it.
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    set -eux; \
    python3 -m venv /opt/repo; \
    /opt/repo/bin/pip install --no-cache-dir --no-index --find-links /wheels \
        --requirement /wheels/requirements.txt

COPY --chmod=0755 docker/repo-entrypoint /usr/local/bin/repo-entrypoint

USER ${REPO_UID}
VOLUME ["/data"]

# Smoke test: the CLI loads every subcommand.
RUN ipydeps-repo --help > /dev/null

EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/api/v1/health"]
ENTRYPOINT ["/sbin/tini", "--", "repo-entrypoint"]
CMD ["ipydeps-repo", "serve", "--data", "/data", "--host", "0.0.0.0", "--port", "8080"]
