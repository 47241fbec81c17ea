"""Static and behavioural checks of docker/: the images and compose file as an operator meets them.

No Docker engine runs here, so the Dockerfiles and compose.yaml are checked for the
properties that matter (pinned base, non-root user, tini, healthchecks, key handling, the
repository wiring), hadolint/shellcheck run for real, and the scripts the image runs
(healthcheck, start script, Jupyter/IPython config) are executed on this host.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from traitlets.config import Config

from ipydeps.environment import APK_HELPER

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
RUNTIME = DOCKER / "runtime.Dockerfile"
REPO = DOCKER / "repo.Dockerfile"
WEB = DOCKER / "web.Dockerfile"
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    result = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def final_stage(dockerfile: Path) -> list[tuple[str, str]]:
    """The instructions after the last FROM."""
    steps = instructions(dockerfile)
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def arg_defaults(dockerfile: Path) -> dict[str, str]:
    defaults = {}
    for keyword, rest in instructions(dockerfile):
        if keyword == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            defaults[name] = value.strip('"')
    return defaults


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    return data


def tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]' provides it")
    return found


# ------------------------------------------------------------------------------ linters


@pytest.mark.static
@pytest.mark.parametrize("dockerfile", [RUNTIME, REPO, WEB], ids=lambda path: path.name)
def test_dockerfiles_are_hadolint_clean(dockerfile: Path) -> None:
    result = subprocess.run(
        [tool("hadolint"), str(dockerfile)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.static
@pytest.mark.parametrize(
    "script",
    [
        ROOT / "quickstart.sh",
        DOCKER / "start-jupyter",
        DOCKER / "repo-entrypoint",
        DOCKER / "runtime-prune",
        ROOT / ".ci" / "run",
    ],
    ids=lambda path: path.name,
)
def test_shell_scripts_are_shellcheck_clean(script: Path) -> None:
    result = subprocess.run(
        [tool("shellcheck"), str(script)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


# ------------------------------------------------------------------------- runtime image


@pytest.mark.parametrize("dockerfile", [RUNTIME, REPO], ids=lambda path: path.name)
def test_every_stage_starts_from_alpine_pinned_by_version_and_digest(dockerfile: Path) -> None:
    defaults = arg_defaults(dockerfile)
    assert re.fullmatch(r"3\.\d+\.\d+", defaults["ALPINE_VERSION"])
    assert DIGEST.fullmatch(defaults["ALPINE_DIGEST"])
    froms = [rest for keyword, rest in instructions(dockerfile) if keyword == "FROM"]
    assert len(froms) >= 2, "expected a build stage and a final stage"
    for image in froms:
        assert image.startswith("alpine:${ALPINE_VERSION}@${ALPINE_DIGEST}"), image


def test_runtime_runs_as_a_fixed_non_root_uid_under_tini_with_a_healthcheck() -> None:
    stage = final_stage(RUNTIME)
    defaults = arg_defaults(RUNTIME)
    users = [rest for keyword, rest in stage if keyword == "USER"]
    assert users == ["${NB_UID}"] and defaults["NB_UID"] == "1000"
    assert defaults["NB_USER"] == "jovyan"
    entrypoint = [rest for keyword, rest in stage if keyword == "ENTRYPOINT"]
    assert entrypoint == ['["/sbin/tini", "--"]']
    apk_adds = " ".join(rest for keyword, rest in stage if keyword == "RUN" and "apk add" in rest)
    for package in ("tini", "doas", "python3", "ca-certificates"):
        assert re.search(rf"\s{re.escape(package)}\s", apk_adds), package
    healthcheck = [rest for keyword, rest in stage if keyword == "HEALTHCHECK"]
    assert len(healthcheck) == 1 and "jupyter-healthcheck" in healthcheck[0]
    assert "api/status" in (DOCKER / "jupyter-healthcheck").read_text()


def test_runtime_ends_with_a_smoke_test_as_the_notebook_user() -> None:
    stage = final_stage(RUNTIME)
    user_at = next(i for i, (keyword, _) in enumerate(stage) if keyword == "USER")
    smoke = [rest for keyword, rest in stage[user_at:] if keyword == "RUN"]
    assert any("import ipydeps, jupyter_server, ipykernel" in run for run in smoke)


def test_build_dependencies_are_virtual_and_removed_in_the_same_layer() -> None:
    for dockerfile in (RUNTIME, REPO):
        for keyword, rest in instructions(dockerfile):
            if keyword == "RUN" and "--virtual .build-deps" in rest:
                assert "apk del --no-network .build-deps" in rest, dockerfile.name


def test_kernel_venv_sees_apk_site_packages_and_belongs_to_the_notebook_user() -> None:
    runs = " ".join(rest for keyword, rest in final_stage(RUNTIME) if keyword == "RUN")
    assert "python3 -m venv --system-site-packages /opt/kernel" in runs
    assert 'chown -R "$NB_USER:$NB_USER" /opt/kernel' in runs
    env = " ".join(rest for keyword, rest in final_stage(RUNTIME) if keyword == "ENV")
    assert "VIRTUAL_ENV=/opt/kernel" in env


def test_repository_key_is_never_trusted_on_first_use() -> None:
    runs = " ".join(rest for keyword, rest in final_stage(RUNTIME) if keyword == "RUN")
    # A key URL without its sha256 fails the build; the download is checked before install.
    assert 'if [ -z "$IPYDEPS_KEY_SHA256" ]' in runs
    check = runs.index("sha256sum -c -")
    assert runs.index('install -m 0644 "/tmp/$key_name"') > check
    assert '/alpine/${IPYDEPS_APK_REPOSITORY}" >> /etc/apk/repositories' in runs


def test_apk_helper_and_doas_rule_are_installed_where_ipydeps_looks() -> None:
    copies = [rest for keyword, rest in final_stage(RUNTIME) if keyword == "COPY"]
    assert f"--chmod=0755 docker/ipydeps-apk-add {APK_HELPER}" in copies
    assert "--chmod=0400 docker/doas-ipydeps.conf /etc/doas.d/ipydeps.conf" in copies
    rule = (DOCKER / "doas-ipydeps.conf").read_text()
    assert f"permit nopass jovyan as root cmd {APK_HELPER}" in rule


def test_ui_build_arg_accepts_lab_notebook_or_none_only() -> None:
    runs = " ".join(rest for keyword, rest in instructions(RUNTIME) if keyword == "RUN")
    assert 'lab) echo "jupyterlab==${JUPYTERLAB_VERSION}"' in runs
    assert 'notebook) echo "notebook==${NOTEBOOK_VERSION}"' in runs
    assert "UI must be lab, notebook or none" in runs


def test_ui_is_jupyterlab_by_default_in_both_stages_and_headless_stays_a_build_arg() -> None:
    # Both stages declare the arg: the wheels stage picks the wheels, the runtime stage
    # tells start-jupyter (IPYDEPS_UI) which front end to run.
    declared = [
        rest
        for keyword, rest in instructions(RUNTIME)
        if keyword == "ARG" and rest.startswith("UI")
    ]
    assert declared == ["UI=lab", "UI=lab"]
    assert "IPYDEPS_UI=${UI}" in " ".join(
        rest for keyword, rest in final_stage(RUNTIME) if keyword == "ENV"
    )
    runs = " ".join(rest for keyword, rest in instructions(RUNTIME) if keyword == "RUN")
    assert "none) ;;" in runs  # --build-arg UI=none: jupyter-server alone, no UI wheels


def test_jupyterlab_fetches_no_news_unless_a_user_asks() -> None:
    copies = [rest for keyword, rest in final_stage(RUNTIME) if keyword == "COPY"]
    assert (
        "--chmod=0644 docker/labconfig-default-settings.json "
        "/etc/jupyter/labconfig/default_setting_overrides.json"
    ) in copies
    settings = json.loads((DOCKER / "labconfig-default-settings.json").read_text())
    assert settings == {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false"}}


def test_start_script_runs_jupyterlab_unless_told_otherwise(tmp_path: Path) -> None:
    # Stand-ins on PATH record which front end start-jupyter would exec.
    for app in ("jupyter-lab", "jupyter-notebook", "jupyter-server"):
        stand_in = tmp_path / app
        stand_in.write_text(f'#!/bin/sh\necho {app} "$@"\n')
        stand_in.chmod(0o755)
    base = {
        "PATH": f"{tmp_path}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "NOTEBOOK_DIR": str(tmp_path / "work"),
    }
    chosen = {}
    for ui in (None, "lab", "none", "notebook"):
        env = dict(base) if ui is None else {**base, "IPYDEPS_UI": ui}
        result = subprocess.run(
            ["sh", str(DOCKER / "start-jupyter"), "--x"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        chosen[ui] = result.stdout.strip()
    assert chosen == {
        None: "jupyter-lab --x",
        "lab": "jupyter-lab --x",
        "none": "jupyter-server --x",
        "notebook": "jupyter-notebook --x",
    }


def test_kernels_use_ipc_so_ipykernel_has_no_plain_tcp_to_warn_about(tmp_path: Path) -> None:
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    config = load_config(DOCKER / "jupyter_server_config.py", JUPYTER_TOKEN="secret")
    assert config.KernelManager.transport == "ipc"
    spec_dir = tmp_path / "kernels" / "here"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "here",
                "language": "python",
            }
        )
    )
    specs = KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")])

    def run_kernel(config: Config, name: str) -> tuple[str, str]:
        """Start a kernel the way the server would with ``config``; its transport, stderr."""
        manager = KernelManager(
            kernel_name="here",
            kernel_spec_manager=specs,
            config=config,
            connection_file=str(tmp_path / f"kernel-{name}.json"),
        )
        log = tmp_path / f"{name}.log"
        with open(log, "w") as stderr:
            manager.start_kernel(stderr=stderr, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        client = manager.blocking_client()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=120)
            seen: list[str] = []
            client.execute_interactive(
                "print(6 * 7)",
                timeout=120,
                output_hook=lambda m: seen.append(m["content"].get("text", "")),
            )
            assert "42\n" in seen
            transport = json.loads(Path(manager.connection_file).read_text())["transport"]
        finally:
            client.stop_channels()
            manager.shutdown_kernel(now=True)
        return transport, log.read_text()

    transport, stderr = run_kernel(config, "ipc")
    assert transport == "ipc"
    assert "without encryption" not in stderr, stderr
    # The warning this setting avoids, as a kernel over loopback TCP prints it.
    import ipykernel.kernelapp

    if "without encryption" in Path(ipykernel.kernelapp.__file__).read_text():
        transport, stderr = run_kernel(Config(), "tcp")
        assert transport == "tcp" and "without encryption" in stderr


def test_runtime_constraints_pin_every_project_exactly() -> None:
    lines = [
        line
        for line in (DOCKER / "runtime-constraints.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    bad = [line for line in lines if not re.fullmatch(r"[A-Za-z0-9._-]+==[A-Za-z0-9.+!-]+", line)]
    assert bad == []
    names = {re.sub(r"[-_.]+", "-", line.split("==")[0]).lower() for line in lines}
    assert {"jupyter-server", "ipykernel", "jupyterlab", "notebook"} <= names


# ------------------------------------------------------------------- scripts and config


def load_config(path: Path, **environ: str) -> Config:
    """Run a Jupyter/IPython config file the way traitlets does, in a clean environment."""
    config = Config()
    saved = dict(os.environ)
    os.environ.update(environ)
    try:
        exec(compile(path.read_text(), str(path), "exec"), {"get_config": lambda: config})
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return config


def test_every_kernel_loads_the_ipydeps_extension() -> None:
    config = load_config(DOCKER / "ipython_kernel_config.py")
    assert config.InteractiveShellApp.extensions == ["ipydeps"]


def test_jupyter_config_keeps_token_auth_on() -> None:
    config = load_config(DOCKER / "jupyter_server_config.py", JUPYTER_TOKEN="secret")
    assert config.ServerApp.ip == "0.0.0.0"
    assert config.ServerApp.port == 8888
    assert config.ServerApp.open_browser is False
    with pytest.raises(SystemExit, match="JUPYTER_TOKEN is set but empty"):
        load_config(DOCKER / "jupyter_server_config.py", JUPYTER_TOKEN="")


def test_start_script_refuses_an_unknown_ui() -> None:
    result = subprocess.run(
        ["sh", str(DOCKER / "start-jupyter")],
        capture_output=True,
        text=True,
        env={**os.environ, "IPYDEPS_UI": "desktop"},
        check=False,
    )
    assert result.returncode == 2
    assert "IPYDEPS_UI must be lab, notebook or none, not 'desktop'" in result.stderr


def test_healthcheck_fails_without_a_server_and_passes_against_a_real_one(tmp_path: Path) -> None:
    runtime_dir = tmp_path / "runtime"
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(runtime_dir),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_DATA_DIR": str(tmp_path),
    }
    healthcheck = [sys.executable, str(DOCKER / "jupyter-healthcheck")]
    down = subprocess.run(healthcheck, capture_output=True, text=True, env=env, check=False)
    assert down.returncode == 1
    assert "no running Jupyter server found" in down.stderr
    # A real server with a generated token: the healthcheck finds port and token on its own.
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter_server",
            "--ServerApp.ip=127.0.0.1",
            "--ServerApp.port=0",
            "--no-browser",
            "--allow-root",
            f"--ServerApp.root_dir={tmp_path}",
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert server.stderr is not None
        for line in server.stderr:
            if re.search(r"http://127\.0\.0\.1:\d+/\?token=", line):
                break
        up = subprocess.run(healthcheck, capture_output=True, text=True, env=env, check=False)
        assert up.returncode == 0, up.stderr
    finally:
        server.terminate()
        server.wait(timeout=30)


# ------------------------------------------------------------------------------ compose


def test_compose_wires_the_runtime_to_the_repository_through_nginx() -> None:
    services = compose()["services"]
    runtime = services["runtime"]
    assert "IPYDEPS_REPOSITORY_URL=http://web:8080/" in runtime["environment"]
    assert runtime["build"]["args"]["IPYDEPS_REPOSITORY_URL"] == "http://web:8080/"
    assert runtime["build"]["dockerfile"] == "docker/runtime.Dockerfile"
    assert runtime["depends_on"]["web"]["condition"] == "service_healthy"
    assert runtime["depends_on"]["apk-keys"]["condition"] == "service_completed_successfully"
    # The repository serves on the port nginx's upstream names; nginx listens on the URL's.
    repo_command = [rest for keyword, rest in final_stage(REPO) if keyword == "CMD"][0]
    assert '"--port", "8080"' in repo_command
    assert services["repo"]["build"]["dockerfile"] == "docker/repo.Dockerfile"
    nginx_conf = (DOCKER / "nginx" / "nginx.conf").read_text()
    assert "server repo:8080;" in nginx_conf and "listen 8080;" in nginx_conf
    # Only nginx is published: every read and write goes through it.
    assert "ports" not in services["repo"]
    web = services["web"]
    assert web["build"]["dockerfile"] == "docker/web.Dockerfile"
    assert web["depends_on"]["repo"]["condition"] == "service_healthy"
    assert web["ports"] == ["127.0.0.1:${IPYDEPS_REPO_PORT:-8080}:8080"]


def test_nginx_reads_the_tree_read_only_as_an_unprivileged_user() -> None:
    web = compose()["services"]["web"]
    assert web["volumes"] == ["repo-data:/data:ro"]
    assert "root /data/tree;" in (DOCKER / "nginx" / "nginx.conf").read_text()
    stage = final_stage(WEB)
    assert [rest for keyword, rest in stage if keyword == "USER"] == ["nginx"]
    assert [rest for keyword, rest in stage if keyword == "ENTRYPOINT"] == ['["/sbin/tini", "--"]']
    copied = " ".join(rest for keyword, rest in stage if keyword == "COPY")
    for name in ("nginx.conf", "ipydeps-repo-http.conf", "ipydeps-repo-locations.conf"):
        assert f"docker/nginx/{name}" in copied
    defaults = arg_defaults(WEB)
    assert DIGEST.fullmatch(defaults["ALPINE_DIGEST"])
    assert defaults["ALPINE_DIGEST"] == arg_defaults(REPO)["ALPINE_DIGEST"]
    assert [rest for keyword, rest in stage if keyword == "FROM"] == [
        "alpine:${ALPINE_VERSION}@${ALPINE_DIGEST} AS web"
    ]


def test_compose_shares_the_repository_key_read_only() -> None:
    services = compose()["services"]
    assert "apk-keys:/etc/apk/keys:ro" in services["runtime"]["volumes"]
    keys = services["apk-keys"]
    assert "repo-data:/repo:ro" in keys["volumes"]
    assert "apk-keys:/out" in keys["volumes"]
    assert "/repo/tree/keys/*.rsa.pub" in keys["command"][0]
    assert keys["depends_on"]["repo"]["condition"] == "service_healthy"


def test_compose_has_healthchecks_and_never_switches_token_auth_off() -> None:
    services = compose()["services"]
    assert services["repo"]["healthcheck"]["test"][-1].endswith("/api/v1/health")
    assert services["web"]["healthcheck"]["test"][-1].endswith("/simple/")
    assert services["runtime"]["healthcheck"]["test"] == ["CMD", "jupyter-healthcheck"]
    # Passed through only when set: an empty default would turn authentication off.
    assert "JUPYTER_TOKEN" in services["runtime"]["environment"]
    assert not any(item.startswith("JUPYTER_TOKEN=") for item in services["runtime"]["environment"])


def test_compose_publishes_ports_on_loopback_only() -> None:
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)


def test_runtime_prune_keeps_english_and_what_the_servers_use(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    locale = venv / "lib" / "python3.12" / "site-packages" / "babel" / "locale-data"
    locale.mkdir(parents=True)
    for name in ("root", "en", "en_GB", "en_150", "fr", "fr_FR", "de", "zh_Hant_TW"):
        (locale / f"{name}.dat").write_bytes(b"x")
    (locale / "LICENSE.unicode").write_text("kept")
    hub_assets = venv / "share" / "jupyterhub" / "static"
    hub_assets.mkdir(parents=True)
    (venv / "share" / "jupyter" / "lab").mkdir(parents=True)
    typeshed = locale.parents[1] / "jedi" / "third_party" / "typeshed"
    (typeshed / "stubs" / "requests").mkdir(parents=True)
    (typeshed / "stdlib").mkdir()
    result = subprocess.run(
        ["sh", str(DOCKER / "runtime-prune"), str(venv)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in locale.iterdir()) == [
        "LICENSE.unicode",
        "en.dat",
        "en_150.dat",
        "en_GB.dat",
        "root.dat",
    ]
    assert not (venv / "share" / "jupyterhub").exists()
    assert (venv / "share" / "jupyter" / "lab").is_dir()
    assert sorted(path.name for path in typeshed.iterdir()) == ["stdlib"]
    # A headless venv has no babel: nothing to do, no error. A wrong argument is refused.
    assert (
        subprocess.run(
            ["sh", str(DOCKER / "runtime-prune"), str(tmp_path / "none")],
            capture_output=True,
            check=False,
        ).returncode
        == 2
    )


def test_completion_still_works_in_a_pruned_venv(tmp_path: Path) -> None:
    # The kernel's completion (jedi, through IPython) on a copy of this venv's jedi, pruned as
    # the image prunes it: the standard library still completes, and a third-party package
    # whose stubs went completes from its own source.
    import jedi

    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    shutil.copytree(Path(jedi.__file__).parent, site / "jedi")
    assert (site / "jedi" / "third_party" / "typeshed" / "stubs").is_dir()
    subprocess.run(["sh", str(DOCKER / "runtime-prune"), str(tmp_path / "venv")], check=True)
    assert not (site / "jedi" / "third_party" / "typeshed" / "stubs").exists()
    code = (
        "import jedi, sys; assert jedi.__file__.startswith(sys.argv[1]), jedi.__file__\n"
        "complete = lambda text: {c.name for c in jedi.Script(text).complete()}\n"
        "print(sorted(complete('import json\\njson.lo')\n"
        "             | complete('import yaml\\nyaml.safe_l')))"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run(
        [sys.executable, "-c", code, str(site)], env=env, check=True, capture_output=True, text=True
    ).stdout
    assert "load" in out and "loads" in out and "safe_load" in out, out


def test_compose_mounts_one_shared_cache_volume_where_the_runtime_looks_for_it() -> None:
    data = compose()
    runtime = data["services"]["runtime"]
    assert "IPYDEPS_SHARED_CACHE=/var/cache/ipydeps-shared" in runtime["environment"]
    assert "ipydeps-shared:/var/cache/ipydeps-shared" in runtime["volumes"]
    assert "ipydeps-shared" in data["volumes"]
    # The image makes the directory for the notebook user (a new named volume copies its
    # owner) and leaves the cache off unless the runtime is started with the variable.
    text = RUNTIME.read_text()
    assert 'install -d -m 0755 -o "$NB_USER" -g "$NB_USER" /var/cache/ipydeps-shared' in text
    assert "IPYDEPS_SHARED_CACHE=" not in text
