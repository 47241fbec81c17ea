"""Build keys and farm-state.json: what makes a build skippable, and when it is not."""

from __future__ import annotations

import json
from pathlib import Path

from ipydeps_repo.farm.state import Artifact, BuildRecord, FarmState, build_key

BASE = {"recipe_text": "pkgname=a\n", "source_sha256": "ab" * 32, "target": "host-cp311",
        "builder_version": "1"}  # fmt: skip


def test_every_input_changes_the_key() -> None:
    keys = {build_key(**BASE)}
    for field, other in [("recipe_text", "pkgname=a\npkgrel=1\n"), ("source_sha256", "cd" * 32),
                         ("target", "alpine-3.22-x86_64"), ("builder_version", "2")]:  # fmt: skip
        keys.add(build_key(**{**BASE, field: other}))
    assert len(keys) == 5
    assert build_key(**BASE) == build_key(**dict(BASE))
    # Field boundaries matter: moving text from one field to the next is another build.
    shifted = {
        **BASE,
        "recipe_text": BASE["recipe_text"] + "x",
        "source_sha256": BASE["source_sha256"][1:],
    }
    assert build_key(**shifted) != build_key(**{**BASE, "source_sha256": BASE["source_sha256"][1:]})


def test_finished_needs_the_files_and_survives_a_reload(tmp_path: Path) -> None:
    state = FarmState(tmp_path)
    key = build_key(**BASE)
    folder = state.artifact_dir(key)
    folder.mkdir(parents=True)
    (folder / "a-1.0-cp311-cp311-linux_x86_64.whl").write_bytes(b"wheel")
    artifact = Artifact("a-1.0-cp311-cp311-linux_x86_64.whl", "00" * 32, 5, "wheel",
                        ("libopenblas.so.0",), "linux_x86_64")  # fmt: skip
    state.record(BuildRecord(key, "py3-a", "host", "1.0", 12.5, (artifact,)))
    state.mark_published("data:/srv", artifact)

    reloaded = FarmState(tmp_path)
    record = reloaded.finished(key)
    assert record is not None and record.artifacts == (artifact,)
    assert reloaded.is_published("data:/srv", artifact)
    assert not reloaded.is_published("http://other/", artifact)
    assert json.loads((tmp_path / "farm-state.json").read_text())["builds"][key]["version"] == "1.0"

    (folder / artifact.filename).write_bytes(b"truncated?")
    assert FarmState(tmp_path).finished(key) is None
    (folder / artifact.filename).unlink()
    assert FarmState(tmp_path).finished(key) is None


def test_two_runs_sharing_a_cache_keep_each_others_builds(tmp_path: Path) -> None:
    first, second = FarmState(tmp_path), FarmState(tmp_path)
    key_a = build_key(**BASE)
    key_b = build_key(**{**BASE, "target": "alpine-3.22-x86_64"})
    first.record(BuildRecord(key_a, "py3-a", "host", "1.0", 1.0, ()))
    second.record(BuildRecord(key_b, "py3-a", "alpine-3.22-x86_64", "1.0-r0", 2.0, ()))
    merged = FarmState(tmp_path)
    assert merged.finished(key_a) is not None and merged.finished(key_b) is not None
