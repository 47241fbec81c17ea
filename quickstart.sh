#!/usr/bin/env bash
# Quickstart: a local ipydeps repository seeded with NumPy/SciPy/pandas plus a Jupyter server
# whose kernel installs them in seconds. Ctrl-C stops everything.
#
#   ./quickstart.sh             start the repository and JupyterLab, print the URL that opens
#                               the example notebook in the browser; JupyterLab works in
#                               notebooks/ (git-ignored), where the example is copied once
#   ./quickstart.sh --headless  the same without a browser UI (jupyter-server only, as for CI)
#   ./quickstart.sh --check     run examples/scipy-in-seconds.ipynb headless, exit non-zero on failure
#
# Environment (all optional):
#   UI                          lab (default: JupyterLab) or none (same as --headless)
#   PYTHON                      interpreter to build the venvs with (default: python3, >= 3.11)
#   IPYDEPS_QUICKSTART_HOME     where .venv, .venv-kernel, ipydeps-data and .cache go (default: here)
#   IPYDEPS_QUICKSTART_PORT     repository server port (default: a free port)
#   JUPYTER_PORT                Jupyter server port (default: a free port)
#   JUPYTER_TOKEN               Jupyter token (default: a new random token each run)
#   IPYDEPS_QUICKSTART_PACKAGES packages to seed the repository with (default: numpy scipy pandas)
#   IPYDEPS_QUICKSTART_NOTEBOOK the example notebook (default: examples/scipy-in-seconds.ipynb):
#                               --check runs it in place; otherwise it is copied to the workspace
#   IPYDEPS_QUICKSTART_WORKSPACE JupyterLab's folder (default: notebooks/ beside .venv)
set -euo pipefail

SOURCE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
HOME_DIR="${IPYDEPS_QUICKSTART_HOME:-$SOURCE_DIR}"
PYTHON="${PYTHON:-python3}"
PACKAGES="${IPYDEPS_QUICKSTART_PACKAGES:-numpy scipy pandas}"
NOTEBOOK="${IPYDEPS_QUICKSTART_NOTEBOOK:-$SOURCE_DIR/examples/scipy-in-seconds.ipynb}"
WORKSPACE="${IPYDEPS_QUICKSTART_WORKSPACE:-$HOME_DIR/notebooks}"

VENV="$HOME_DIR/.venv"
KERNEL_BASE="$HOME_DIR/.venv-kernel"
DATA="$HOME_DIR/ipydeps-data"
STATE="$HOME_DIR/.cache/quickstart"
RUN="$STATE/run-$$"
RUNTIME_DIR=""


MODE=serve
UI="${UI:-lab}"
for argument in "$@"; do
    case "$argument" in
        --check) MODE=check ;;
        --headless) UI=none ;;
        -h | --help)
            sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "quickstart: unknown option '$argument' (try --help)" >&2
            exit 2
            ;;
    esac
done
case "$UI" in
    lab | none) ;;
    *)
        echo "quickstart: UI must be lab or none, not '$UI'" >&2
        exit 2
        ;;
esac

say() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'quickstart: %s\n' "$1" >&2
    [ -n "${2:-}" ] && printf '  try: %s\n' "$2" >&2
    exit 1
}

# ---------------------------------------------------------------------------- prerequisites
check_python() {
    command -v "$PYTHON" > /dev/null 2>&1 \
        || die "'$PYTHON' was not found" "apt-get install python3   (or set PYTHON=/path/to/python3.11+)"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "$("$PYTHON" -V 2>&1) is too old: ipydeps needs Python 3.11 or newer" \
            "apt-get install python3.11   (or set PYTHON=/path/to/python3.11+)"
    # Debian/Ubuntu split venv and ensurepip into python3-venv; both are needed for a venv with pip.
    if ! "$PYTHON" -c 'import ensurepip, venv' > /dev/null 2>&1; then
        local package
        package="python$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')-venv"
        if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null 2>&1; then
            say "installing $package (the venv module is missing)"
            apt-get install -y "$package" >&2 || die "could not install $package" "apt-get update && apt-get install $package"
        else
            die "the Python venv module is missing" "sudo apt-get install $package"
        fi
    fi
}

