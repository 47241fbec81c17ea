# The repository's read path: nginx serving the data volume's tree/ (mounted read-only) with
# the configuration in docker/nginx/; uploads, the JSON API and the landing page go to the
# `repo` service (`ipydeps-repo serve`). See docker/compose.yaml.
# Build from the repository root:  docker build -f docker/web.Dockerfile -t ipydeps-web .

ARG ALPINE_VERSION=3.22.6
# Digest of the alpine:3.22.6 multi-arch index (see docker/runtime.Dockerfile).
ARG ALPINE_DIGEST=sha256:5291449c3df73caf6ed85e649dec1b9e818b39a5d8c871e97afc13e9cd5e8fa8

FROM alpine:${ALPINE_VERSION}@${ALPINE_DIGEST} AS web

# hadolint ignore=DL3018
RUN set -eux; \
    apk add --no-cache \
        nginx \
        tini \
    ; \
    mkdir -p /etc/nginx/ipydeps

COPY docker/nginx/nginx.conf /etc/nginx/nginx.conf
COPY docker/nginx/ipydeps-repo-http.conf docker/nginx/ipydeps-repo-locations.conf \
    /etc/nginx/ipydeps/

# The package's unprivileged user (its uid is the package's); 8080 needs no privilege, and
# the pid and temp files go to /tmp.
# hadolint ignore=DL3066
USER nginx

EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/simple/"]
ENTRYPOINT ["/sbin/tini", "--"]
CMD ["nginx", "-e", "stderr", "-g", "daemon off;"]
