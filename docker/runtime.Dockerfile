# The Jupyter runtime: Alpine + python3 + JupyterLab + ipykernel + ipydeps, nothing heavy.
# The scientific stack is installed on demand by ipydeps from the ipydeps repository.
# Under JupyterHub (KubeSpawner, DockerSpawner, ...) start-jupyter runs jupyterhub-singleuser;
# build it with the JupyterHub version of your hub (docs/jupyterhub.md):
#   docker build -f docker/runtime.Dockerfile --build-arg JUPYTERHUB_VERSION=5.4.3 .
#
# Build from the repository root (see docker/README.md for every build arg):
#   docker build -f docker/runtime.Dockerfile -t ipydeps-runtime .          # JupyterLab
#   docker build -f docker/runtime.Dockerfile --build-arg UI=none -t ipydeps-runtime:headless .
#   docker build -f docker/runtime.Dockerfile \
#       --build-arg IPYDEPS_REPOSITORY_URL=https://repo.example.org/ \
#       --build-arg IPYDEPS_KEY_URL=https://repo.example.org/keys/ipydeps-1a2b3c4d.rsa.pub \
#       --build-arg IPYDEPS_KEY_SHA256=<sha256 of that file, from its publisher> .

ARG ALPINE_VERSION=3.22.6
# Digest of the alpine:3.22.6 multi-arch index. Override both together to move to a newer
# point release; the digest is what makes the build reproducible.
ARG ALPINE_DIGEST=sha256:5291449c3df73caf6ed85e649dec1b9e818b39a5d8c871e97afc13e9cd5e8fa8

# ---------------------------------------------------------------------------------------------
# Stage 1: wheels for everything the kernel environment needs. Never shipped: the runtime
# stage installs from a bind mount of /wheels, so no wheel ends up in an image layer.
FROM alpine:${ALPINE_VERSION}@${ALPINE_DIGEST} AS wheels

ARG UI=lab
ARG JUPYTERLAB_VERSION=4.6.6
ARG NOTEBOOK_VERSION=7.6.5
# jupyterhub-singleuser, the server a hub's spawner starts: match your hub's JupyterHub version.
# Empty leaves JupyterHub out (no hub support, about 74 MiB smaller; see docker/README.md).
ARG JUPYTERHUB_VERSION=6.1.1
ARG PIP_VERSION=26.3
ARG SETUPTOOLS_VERSION=84.2.1

# Manifests first: the dependency wheels are rebuilt only when these change.
COPY pyproject.toml README.md /src/
COPY docker/runtime-constraints.txt /src/docker/

# Alpine's repositories are versioned per release branch and the base is pinned by digest, so
# apk package versions follow the branch's security fixes instead of exact pins.
# hadolint ignore=DL3018
RUN set -eux; \
    apk add --no-cache \
        python3 \
    ; \
    apk add --no-cache --virtual .build-deps \
        gcc \
        libffi-dev \
        linux-headers \
        musl-dev \
        python3-dev \
    ; \
    python3 -m venv /opt/build; \
    /opt/build/bin/pip install --no-cache-dir "pip==${PIP_VERSION}" "setuptools==${SETUPTOOLS_VERSION}"; \
    python3 -c 'import tomllib; p = tomllib.load(open("/src/pyproject.toml", "rb"))["project"]; print("\n".join(p["dependencies"] + p["optional-dependencies"]["jupyter"]))' \
        > /src/requirements.txt; \
    case "$UI" in \
        lab) echo "jupyterlab==${JUPYTERLAB_VERSION}" >> /src/requirements.txt ;; \
        notebook) echo "notebook==${NOTEBOOK_VERSION}" >> /src/requirements.txt ;; \
        none) ;; \
        *) echo "UI must be lab, notebook or none, not '$UI'" >&2; exit 1 ;; \
    esac; \
    case "$JUPYTERHUB_VERSION" in \
        "") ;; \
        *[!0-9A-Za-z.+-]*) echo "JUPYTERHUB_VERSION must be a version such as 6.1.1, not '$JUPYTERHUB_VERSION'" >&2; exit 1 ;; \
        *) echo "jupyterhub==${JUPYTERHUB_VERSION}" >> /src/requirements.txt ;; \
    esac; \
    /opt/build/bin/pip wheel --no-cache-dir --wheel-dir /wheels \
        --constraint /src/docker/runtime-constraints.txt --requirement /src/requirements.txt; \
    apk del --no-network .build-deps

