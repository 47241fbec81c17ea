"""What a notebook user sees of an install, in a real kernel against the real repository server.

One display per install that becomes the summary in place (no ``Out[n]`` repeating it),
two sizes with their names (downloaded, on disk), each error once, a failed ``%pip install``
that stops "Run All" (nbclient, and the kernel's ``stop_on_error`` that JupyterLab sends), and
an interrupted install that says what changed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_notebook import Notebook
from tests.ipydeps.test_stored_copies import routes_for
from tests.support.kernels import Kernel, run_notebook
from tests.support.loopback import Scripted, scripted_server
from tests.support.notebook_server import notebook_server
from tests.support.server import start_server
from tests.support.venvs import make_venv, site_packages, snapshot
from tests.support.wheels import make_wheel

pytestmark = pytest.mark.e2e


def _environment(server_url: str, work: Path) -> dict[str, str]:
    return {
        "IPYDEPS_REPOSITORY_URL": server_url,
        "IPYDEPS_UPSTREAM": "deny",
        "IPYDEPS_APK": "never",
        "IPYDEPS_RETRIES": "1",
        "HOME": str(work),
        "XDG_CONFIG_HOME": str(work / "config"),
    }


@pytest.fixture(scope="module")
def notebook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Notebook]:
    work = tmp_path_factory.mktemp("display")
    server = start_server(work / "repo-data")
    venv = work / "env"
    python = make_venv(venv, see_test_packages=True)
    (work / "wheels").mkdir()
    kernel = Kernel(python, work, _environment(server.url, work))
    try:
        assert kernel.run("import ipydeps\n%load_ext ipydeps").error is None
        yield Notebook(kernel, server, venv, work / "wheels")
    finally:
        kernel.stop()
        server.stop()


def test_one_install_is_one_display_that_becomes_the_summary(notebook: Notebook) -> None:
    notebook.publish("one-dep", "1.0")
    notebook.publish("one-pkg", "1.0", requires=["one-dep"])
    done = notebook.kernel.run("ipydeps.pip(['one-pkg'])")  # the cell's last expression
    assert done.error is None, done.text
    # One display, replaced in place: plan, progress, summary; no Out[n] repeating it.
    assert "execute_result" not in done.kinds, done.kinds
    assert done.kinds.count("display_data") == 1 and len(set(done.display_ids)) == 1
    assert done.display_ids[0] is not None
    plain = [str(data["text/plain"]) for data in done.displays]
    assert "dependency of one-pkg" in plain[0]  # first the plan (what a console keeps)
    assert any("<th>state</th>" in str(data["text/html"]) for data in done.displays)
    summary = f"Installed one-dep 1.0 (wheel from {notebook.source}), one-pkg 1.0"
    assert plain[-1].startswith(summary), plain[-1]
    assert "<th>downloaded</th><th>on disk</th>" in str(done.displays[-1]["text/html"])
    # What the notebook shows once done: the summary once, no printed copy.
    assert done.shown().count(summary) == 1, done.shown()
    assert done.stdout == "" and done.stderr == "", done.text


def test_the_result_shows_itself_when_inspected_later(notebook: Notebook) -> None:
    notebook.publish("later-pkg", "1.0", files={"later_pkg/__init__.py": "x = 1\n" * 1000})
    assigned = notebook.kernel.run("result = ipydeps.pip(['later-pkg'])")
    assert assigned.error is None and "execute_result" not in assigned.kinds, assigned.text
    later = notebook.kernel.run("result")
    assert later.error is None, later.text
    assert "Installed later-pkg 1.0" in later.shown()
    assert "<th>on disk</th>" in str(later.displays[-1]["text/html"])
    # "on disk" is what the wheel's files take once installed: the sizes RECORD gives them
    # (all but INSTALLER, which ipydeps adds, and RECORD, which has no size of its own).
    checked = notebook.kernel.run(
        "import importlib.metadata as m\n"
        "files = [f for f in m.files('later-pkg') if f.name != 'INSTALLER']\n"
        "print(sum(f.size or 0 for f in files), result.installed[0].on_disk)"
    )
    listed, reported = checked.stdout.split()
    assert int(listed) > 6000 and reported == listed, checked.text


def test_a_stored_copy_is_named_in_the_progress_and_the_summary(notebook: Notebook) -> None:
    # Zeros deflate well: the stored copy (members uncompressed) is many times the wheel.
    notebook.publish("copy-pkg", "1.0", files={"copy_pkg/blob.bin": b"\0" * 3_000_000})
    done = notebook.kernel.run("r = ipydeps.pip(['copy-pkg'])")
    assert done.error is None, done.text
    plan = str(done.displays[0]["text/plain"])
    assert "(stored copy 3.0 MB)" in plan, plan  # the plan names both sizes
    rows = [str(data["text/plain"]) for data in done.displays if "state" in data["text/plain"]]
    assert any("/ 3.0 MB stored copy" in row for row in rows), rows
    final = str(done.displays[-1]["text/plain"]).splitlines()
    assert "(downloaded 3.0 MB, 3.0 MB on disk)" in final[0], final
    assert "(stored copy)" in final[2]


def test_a_downgrade_is_labelled_a_downgrade(notebook: Notebook) -> None:
    notebook.publish("down-pkg", "1.0")
    notebook.publish("down-pkg", "2.0")
    assert notebook.kernel.run("ipydeps.pip(['down-pkg'])").error is None
    done = notebook.kernel.run("ipydeps.pip(['down-pkg==1.0'])")
    assert done.error is None, done.text
    assert "1.0 (replaces 2.0)  downgrade wheel" in str(done.displays[0]["text/plain"])
    assert "downgrade from 2.0" in str(done.displays[-1]["text/plain"])
    assert "upgrade" not in done.shown()


def _frames_shown(output_traceback: list[str]) -> list[str]:
    return [line for line in output_traceback if "Traceback" in line or "File " in line]


@pytest.mark.parametrize("command", ["%pip install", "!pip install"])
def test_a_failed_pip_install_is_one_error_that_fails_the_cell(
    notebook: Notebook, command: str
) -> None:
    before = snapshot(notebook.venv)
    done = notebook.kernel.run(f"{command} not-there-pkg")
    assert done.error is not None and done.error["ename"] == "NoCandidateError", done.text
    assert done.traceback[0].startswith("NoCandidateError: Cannot install 'not-there-pkg'")
    assert _frames_shown(done.traceback) == [], done.traceback
    # Said once: not in the plan's display, not on stderr too.
    assert done.shown().count("Cannot install") == 1, done.shown()
    assert done.stderr == ""
    assert snapshot(notebook.venv) == before


@pytest.mark.parametrize("command", ["%pip install", "!pip install"])
def test_run_all_stops_at_a_failed_pip_install(notebook: Notebook, command: str) -> None:
    # JupyterLab's Run All sends every cell at once, each with stop_on_error.
    marker = notebook.venv.parent / f"ran-after-{command[0]}"
    statuses = notebook.kernel.run_queued(
        [f"{command} not-there-pkg", f"open({str(marker)!r}, 'w').close()"]
    )
    assert statuses == ["error", "aborted"]
    assert not marker.exists()


def test_run_all_through_jupyter_server_stops_at_a_failed_pip_install(
    notebook: Notebook, tmp_path: Path
) -> None:
    # JupyterLab's route: the server's REST API and the kernel's websocket, every cell
    # of "Run All" sent at once with stop_on_error.
    marker = tmp_path / "ran-after-run-all"
    python = notebook.venv / "bin" / "python"
    with notebook_server(python, tmp_path, _environment(notebook.server.url, tmp_path)) as lab:
        channel = lab.channel(lab.start_kernel())
        try:
            statuses = channel.run_all(
                [
                    "%load_ext ipydeps",
                    "%pip install not-there-pkg",
                    f"open({str(marker)!r}, 'w').close()",
                ]
            )
        finally:
            channel.close()
    assert statuses == ["ok", "error", "aborted"]
    assert not marker.exists()


def test_nbclient_stops_a_notebook_at_a_failed_pip_install(notebook: Notebook) -> None:
    notebook.publish("nbc-pkg", "1.0")
    work = notebook.venv.parent
    marker = work / "ran-after-nbclient"
    executed, error = run_notebook(
        notebook.venv / "bin" / "python",
        work / "nbclient",
        _environment(notebook.server.url, work),
        [
            "%load_ext ipydeps",
            "%pip install nbc-pkg",
            "%pip install not-there-pkg",
            f"open({str(marker)!r}, 'w').close()",
        ],
    )
    assert error is not None and "NoCandidateError" in str(error)
    assert not marker.exists()
    # What nbconvert keeps of an install: its display's last form, the summary, once.
    [installed] = executed.cells[1].outputs
    assert installed["output_type"] == "display_data", installed
    assert installed["data"]["text/plain"].startswith(
        f"Installed nbc-pkg 1.0 (wheel from {notebook.source})"
    )
    [output] = executed.cells[2].outputs
    assert output["output_type"] == "error" and output["ename"] == "NoCandidateError"
    assert _frames_shown(output["traceback"]) == []
    assert executed.cells[3].get("execution_count") is None  # never ran


def test_a_failed_install_handed_to_pip_fails_the_cell(notebook: Notebook) -> None:
    # --no-deps is not ipydeps': the real pip runs (sealed to our repository) and fails.
    done = notebook.kernel.run("%pip install --no-deps not-there-pkg")
    assert done.error is not None and done.error["ename"] == "PipFailedError", done.text
    assert done.traceback == [
        "PipFailedError: pip install --no-deps not-there-pkg exited with code 1; "
        "its output above says why"
    ]
    assert "not-there-pkg" in done.stderr  # pip's own words
    # Other commands of the real pip are not installs: a failure is only its output.
    shown = notebook.kernel.run("%pip show not-there-pkg")
    assert shown.error is None, shown.text


@pytest.mark.parametrize("slow", ["download", "index page"])
def test_an_interrupted_install_says_nothing_changed(tmp_path: Path, slow: str) -> None:
    python = make_venv(tmp_path / "env", see_test_packages=True)
    wheel = make_wheel(
        tmp_path,
        "slow-pkg",
        "1.0",
        files={"slow_pkg/__init__.py": "", "slow_pkg/blob.bin": os.urandom(300_000)},
    )
    routes = routes_for(wheel, None)
    if slow == "download":
        routes[f"/files/{wheel.name}"] = Scripted(body=wheel.read_bytes(), pace=2000.0)
    else:  # the plan is still being made
        page = routes["/simple/slow-pkg/"]
        routes["/simple/slow-pkg/"] = Scripted(
            body=page.body, content_type=page.content_type, pace=20.0
        )
    with scripted_server(routes=routes) as server:
        kernel = Kernel(
            python,
            tmp_path,
            {"IPYDEPS_UPSTREAM": "deny", "IPYDEPS_APK": "never", "HOME": str(tmp_path)},
        )
        try:
            assert kernel.run("import ipydeps").error is None
            before = snapshot(tmp_path / "env")
            message = kernel.client.execute(
                f"ipydeps.pip(['slow-pkg'], index_url={server.url + 'simple/'!r})"
            )
            assert server.pacing.wait(60)
            kernel.manager.interrupt_kernel()
            done = kernel.outputs_of(message, timeout=60)
        finally:
            kernel.stop()
    assert done.error is not None and done.error["ename"] == "KeyboardInterrupt"
    assert done.traceback == [
        "KeyboardInterrupt: the install was interrupted; the display above says what changed"
    ]
    final = str(done.displays[-1]["text/plain"]).splitlines()
    assert final[0] == "interrupted: nothing changed", final
    if slow == "download":  # the progress table stays, its row no longer "downloading"
        assert final[2].split()[:4] == ["slow-pkg", "1.0", "wheel", "stopped"], final
    else:
        assert final == ["interrupted: nothing changed"]
    assert "interrupted: nothing changed" in str(done.displays[-1]["text/html"])
    assert snapshot(tmp_path / "env") == before
    assert not list(site_packages(tmp_path / "env").glob("slow_pkg*"))


def test_a_dry_run_that_cannot_be_met_shows_its_problems_in_the_display(
    notebook: Notebook,
) -> None:
    for quiet in (False, True):  # quiet: errors only, and this plan is one
        done = notebook.kernel.run(
            f"_ = ipydeps.pip(['not-there-pkg'], dry_run=True, quiet={quiet})"
        )
        assert done.error is None, done.text  # a dry run raises nothing: the plan answers
        assert done.kinds[0] == "display_data" and done.stdout == "", done.text
        assert done.shown().count("Cannot install") == 1, done.shown()
