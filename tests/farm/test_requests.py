"""The farm decides on build requests (issue 21, item 3): a recipe and a target, or nothing built.

Decisions against the project's own manifest; ``farm queue`` on a real server's queue
(requests posted over HTTP, the decision visible to anyone through the public endpoint);
``farm build --requests`` builds nothing from a request without a recipe.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ipydeps_repo.farm.manifest import load_manifest
from ipydeps_repo.farm.options import RecipeResult
from ipydeps_repo.farm.requests import Decision, decide, outcomes
from ipydeps_repo.store.build_requests import QueuedBuild
from ipydeps_repo.validation.build_request import BuildState

from tests.repo_server.test_build_requests import SKLEARN, post, request_token
from tests.support.pipenv import clean_pip_env
from tests.support.server import start_server

APKBUILDS = Path(__file__).resolve().parents[2] / "apkbuilds"


def entry(
    project: str, python: str = "3.11", version: str = "", arch: str = "x86_64"
) -> QueuedBuild:
    return QueuedBuild(
        project, version, f"musllinux_1_2_{arch}", python, "queued", "", "t", "t", 1, ("nb",)
    )


def test_a_request_with_a_recipe_and_a_target_is_scheduled_others_are_not() -> None:
    manifest = load_manifest(APKBUILDS)
    sklearn = decide(entry("scikit-learn"), manifest)
    assert sklearn.state is BuildState.SCHEDULED
    assert (sklearn.recipe, sklearn.target) == ("py3-scikit-learn", "musl-cp311-x86_64")
    assert decide(entry("scikit-learn", "3.12"), manifest).target == "alpine-3.22-x86_64"
    numba = decide(entry("numba"), manifest)
    assert numba.state is BuildState.NO_RECIPE and numba.recipe == ""
    assert "no recipe for numba" in numba.note
    pinned = decide(entry("scikit-learn", version="1.5.0"), manifest)
    assert pinned.state is BuildState.DECLINED and "not 1.5.0" in pinned.note
    scipy = decide(entry("scipy"), manifest)
    assert scipy.state is BuildState.DECLINED and "excludes it" in scipy.note
    other_python = decide(entry("scikit-learn", "3.13"), manifest)
    assert other_python.state is BuildState.DECLINED
    assert "no farm target builds for musllinux_1_2_x86_64 / cp3.13" in other_python.note


def test_a_build_run_marks_what_it_built_or_failed() -> None:
    queued = entry("scikit-learn")
    decision = Decision(BuildState.SCHEDULED, "", "py3-scikit-learn", "musl-cp311-x86_64")
    built = RecipeResult("py3-scikit-learn", "musl-cp311-x86_64", "built", version="1.9.1")
    failed = RecipeResult("py3-scikit-learn", "musl-cp311-x86_64", "failed", message="meson")
    [(_, state, note)] = outcomes([(queued, decision)], [built])
    assert (
        state is BuildState.BUILT and note == "built: py3-scikit-learn 1.9.1 on musl-cp311-x86_64"
    )
    [(_, state, note)] = outcomes([(queued, decision)], [failed])
    assert state is BuildState.FAILED and note.endswith("(meson)")
    assert outcomes([(queued, decision)], []) == []


def farm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ipydeps_repo", "farm", *args, "--apkbuilds", str(APKBUILDS)],
        capture_output=True,
        text=True,
        env=clean_pip_env(),
        timeout=300,
        check=False,
    )


def test_farm_queue_shows_and_decides_the_servers_requests(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_server(data)
    try:
        notebook = request_token(data, "notebook")
        for project in ("scikit-learn", "numba"):
            status, _, _ = post(server, {**SKLEARN, "project": project, "python": "3.11"}, notebook)
            assert status == 201
        shown = farm("queue", "--data", str(data))
        assert shown.returncode == 0, shown.stderr
        lines = shown.stdout.splitlines()
        assert lines[0].split()[:3] == ["project", "version", "platform"]
        sklearn = next(line for line in lines if line.startswith("scikit-learn"))
        assert "scheduled" in sklearn and "recipe py3-scikit-learn 1.9.1 on target" in sklearn
        assert "no recipe" in next(line for line in lines if line.startswith("numba"))
        # Showing decides nothing; --decide writes the decisions, which anyone can read.
        _, _, raw = server.get("/api/v1/build-requests/numba")
        assert json.loads(raw)["requests"][0]["state"] == "queued"
        assert farm("queue", "--data", str(data), "--decide").returncode == 0
        _, _, raw = server.get("/api/v1/build-requests/numba")
        [numba] = json.loads(raw)["requests"]
        assert numba["state"] == "no recipe" and "no recipe for numba" in numba["note"]
        # A build run over the queue builds nothing for a request without a recipe, and
        # nothing at all when no scheduled request is for one of its targets.
        run = farm("build", "--requests", str(data), "--target", "host", "--out", str(tmp_path))
        assert run.returncode == 0, run.stderr
        assert "no queued build request has a recipe and a target in this run" in run.stdout
        assert not (tmp_path / "summary.json").exists()
    finally:
        server.stop()