COPY ipydeps/ /src/ipydeps/

RUN set -eux; \
    /opt/build/bin/pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels /src; \
    cp /src/requirements.txt /wheels/requirements.txt; \
    echo ipydeps-client >> /wheels/requirements.txt

# ---------------------------------------------------------------------------------------------
# Stage 2: the runtime image.
FROM alpine:${ALPINE_VERSION}@${ALPINE_DIGEST} AS runtime
# busybox ash knows pipefail: a failed download or checksum in a pipe fails the build.
SHELL ["/bin/ash", "-eo", "pipefail", "-c"]

ARG UI=lab
ARG NB_USER=jovyan
ARG NB_UID=1000
# Where the image's kernels install from. Empty: set IPYDEPS_REPOSITORY_URL at run time (the
# wheel route); the apk route needs it here, because /etc/apk/repositories is root-owned.
ARG IPYDEPS_REPOSITORY_URL=""
ARG IPYDEPS_APK_REPOSITORY=v3.22/sci
# The repository's public key: downloaded and checked against a sha256 you got from its
# publisher (never trusted on first use), or mounted read-only into /etc/apk/keys at run time.
ARG IPYDEPS_KEY_URL=""
ARG IPYDEPS_KEY_SHA256=""
# "deny" makes the image air-gapped: only the ipydeps repository is ever used.
ARG IPYDEPS_UPSTREAM=allow

ENV HOME=/home/${NB_USER} \
    IPYDEPS_PYTHON=/opt/kernel/bin/python \
    IPYDEPS_UI=${UI} \
    JUPYTER_PORT=8888 \
    JUPYTER_RUNTIME_DIR=/home/${NB_USER}/.local/share/jupyter/runtime \
    NOTEBOOK_DIR=/home/${NB_USER}/work \
    PATH=/usr/local/bin:/opt/kernel/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin \
    VIRTUAL_ENV=/opt/kernel

# /var/cache/ipydeps-shared: where compose mounts the host's shared cache of installed
# wheels (IPYDEPS_SHARED_CACHE, unset here: off unless the runtime is started with it). A new
# named volume mounted there takes this directory's owner, the notebook user.
# hadolint ignore=DL3018
RUN set -eux; \
    apk add --no-cache \
        ca-certificates \
        doas \
        python3 \
        python3-pyc \
        tini \
    ; \
    addgroup -g "$NB_UID" "$NB_USER"; \
    adduser -D -u "$NB_UID" -G "$NB_USER" -h "/home/$NB_USER" -s /bin/sh "$NB_USER"; \
    mkdir -p /etc/ipydeps; \
    install -d -m 0755 -o "$NB_USER" -g "$NB_USER" /var/cache/ipydeps-shared; \
    if [ -n "$IPYDEPS_REPOSITORY_URL" ]; then \
        echo "${IPYDEPS_REPOSITORY_URL%/}/alpine/${IPYDEPS_APK_REPOSITORY}" >> /etc/apk/repositories; \
        printf '[global]\nindex-url = %s/simple/\n' "${IPYDEPS_REPOSITORY_URL%/}" > /etc/pip.conf; \
    fi; \
    python3 -c 'import json, sys; url, apk_repository, upstream = sys.argv[1:]; print("# Written at image build time (docker/runtime.Dockerfile). IPYDEPS_* variables override it."); print("repository_url = " + json.dumps(url)) if url else None; print("apk_repository = " + json.dumps(apk_repository)); print("upstream = " + json.dumps(upstream))' \
        "$IPYDEPS_REPOSITORY_URL" "$IPYDEPS_APK_REPOSITORY" "$IPYDEPS_UPSTREAM" \
        > /etc/ipydeps/config.toml; \
    if [ -n "$IPYDEPS_KEY_URL" ]; then \
        if [ -z "$IPYDEPS_KEY_SHA256" ]; then \
            echo "IPYDEPS_KEY_URL needs IPYDEPS_KEY_SHA256: a key is never trusted on first use" >&2; \
            exit 1; \
        fi; \
        key_name="${IPYDEPS_KEY_URL##*/}"; \
        case "$key_name" in \
            *.rsa.pub) ;; \
            *) echo "IPYDEPS_KEY_URL must end in <name>.rsa.pub (Alpine key naming)" >&2; exit 1 ;; \
        esac; \
        wget -q -O "/tmp/$key_name" "$IPYDEPS_KEY_URL"; \
        echo "$IPYDEPS_KEY_SHA256  /tmp/$key_name" | sha256sum -c -; \
        install -m 0644 "/tmp/$key_name" "/etc/apk/keys/$key_name"; \
        rm "/tmp/$key_name"; \
    fi

