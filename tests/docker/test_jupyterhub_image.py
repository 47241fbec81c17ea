"""The runtime image as a JupyterHub single-user server: build arg, layer, start script, pins.

No Docker engine runs here: the Dockerfile's shell snippets and the start script are run on
this host (the real thing, under a real hub, is tests/e2e/test_jupyterhub.py).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.docker.test_docker_files import DOCKER, RUNTIME, arg_defaults, final_stage, instructions

START = DOCKER / "start-jupyter"


def _requirements_snippet() -> str:
    """The wheels stage's shell code that adds jupyterhub to the requirements."""
    runs = " ".join(rest for keyword, rest in instructions(RUNTIME) if keyword == "RUN")
    match = re.search(r'case "\$JUPYTERHUB_VERSION" in .*? esac;', runs)
    assert match, "the wheels stage no longer reads JUPYTERHUB_VERSION"
    return match.group(0)


def _requirements_for(version: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("jupyter-server>=2.10\n")
    script = _requirements_snippet().replace("/src/requirements.txt", str(requirements))
    return subprocess.run(
        ["sh", "-euc", script],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "JUPYTERHUB_VERSION": version},
    )


def test_jupyterhub_version_is_a_build_arg_with_a_current_default(tmp_path: Path) -> None:
    default = arg_defaults(RUNTIME)["JUPYTERHUB_VERSION"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", default), default
    assert _requirements_for(default, tmp_path).returncode == 0
    assert (tmp_path / "requirements.txt").read_text().splitlines() == [
        "jupyter-server>=2.10",
        f"jupyterhub=={default}",
    ]


def test_an_operator_picks_the_hubs_version_or_none(tmp_path: Path) -> None:
    assert _requirements_for("5.4.3", tmp_path).returncode == 0
    assert (tmp_path / "requirements.txt").read_text().endswith("jupyterhub==5.4.3\n")
    assert _requirements_for("", tmp_path).returncode == 0  # no hub support
    assert "jupyterhub" not in (tmp_path / "requirements.txt").read_text()


@pytest.mark.parametrize(
    "version", ["6.1.1 --index-url http://evil.example/", "6.1.1\nevil", ">=6", "6.1.1;"]
)
def test_a_version_that_is_not_a_version_fails_the_build(version: str, tmp_path: Path) -> None:
    result = _requirements_for(version, tmp_path)
    assert result.returncode == 1
    assert "JUPYTERHUB_VERSION must be a version such as 6.1.1" in result.stderr
    assert (tmp_path / "requirements.txt").read_text() == "jupyter-server>=2.10\n"


def test_the_hubs_web_assets_never_reach_a_layer() -> None:
    install = next(
        rest
        for keyword, rest in final_stage(RUNTIME)
        if keyword == "RUN" and "--requirement /wheels/requirements.txt" in rest
    )
    # Pruned in the same RUN as the install, before the venv changes hands; the prune script
    # itself removing share/jupyterhub is tested in test_docker_files.py.
    assert install.index("/usr/local/libexec/runtime-prune /opt/kernel") < install.index("chown -R")
    assert 'rm -rf "$venv/share/jupyterhub"' in (RUNTIME.parent / "runtime-prune").read_text()


def test_the_smoke_test_imports_the_single_user_server_when_there_is_one() -> None:
    stage = final_stage(RUNTIME)
    user_at = next(i for i, (keyword, _) in enumerate(stage) if keyword == "USER")
    smoke = " ".join(rest for keyword, rest in stage[user_at:] if keyword == "RUN")
    assert (
        "if command -v jupyterhub-singleuser; then "
        "python3 -c 'import jupyterhub.singleuser.app'; fi"
    ) in smoke


def _stand_ins(directory: Path, *apps: str) -> None:
    """Executables on PATH that print their name, arguments and the hub's default URL."""
    for app in apps:
        stand_in = directory / app
        stand_in.write_text(f'#!/bin/sh\necho {app} "$@" "url=${{JUPYTERHUB_DEFAULT_URL:-}}"\n')
        stand_in.chmod(0o755)


def _start(tmp_path: Path, **environ: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": f"{tmp_path}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "NOTEBOOK_DIR": str(tmp_path / "work"),
        **environ,
    }
    return subprocess.run(
        ["sh", str(START), "--x"], env=env, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize("hub_variable", ["JUPYTERHUB_API_TOKEN", "JUPYTERHUB_SERVICE_URL"])
def test_under_a_hub_the_start_script_runs_the_single_user_server(
    tmp_path: Path, hub_variable: str
) -> None:
    _stand_ins(
        tmp_path, "jupyter-lab", "jupyter-notebook", "jupyter-server", "jupyterhub-singleuser"
    )
    started = {
        ui: _start(tmp_path, IPYDEPS_UI=ui, **{hub_variable: "set-by-the-spawner"})
        for ui in ("lab", "notebook", "none")
    }
    assert {ui: result.stdout.strip() for ui, result in started.items()} == {
        "lab": "jupyterhub-singleuser --x url=",
        "notebook": "jupyterhub-singleuser --x url=/tree",  # Notebook 7, not JupyterLab
        "none": "jupyterhub-singleuser --x url=",
    }
    # Without the hub's variables the same image starts its own server, as before.
    assert _start(tmp_path, IPYDEPS_UI="lab").stdout.strip() == "jupyter-lab --x url="


def test_the_hubs_default_url_wins_over_the_notebook_images(tmp_path: Path) -> None:
    _stand_ins(tmp_path, "jupyterhub-singleuser")
    result = _start(
        tmp_path,
        IPYDEPS_UI="notebook",
        JUPYTERHUB_API_TOKEN="t",
        JUPYTERHUB_DEFAULT_URL="/lab/tree/welcome.ipynb",
    )
    assert result.stdout.strip() == "jupyterhub-singleuser --x url=/lab/tree/welcome.ipynb"


def test_an_image_without_the_single_user_server_says_how_to_get_one(tmp_path: Path) -> None:
    _stand_ins(tmp_path, "jupyter-lab")
    result = _start(tmp_path, JUPYTERHUB_API_TOKEN="t")
    assert result.returncode == 2
    assert "no jupyterhub-singleuser" in result.stderr
    assert "--build-arg JUPYTERHUB_VERSION=<your hub's version>" in result.stderr


def test_the_constraints_pin_jupyterhubs_dependencies_but_leave_it_to_the_build_arg() -> None:
    names = {
        re.sub(r"[-_.]+", "-", line.split("==")[0]).lower()
        for line in (DOCKER / "runtime-constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    assert "jupyterhub" not in names
    # What jupyterhub-singleuser imports beyond jupyter-server (measured: docs/jupyterhub.md).
    assert {"sqlalchemy", "alembic", "aiohttp", "cryptography", "pydantic"} <= names


def test_the_start_script_execs_so_the_spawners_signals_reach_the_server() -> None:
    lines = [line.strip() for line in START.read_text().splitlines()]
    assert 'exec jupyterhub-singleuser "$@"' in lines
    assert os.access(START, os.X_OK)


def test_ci_stops_with_how_to_install_node_when_it_cannot_install_it(tmp_path: Path) -> None:
    # .ci/run installs node and npm as root with apt-get; anyone else is told what to run.
    # Here: no node on PATH, and `id -u` says a non-root user.
    (tmp_path / "id").write_text("#!/bin/sh\necho 1000\n")
    (tmp_path / "id").chmod(0o755)
    for tool in ("bash", "dirname"):
        (tmp_path / tool).symlink_to(
            f"/bin/{tool}" if Path(f"/bin/{tool}").exists() else f"/usr/bin/{tool}"
        )
    result = subprocess.run(
        [str(DOCKER.parent / ".ci" / "run")],
        capture_output=True,
        text=True,
        env={"PATH": str(tmp_path)},
        check=False,
        timeout=60,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the JupyterHub tests need node and npm" in result.stderr
    assert "sudo apt-get install nodejs npm" in result.stderr
