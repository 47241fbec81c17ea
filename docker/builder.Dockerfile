# The farm's builder: Alpine + abuild + the recipes' common build deps, run as a non-root
# member of the abuild group. The farm driver runs `abuild -r` in it with a recipe, the
# package output folder and the signing key mounted (see docs/farm.md).
#
#   docker build -f docker/builder.Dockerfile -t ipydeps-farm-builder:3.22 docker/
#
# Build args: ALPINE_VERSION and ALPINE_DIGEST move together (the digest of that version's
# multi-arch index, as the runtime image pins it); BUILDER_UID must match nothing on the host.

ARG ALPINE_VERSION=3.22.6
ARG ALPINE_DIGEST=sha256:5291449c3df73caf6ed85e649dec1b9e818b39a5d8c871e97afc13e9cd5e8fa8

FROM alpine:${ALPINE_VERSION}@${ALPINE_DIGEST}

ARG BUILDER_UID=1000

# Packages come from the pinned Alpine branch's signed repositories; version pins would
# break on every point update of the branch, so the branch (base image) is the pin.
# Only what every recipe needs is preinstalled: `abuild -r` installs each recipe's other
# makedepends, including py3-numpy-dev from the packages built earlier in the same run.
# Cython, meson-python, pythran and pybind11 are not taken from the branch: each recipe builds
# with pinned, checksummed PyPI wheels listed in its source= (the branch's are too old).
# hadolint ignore=DL3018
RUN set -eux; \
    apk add --no-cache \
        abuild \
        alpine-sdk \
        gfortran \
        linux-headers \
        openblas-dev \
        pkgconf \
        py3-gpep517 \
        py3-installer \
        py3-packaging \
        python3-dev \
        samurai \
    ; \
    adduser -D -u "${BUILDER_UID}" -h /home/builder -s /bin/sh builder; \
    addgroup builder abuild; \
    mkdir -p /home/builder/.abuild /home/builder/aports /home/builder/packages; \
    chown -R builder:abuild /home/builder

ENV REPODEST=/home/builder/packages
ENV ABUILD_USERDIR=/home/builder/.abuild

USER ${BUILDER_UID}
WORKDIR /home/builder/aports

# Smoke test: the tools the recipes call, the system OpenBLAS, and the builder's group.
RUN set -eux; \
    command -v abuild abuild-apk gpep517 gfortran; \
    pkg-config --exists openblas; \
    command -v samu; \
    python3 -c 'import gpep517, installer, packaging'; \
    grep -Eq '^abuild:[^:]*:[0-9]+:(.*,)?builder(,|$)' /etc/group; \
    test "$(id -u)" = "${BUILDER_UID}"