# The kernel environment: a venv that also sees Alpine's /usr/lib/python3.12/site-packages
# (where py3-* apks install), owned by the notebook user so ipydeps and pip can install into
# it without root and without tripping PEP 668 (which guards the system interpreter only).
# What a single-user server never uses is removed in the same layer (docker/runtime-prune:
# JupyterHub's own web assets, 43 MiB, babel's non-English locale data, 30 MiB, and jedi's
# third-party type stubs, 9 MiB).
COPY --chmod=0755 docker/runtime-prune /usr/local/libexec/runtime-prune
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    set -eux; \
    python3 -m venv --system-site-packages /opt/kernel; \
    /opt/kernel/bin/pip install --no-cache-dir --no-index --find-links /wheels \
        --requirement /wheels/requirements.txt; \
    /usr/local/libexec/runtime-prune /opt/kernel; \
    chown -R "$NB_USER:$NB_USER" /opt/kernel

# The only thing the notebook user may run as root: the apk helper, which validates package
# names and installs only from the repository configured above (see docker/ipydeps-apk-add).
COPY --chmod=0755 docker/ipydeps-apk-add /usr/local/libexec/ipydeps-apk-add
COPY --chmod=0400 docker/doas-ipydeps.conf /etc/doas.d/ipydeps.conf
COPY --chmod=0644 docker/jupyter_server_config.py /etc/jupyter/jupyter_server_config.py
# JupyterLab's news feed: "never" by default (a runtime fetches nothing on its own; without
# this every user is asked on first open). A user's own setting still wins.
COPY --chmod=0644 docker/labconfig-default-settings.json /etc/jupyter/labconfig/default_setting_overrides.json
COPY --chmod=0644 docker/ipython_kernel_config.py /etc/ipython/ipython_kernel_config.py
COPY --chmod=0755 docker/jupyter-healthcheck docker/start-jupyter /usr/local/bin/
# `pip install` in a terminal takes the ipydeps route too; PATH puts the shim before the venv.
COPY --chmod=0755 docker/pip-shim /usr/local/bin/pip
COPY --chmod=0755 docker/pip-shim /usr/local/bin/pip3

# doas refuses to run with a config it cannot parse: check it while still root.
RUN doas -C /etc/doas.d/ipydeps.conf

USER ${NB_UID}
WORKDIR /home/${NB_USER}

# Smoke test, as the notebook user: the packages import from the kernel venv, the venv is
# writable, the extension entry point exists, and the single-user server (when built with
# one) imports without the hub's web assets.
RUN set -eux; \
    python3 -c 'import ipydeps, jupyter_server, ipykernel; print("ipydeps", ipydeps.__version__)'; \
    if command -v jupyterhub-singleuser; then python3 -c 'import jupyterhub.singleuser.app'; fi; \
    python3 -c 'import sys; sys.exit(sys.prefix != "/opt/kernel")'; \
    python3 -c 'import ipydeps; ipydeps.load_ipython_extension'; \
    test -w /opt/kernel/lib; \
    mkdir -p "$NOTEBOOK_DIR" "$JUPYTER_RUNTIME_DIR"

EXPOSE 8888
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["jupyter-healthcheck"]
ENTRYPOINT ["/sbin/tini", "--"]
CMD ["start-jupyter"]