# Run a setup command with its output in the setup log; show the log's tail if it fails.
# pip is silent here for 30-45 s per step, so on a terminal a status line shows the time
# so far and the log's latest line (what pip is collecting or downloading); elsewhere the
# log's path is printed once per step.
quietly() {
    mkdir -p "$STATE"
    local ticker=""
    if [ -t 2 ]; then
        show_setup_progress "$$" &
        ticker=$!
    fi
    local status=0
    # No progress bars in the log: its latest line is then what pip is doing.
    PIP_PROGRESS_BAR=off "$@" >> "$STATE/setup.log" 2>&1 || status=$?
    if [ -n "$ticker" ]; then
        kill "$ticker" 2> /dev/null || true
        wait "$ticker" 2> /dev/null || true
        printf '\r\033[K' >&2
    fi
    if [ "$status" -ne 0 ]; then
        tail -n 30 "$STATE/setup.log" | sed 's/^/    /' >&2
        die "'$*' failed (full log: $STATE/setup.log)"
    fi
}

# The status line of quietly, redrawn every second until killed (or the script is gone: a
# background job of a script ignores Ctrl-C, so it watches its parent instead).
show_setup_progress() {
    local parent="$1" started=$SECONDS last width
    width="$(tput cols 2> /dev/null || echo 80)"
    while kill -0 "$parent" 2> /dev/null; do
        last="$(tail -n 1 "$STATE/setup.log" 2> /dev/null | tr -d '\r' | sed 's/^ *//')"
        printf '\r\033[K    %3ds  %s' "$((SECONDS - started))" "${last:0:$((width - 12))}" >&2
        sleep 1
    done
}

# A stamp holds a hash of what a cached step depends on, so re-runs skip finished work.
stamp_of() { cat "$@" | "$PYTHON" -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())'; }

setup_venv() {
    local stamp
    stamp="$(printf '%s' "$(stamp_of "$SOURCE_DIR/pyproject.toml" "$SOURCE_DIR/repo-server/pyproject.toml")")"
    if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.quickstart-stamp" 2> /dev/null)" = "$stamp" ]; then
        say "reusing $VENV"
        return
    fi
    say "creating $VENV with ipydeps-client[jupyter] and ipydeps-repo (about a minute; log: $STATE/setup.log)"
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    quietly "$VENV/bin/python" -m pip install --upgrade pip
    # nbclient runs the notebook for --check; jupyterlab/notebook are used when present.
    # The client's distribution was named `ipydeps` before it became `ipydeps-client` (that name
    # on PyPI is someone else's): an older venv of ours may still list it.
    quietly "$VENV/bin/python" -m pip uninstall --yes ipydeps
    quietly "$VENV/bin/python" -m pip install -e "${SOURCE_DIR}[jupyter]" -e "${SOURCE_DIR}/repo-server" nbclient nbformat
    printf '%s' "$stamp" > "$VENV/.quickstart-stamp"
    rm -f "$VENV/.quickstart-ui"
}

# JupyterLab, unless headless: a step of its own, so --headless runs never download it and a
# later run with the UI adds it to the existing venv.
setup_ui() {
    [ "$UI" = lab ] || return 0
    if [ "$(cat "$VENV/.quickstart-ui" 2> /dev/null)" = lab ]; then
        return
    fi
    say "adding JupyterLab to $VENV (once; log: $STATE/setup.log)"
    quietly "$VENV/bin/python" -m pip install jupyterlab
    printf 'lab' > "$VENV/.quickstart-ui"
}

# The kernel's base environment: ipykernel + ipydeps, and nothing scientific.
setup_kernel_base() {
    local stamp
    stamp="$(stamp_of "$SOURCE_DIR/pyproject.toml")"
    if [ -x "$KERNEL_BASE/bin/python" ] && [ "$(cat "$KERNEL_BASE/.quickstart-stamp" 2> /dev/null)" = "$stamp" ]; then
        say "reusing $KERNEL_BASE"
        return
    fi
    say "creating the kernel base environment $KERNEL_BASE (ipykernel + ipydeps; log: $STATE/setup.log)"
    [ -x "$KERNEL_BASE/bin/python" ] || "$PYTHON" -m venv "$KERNEL_BASE"
    quietly "$KERNEL_BASE/bin/python" -m pip install --upgrade pip
    quietly "$KERNEL_BASE/bin/python" -m pip uninstall --yes ipydeps
    quietly "$KERNEL_BASE/bin/python" -m pip install ipykernel -e "$SOURCE_DIR"
    printf '%s' "$stamp" > "$KERNEL_BASE/.quickstart-stamp"
}

