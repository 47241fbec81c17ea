"""Structurally hostile wheels over the real upload API: refused whole, nothing left behind."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from tests.support.hostile import (
    STORED,
    RawMember,
    hostile_wheel,
    member,
    replace,
    write_zip,
    zero_bomb,
)
from tests.support.server import RunningServer, repo_cli, start_server
from tests.support.wheels import make_wheel

MODULE = "demo/__init__.py"


def snapshot(data: Path) -> dict[str, object]:
    """Every file of the data directory (but lock files) with its size and mtime.

    The tokens file by its content without ``last_used``: the use of a token is recorded
    whatever the request's outcome (``token list``), and that is all that may change.
    """
    files: dict[str, object] = {
        str(path.relative_to(data)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in data.rglob("*")
        if path.is_file() and "locks" not in path.parts
    }
    tokens = json.loads((data / "state" / "tokens.json").read_text())["tokens"]
    files["state/tokens.json"] = [
        {key: value for key, value in entry.items() if key != "last_used"} for entry in tokens
    ]
    return files


def refused(server: RunningServer, wheel: Path) -> list[str]:
    """Upload ``wheel``; assert a 400 that changed nothing; return the problems."""
    before = snapshot(server.data)
    status, body = server.upload(wheel)
    assert status == 400, body
    assert snapshot(server.data) == before
    assert list((server.data / "state" / "tmp").iterdir()) == []
    problems = body["problems"]
    assert isinstance(problems, list)
    return [str(item) for item in problems]


@pytest.mark.parametrize(
    "name",
    ["../../evil.py", "demo/../../../evil.py", "/etc/evil.py", "C:/evil.py", "demo\\..\\evil.py"],
)
def test_member_paths_that_escape_are_refused(
    repo_server: RunningServer, tmp_path: Path, name: str
) -> None:
    wheel = hostile_wheel(tmp_path, [member(MODULE, "x = 1\n"), member(name, "evil = 1\n")])
    assert f"unsafe path {name!r}" in refused(repo_server, wheel)
    assert repo_server.get("simple/demo/")[0] == 404


def test_duplicate_members_are_refused(repo_server: RunningServer, tmp_path: Path) -> None:
    # Two readers of one archive would install different bytes for demo/__init__.py.
    first = member(MODULE, "x = 1\n")
    wheel = hostile_wheel(
        tmp_path, [first, member(MODULE, "x = 2\n"), member("demo//__init__.py", "x = 3\n")]
    )
    problems = refused(repo_server, wheel)
    assert f"duplicate member {MODULE!r}" in problems
    assert "duplicate member 'demo//__init__.py'" in problems


def test_member_that_does_not_match_record_is_refused(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    honest = member(MODULE, "x = 1\n")
    swapped = replace(member(MODULE, "import os; os.system('id')\n"), record=honest.record)
    wheel = hostile_wheel(tmp_path, [swapped])
    assert f"{MODULE!r} does not match its RECORD hash" in refused(repo_server, wheel)


def test_a_record_in_sha512_is_checked_like_sha256(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    # The wheel spec asks for sha256 or better: the client installs such wheels, so the
    # server takes them too, and checks their members all the same.
    honest = make_wheel(tmp_path, "sha512-demo", "1.0", record_algorithm="sha512")
    status, body = repo_server.upload(honest)
    assert status == 201, body
    tampered = make_wheel(tmp_path, "sha512-demo", "1.1", record_algorithm="sha512")
    with zipfile.ZipFile(tampered) as archive:
        entries = {info.filename: archive.read(info) for info in archive.infolist()}
    entries["sha512_demo/__init__.py"] = b"__version__ = 'evil'\n"
    with zipfile.ZipFile(tampered, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    assert "'sha512_demo/__init__.py' does not match its RECORD hash" in refused(
        repo_server, tampered
    )


def test_member_missing_from_record_and_row_without_member_are_refused(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    wheel = hostile_wheel(
        tmp_path,
        [member(MODULE, "x = 1\n"), member("demo/extra.py", "y = 2\n")],
        record_rows=[f"{MODULE},{member(MODULE, 'x = 1').record},6", "demo/ghost.py,sha256=x,1"],
    )
    problems = refused(repo_server, wheel)
    assert "'demo/extra.py' is not listed in RECORD" in problems
    assert "RECORD lists 'demo/ghost.py', which the wheel lacks" in problems
    assert f"RECORD has no hash for {MODULE!r}" not in problems


def test_central_directory_that_understates_a_size_is_refused(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    # A reader that trusts the directory gets the first 4 bytes; one that follows the
    # stream gets all of it. Both headers tell the same lie, so only inflating shows it.
    payload = member(MODULE, "x = 1  # and much more than the directory admits\n")
    lying = replace(payload, central_size=4, local_size=4)
    problems = refused(repo_server, hostile_wheel(tmp_path, [lying]))
    assert (
        f"member {MODULE!r} inflates to more than the 4 bytes its directory entry says" in problems
    )


def test_local_header_that_disagrees_with_the_directory_is_refused(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    payload = member(MODULE, "x = 1\n")
    wheel = hostile_wheel(tmp_path, [replace(payload, local_size=4096, local_name="demo/other.py")])
    problems = refused(repo_server, wheel)
    assert any(
        problem.startswith(f"member {MODULE!r}: the local header disagrees")
        and "'demo/other.py'" in problem
        and "size 4096" in problem
        for problem in problems
    )


def test_bytes_hidden_between_members_are_refused(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    hidden = write_zip(tmp_path / "inner.zip", [member("demo/evil.py", "evil = 1\n")])
    wheel = hostile_wheel(tmp_path, [member(MODULE, "x = 1\n")], gap=hidden.read_bytes())
    problems = refused(repo_server, wheel)
    assert any("bytes that no member owns" in problem for problem in problems)


def test_data_after_the_end_of_a_deflate_stream_is_refused(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    payload = member(MODULE, "x = 1\n")
    trailing = replace(payload, data=payload.data + b"hidden")
    problems = refused(repo_server, hostile_wheel(tmp_path, [trailing]))
    assert (
        f"member {MODULE!r}: its compressed data has bytes after the end of the stream" in problems
    )


def test_every_problem_is_reported_at_once(repo_server: RunningServer, tmp_path: Path) -> None:
    swapped = replace(
        member("demo/util.py", "import os\n"), record=member("demo/util.py", "pass\n").record
    )
    wheel = hostile_wheel(
        tmp_path,
        [
            member(MODULE, "x = 1\n"),
            member("../evil.py", "evil = 1\n"),
            member("/abs.py", "evil = 2\n"),
            member(MODULE, "x = 2\n", method=STORED),
            swapped,
        ],
    )
    problems = refused(repo_server, wheel)
    assert problems[:3] == [
        "unsafe path '../evil.py'",
        "unsafe path '/abs.py'",
        f"duplicate member {MODULE!r}",
    ]
    assert "'demo/util.py' does not match its RECORD hash" in problems


def test_zip_bomb_is_refused_after_inflating_at_most_the_limit(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    # 300 MiB of zeros in 0.3 MB: honest headers and RECORD, so only the ratio stops it.
    bomb = zero_bomb("demo/data.bin", 300)
    wheel = hostile_wheel(tmp_path, [member(MODULE, "x = 1\n"), bomb])
    assert wheel.stat().st_size < 400_000
    problems = refused(repo_server, wheel)
    assert problems == [
        "the wheel inflates to more than 67108864 bytes (the limit for an archive of this "
        "size); stopped there"
    ]


def test_bomb_that_admits_its_size_is_refused_without_inflating(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    # The bomb: 1.5 MB that inflates to 1.57 GB (a .stored copy of that size).
    bomb = zero_bomb("demo/data.bin", 1500)
    wheel = hostile_wheel(tmp_path, [member(MODULE, "x = 1\n"), bomb])
    problems = refused(repo_server, wheel)
    assert problems == [
        f"member 'demo/data.bin' would inflate to {1500 << 20} bytes, over the per-member "
        f"limit of {1 << 30}"
    ]


def test_bomb_that_hides_its_size_is_stopped_at_its_declared_size(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    bomb: RawMember = replace(zero_bomb("demo/data.bin", 200), central_size=1000, local_size=1000)
    problems = refused(repo_server, hostile_wheel(tmp_path, [bomb]))
    assert (
        "member 'demo/data.bin' inflates to more than the 1000 bytes its directory entry says"
    ) in problems


def test_inflate_limits_are_configurable(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", "--max-member", "100k", "--max-inflated", "150k")
    try:
        wheel = make_wheel(
            tmp_path,
            "big",
            "1.0",
            files={"big/a.bin": bytes(120_000), "big/b.bin": b"\x01" * 90_000},
        )
        problems = refused(server, wheel)
        assert problems == [
            f"member 'big/a.bin' would inflate to 120000 bytes, over the per-member limit "
            f"of {100 * 1024}",
            f"the wheel would inflate to {sum_sizes(wheel)} bytes, over the limit of {150 * 1024}",
        ]
        small = make_wheel(tmp_path, "small", "1.0", files={"small/a.bin": bytes(90_000)})
        assert server.upload(small)[0] == 201
    finally:
        server.stop()


def sum_sizes(wheel: Path) -> int:
    import zipfile

    with zipfile.ZipFile(wheel) as archive:
        return sum(info.file_size for info in archive.infolist())


def test_index_leaves_out_a_bomb_already_in_the_tree(tmp_path: Path) -> None:
    # A store from before these checks may hold one: no page lists it, no copy is made.
    data = tmp_path / "data"
    folder = data / "tree" / "files" / "demo"
    folder.mkdir(parents=True)
    hostile_wheel(folder, [member(MODULE, "x = 1\n"), zero_bomb("demo/data.bin", 1500)])
    result = repo_cli("index", data=data, check=False)
    assert result.returncode == 1
    assert (
        "skipped: files/demo/demo-1.0-py3-none-any.whl: wheel 'demo-1.0-py3-none-any.whl' is "
        f"invalid: member 'demo/data.bin' would inflate to {1500 << 20} bytes"
    ) in result.stderr
    assert sorted(path.name for path in folder.iterdir()) == ["demo-1.0-py3-none-any.whl"]
    assert not (data / "tree" / "simple" / "demo" / "index.html").exists()