# A fresh, throwaway venv per run that sees the kernel base through a .pth file: installs land
# in the throwaway venv (its own sys.prefix), so every run really installs SciPy again, and
# creating it takes a fraction of a second instead of a pip install of ipykernel.
make_throwaway_kernel_env() {
    local env="$RUN/kernel-env" site base_site
    "$PYTHON" -m venv --without-pip "$env"
    site="$("$env/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    base_site="$("$KERNEL_BASE/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    # An "import" line in a .pth runs at startup; addsitedir also processes the base's own .pth
    # files (the editable install of ipydeps is one).
    printf 'import site; site.addsitedir(%s)\n' "$("$PYTHON" -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$base_site")" \
        > "$site/_quickstart_kernel_base.pth"
    printf '%s' "$env"
}

# ------------------------------------------------------------------------------ repository
setup_repository() {
    mkdir -p "$DATA" "$STATE"
    if ! compgen -G "$DATA/tree/keys/*.rsa.pub" > /dev/null; then
        say "creating the signing key in $DATA"
        "$VENV/bin/ipydeps-repo" keygen --name quickstart --data "$DATA" >&2
    fi
    if [ ! -s "$STATE/publish-token" ]; then
        say "creating a publish token ($STATE/publish-token)"
        "$VENV/bin/ipydeps-repo" token create quickstart --data "$DATA" --output "$STATE/publish-token" >&2
    fi
    local stamp
    stamp="$PACKAGES $(uname -m) $("$PYTHON" -c 'import sys; print(sys.implementation.cache_tag)')"
    if [ "$(cat "$DATA/.quickstart-seeded" 2> /dev/null)" = "$stamp" ]; then
        say "reusing the seeded repository in $DATA"
        return
    fi
    say "seeding the repository with prebuilt $PACKAGES for this host (once; re-runs reuse it)"
    # shellcheck disable=SC2086 # PACKAGES is a list of names
    "$VENV/bin/ipydeps-repo" mirror $PACKAGES --data "$DATA" >&2
    printf '%s' "$stamp" > "$DATA/.quickstart-seeded"
}

# -------------------------------------------------------------------------------- children
CHILDREN=()

# Called on exit, and on Ctrl-C (130) or SIGTERM (143), which set the exit status explicitly:
# by the time the trap runs the children may already have exited with status 0.
cleanup() {
    local status=${1:-$?} pid
    # Ignore (not reset) INT/TERM while cleaning up: a second Ctrl-C must not cut it short.
    trap - EXIT
    trap '' INT TERM
    for pid in "${CHILDREN[@]}"; do
        kill -TERM "$pid" 2> /dev/null || true
    done
    for pid in "${CHILDREN[@]}"; do
        wait "$pid" 2> /dev/null || true
    done
    # Keep the servers' logs of a failed run (not of Ctrl-C) where the user can read them.
    if [ "$status" -ne 0 ] && [ "$status" -ne 130 ] && [ "$status" -ne 143 ] && [ -d "$RUN" ]; then
        rm -rf "$STATE/last-failed-run"
        mkdir -p "$STATE/last-failed-run"
        cp "$RUN"/*.log "$STATE/last-failed-run/" 2> /dev/null || true
        say "logs of this failed run: $STATE/last-failed-run/"
    fi
    rm -rf "$RUN"
    [ -n "$RUNTIME_DIR" ] && rm -rf "$RUNTIME_DIR"
    [ "$MODE" = serve ] && say "stopped"
    exit "$status"
}

# Start "$@" in the background with stdout+stderr on fd 3; read lines until one matches the
# ready pattern (so we wait on the child's own announcement, not a timer), then copy the rest
# to the log file. Sets READY_LINE to the matching line. (Not run in $(...): the child must
# belong to this shell so cleanup can stop it.)
READY_LINE=
start_child() {
    local name="$1" pattern="$2" log="$3" line
    shift 3
    # A real background job writing into a FIFO (not a process substitution: bash 5.2's
    # `wait -n` does not know those, so the crash watch at the end would return at once).
    # stdin from /dev/null: Jupyter asks "Shutdown this server?" on Ctrl-C only with a tty.
    # setsid: a Ctrl-C reaches only this shell, whose INT trap stops the children in order;
    # servers that saw the SIGINT themselves would exit first and look like a crash.
    local fifo="$RUN/child-${#CHILDREN[@]}.fifo"
    mkfifo "$fifo"
    setsid "$@" < /dev/null > "$fifo" 2>&1 &
    CHILDREN+=("$!")
    exec 3< "$fifo"
    rm -f "$fifo"
    while IFS= read -r line <&3; do
        printf '%s\n' "$line" >> "$log"
        if [[ "$line" =~ $pattern ]]; then
            cat <&3 >> "$log" &
            exec 3<&-
            READY_LINE="$line"
            return 0
        fi
    done
    exec 3<&-
    sed 's/^/    /' "$log" >&2
    die "$name exited before it was ready (log above, also in $log)"
}

start_repository() {
    start_child "the repository server" '^ipydeps-repo serving (http://[^ ]+)' "$RUN/repository.log" \
        "$VENV/bin/ipydeps-repo" serve --data "$DATA" --host 127.0.0.1 --port "${IPYDEPS_QUICKSTART_PORT:-0}"
    REPOSITORY_URL="${READY_LINE#ipydeps-repo serving }"
    say "repository server: $REPOSITORY_URL   (data: $DATA)"
}

# Every Jupyter/IPython directory lives under the run directory: nothing touches ~/.jupyter.
write_jupyter_config() {
    local kernel_env="$1"
    export JUPYTER_CONFIG_DIR="$RUN/jupyter-config"
    export JUPYTER_DATA_DIR="$RUN/jupyter-data"
    # The kernels' sockets live in the runtime directory (see below), and a Unix socket path
    # has at most 107 bytes: a short private directory, not one under a deep clone path.
    RUNTIME_DIR="$(mktemp -d "${TMPDIR:-/tmp}/ipydeps-qs.XXXXXX")"
    export JUPYTER_RUNTIME_DIR="$RUNTIME_DIR"
    export JUPYTER_PATH="$RUN/jupyter-data"
    export IPYTHONDIR="$RUN/ipython"
    mkdir -p "$JUPYTER_CONFIG_DIR" "$JUPYTER_DATA_DIR/kernels/python3" "$IPYTHONDIR/profile_default"
    # Kernels talk to the server over Unix sockets in the private (0700) runtime directory
    # instead of TCP on 127.0.0.1: any local user can connect to a loopback port and read a
    # kernel's output stream, and ipykernel warns about exactly that on every start.
    printf '%s\n' '"""Quickstart server: kernels over Unix sockets (ipc), not loopback TCP."""' \
        'c.KernelManager.transport = "ipc"' \
        > "$JUPYTER_CONFIG_DIR/jupyter_server_config.py"
    # JupyterLab would ask on first open whether to fetch Jupyter's news feed from the
    # internet: a local demo answers "never" itself (JupyterLab's own setting, as a default).
    mkdir -p "$JUPYTER_CONFIG_DIR/labconfig"
    printf '%s\n' '{"@jupyterlab/apputils-extension:notification": {"fetchNews": "false"}}' \
        > "$JUPYTER_CONFIG_DIR/labconfig/default_setting_overrides.json"
    # Headless means no browser UI even where an earlier run installed JupyterLab (its
    # server extension enables itself wherever it is installed).
    if [ "$UI" = none ]; then
        printf '%s\n' 'c.ServerApp.jpserver_extensions = {"jupyterlab": False}' \
            >> "$JUPYTER_CONFIG_DIR/jupyter_server_config.py"
    fi
    # The same profile setting the runtime image uses: every kernel loads the extension, so
    # %pip and !pip go through ipydeps.
    printf '%s\n' '"""Kernel profile: load ipydeps so %pip and !pip install through it."""' \
        "c.InteractiveShellApp.extensions = ['ipydeps']" \
        > "$IPYTHONDIR/profile_default/ipython_kernel_config.py"
    # Named python3 so it replaces the default kernel: the notebook opens with it.
    "$VENV/bin/python" - "$kernel_env/bin/python" "$JUPYTER_DATA_DIR/kernels/python3/kernel.json" << 'EOF'
import json, sys
python, target = sys.argv[1], sys.argv[2]
spec = {
    "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
    "display_name": "Python 3 (ipykernel)",
    "language": "python",
}
with open(target, "w", encoding="utf-8") as file:
    json.dump(spec, file, indent=1)
EOF
}

# The kernel sees only ipydeps settings: none of this machine's pip defaults, and no upstream
# index, so the demo proves the local route.
configure_ipydeps_env() {
    local name
    while IFS= read -r name; do
        unset "$name"
    done < <(compgen -e | grep -E '^(PIP|UV|IPYDEPS)_' || true)
    export PIP_CONFIG_FILE=/dev/null
    export PIP_DISABLE_PIP_VERSION_CHECK=1
    export IPYDEPS_REPOSITORY_URL="$REPOSITORY_URL"
    export IPYDEPS_UPSTREAM=deny
}

# Where the Jupyter server is rooted. --check runs the example where it is; otherwise users work
# in a git-ignored workspace holding a copy of it, so their own notebooks, checkpoints and the
# metadata a kernel writes into an opened notebook never touch the checkout.
ROOT_DIR=""
prepare_workspace() {
    if [ "$MODE" = check ]; then
        ROOT_DIR="$(dirname "$NOTEBOOK")"
        return
    fi
    ROOT_DIR="$WORKSPACE"
    mkdir -p "$ROOT_DIR"
    # Copied once: a copy the user has changed is theirs and stays as it is.
    if [ ! -e "$ROOT_DIR/$(basename "$NOTEBOOK")" ]; then
        cp "$NOTEBOOK" "$ROOT_DIR/"
    fi
}

JUPYTER_APP=jupyter_server
start_jupyter() {
    local app=jupyter_server args=()
    # JupyterLab unless headless; a headless run uses jupyter-server even where Lab is there.
    [ "$UI" = lab ] && app=jupyterlab
    JUPYTER_APP="$app"
    [ "$(id -u)" = 0 ] && args+=(--allow-root)
    JUPYTER_TOKEN="${JUPYTER_TOKEN:-$("$PYTHON" -c 'import secrets; print(secrets.token_hex(24))')}"
    export JUPYTER_TOKEN
    start_child "the Jupyter server" '^\[I .*\] (http://127\.0\.0\.1:[0-9]+/)' "$RUN/jupyter.log" \
        "$VENV/bin/python" -m "$app" --no-browser --ServerApp.ip=127.0.0.1 \
        --ServerApp.port="${JUPYTER_PORT:-0}" --ServerApp.port_retries=0 \
        --ServerApp.root_dir="$ROOT_DIR" "${args[@]}"
    [[ "$READY_LINE" =~ (http://127\.0\.0\.1:[0-9]+/) ]]
    JUPYTER_URL="${BASH_REMATCH[1]}"
}

main() {
    check_python
    # Two quickstarts at once (two terminals, parallel test runs) must not build the same venv
    # or seed the same store together: setup holds a lock; the servers then run side by side.
    mkdir -p "$STATE"
    exec 9> "$STATE/setup.lock"
    if command -v flock > /dev/null 2>&1 && ! flock -n 9; then
        say "another quickstart is setting up in $HOME_DIR; waiting for it"
        flock 9
    fi
    setup_venv
    setup_ui
    setup_kernel_base
    setup_repository
    exec 9>&-
    mkdir -p "$RUN"
    trap cleanup EXIT
    trap 'cleanup 130' INT
    trap 'cleanup 143' TERM
    start_repository
    prepare_workspace
    local kernel_env
    kernel_env="$(make_throwaway_kernel_env)"
    configure_ipydeps_env
    write_jupyter_config "$kernel_env"
    start_jupyter
    if [ "$MODE" = check ]; then
        say "checking $NOTEBOOK headless"
        "$VENV/bin/python" "$SOURCE_DIR/scripts/quickstart_check.py" \
            --notebook "$NOTEBOOK" --server "$JUPYTER_URL" --token "$JUPYTER_TOKEN" \
            --kernel-env "$kernel_env" --ui "$UI"
        return
    fi
    local notebook_name open_line
    # The server's root is the workspace, which holds the notebook's copy under its file name.
    notebook_name="$(basename "$NOTEBOOK")"
    if [ "$JUPYTER_APP" = jupyterlab ]; then
        open_line="  Open in your browser:  ${JUPYTER_URL}lab/tree/${notebook_name}?token=${JUPYTER_TOKEN}"
    else
        open_line="  Headless (no browser UI): connect a Jupyter client, e.g. VS Code's 'Existing
  Jupyter Server', to the server URL below; ./quickstart.sh without --headless has JupyterLab."
    fi
    # Built first, then printed by the printf builtin: once the banner is visible no external
    # command runs in the foreground, so a Ctrl-C right after it reaches the INT trap (bash
    # may not run the trap when a foreground child such as cat dies of the same SIGINT).
    local banner
    banner="$(cat << EOF

${open_line}

  Jupyter server:      ${JUPYTER_URL}?token=${JUPYTER_TOKEN}
  repository:          ${REPOSITORY_URL}   (publish token in $STATE/publish-token)
  kernel environment:  ${kernel_env}   (throwaway: deleted on exit)
  logs:                $RUN/

  Open the notebook and run it, or from Python:  import ipydeps; ipydeps.pip(['scipy'])
  Press Ctrl-C to stop.
EOF
)"
    printf '%s\n\n' "$banner"
    # Returns when either server exits on its own (a crash): then stop the other one too.
    wait -n "${CHILDREN[@]}" || true
    say "a server stopped unexpectedly"
    exit 1
}

main
