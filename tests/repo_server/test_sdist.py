"""Source distributions are validated like wheels before they become visible."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest
from ipydeps_repo.errors import ValidationError
from ipydeps_repo.store.layout import DataLayout
from ipydeps_repo.store.store import Store

from tests.support.sdists import make_sdist, zero_sdist
from tests.support.server import start_server


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(DataLayout(tmp_path / "data"))


def test_sdist_is_listed_with_its_hash_and_requires_python(store: Store, tmp_path: Path) -> None:
    sdist = make_sdist(tmp_path, "Src.Pkg", "1.0", requires_python=">=3.9")
    result = store.publish_file(sdist)
    assert (result.kind, result.name, result.path) == (
        "sdist",
        "src-pkg",
        "files/src-pkg/src_pkg-1.0.tar.gz",
    )
    page = (store.layout.tree / "simple" / "src-pkg" / "index.html").read_text()
    assert f'href="../../files/src-pkg/src_pkg-1.0.tar.gz#sha256={result.sha256}"' in page
    assert 'data-requires-python="&gt;=3.9"' in page
    assert "data-core-metadata" not in page
    folder = store.layout.tree / "files" / "src-pkg"
    assert sorted(path.name for path in folder.iterdir()) == ["src_pkg-1.0.tar.gz"]
    # A rebuild from the tree finds it again.
    (store.layout.tree / "simple" / "src-pkg" / "index.html").unlink()
    assert store.rebuild() == []
    assert (
        "src_pkg-1.0.tar.gz"
        in (store.layout.tree / "simple" / "src-pkg" / "index.html").read_text()
    )


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"filename": "Src.Pkg-1.0.tar.gz"}, "expected 'src_pkg-1.0.tar.gz'"),
        ({"pkg_info_name": "other"}, "PKG-INFO Name 'other' does not match"),
        ({"extra": {"src_pkg-1.0/../../evil.py": b"x"}}, "contains '..'"),
        ({"extra": {"/etc/cron.d/evil": b"x"}}, "absolute or unsafe path"),
        ({"extra": {"other-1.0/x.py": b"x"}}, "is not inside the folder 'src_pkg-1.0/'"),
    ],
)
def test_bad_sdists_are_refused(
    store: Store, tmp_path: Path, kwargs: dict[str, object], problem: str
) -> None:
    sdist = make_sdist(tmp_path, "src-pkg", "1.0", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as caught:
        store.publish_file(sdist)
    assert problem in caught.value.message
    assert not any((store.layout.tree / "files").rglob("*.tar.gz"))


def test_zip_sdist_and_a_truncated_tarball(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "zipped-1.0.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            "zipped-1.0/PKG-INFO", "Metadata-Version: 2.1\nName: zipped\nVersion: 1.0\n"
        )
    assert store.publish_file(path).status == "created"
    good = make_sdist(tmp_path, "cut", "1.0")
    cut = tmp_path / "cut" / "cut-1.0.tar.gz"
    cut.parent.mkdir()
    cut.write_bytes(good.read_bytes()[:-40])
    with pytest.raises(ValidationError, match="damaged"):
        store.publish_file(cut)


@pytest.mark.parametrize(
    ("target", "ok"), [("../../etc/passwd", False), ("/etc/passwd", False), ("../PKG-INFO", True)]
)
def test_links_must_stay_inside(store: Store, tmp_path: Path, target: str, ok: bool) -> None:
    path = tmp_path / "linked_ok-1.0.tar.gz"
    pkg_info = b"Metadata-Version: 2.1\nName: linked-ok\nVersion: 1.0\n"
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo("linked_ok-1.0/PKG-INFO")
        info.size = len(pkg_info)
        archive.addfile(info, io.BytesIO(pkg_info))
        link = tarfile.TarInfo("linked_ok-1.0/sub/link")
        link.type = tarfile.SYMTYPE
        link.linkname = target
        archive.addfile(link)
    if ok:
        assert store.publish_file(path).status == "created"
    else:
        with pytest.raises(ValidationError, match="points outside the sdist"):
            store.publish_file(path)


# The wheels' inflate limits hold for sdists too (issue 15, item 5): a 3.6 MB tar.gz of
# zeros cost 40 s of the server's CPU to check.


def test_a_member_that_admits_a_huge_size_is_refused_before_inflating(
    store: Store, tmp_path: Path
) -> None:
    sdist = zero_sdist(tmp_path, "zeros", "1.0", [3400])
    assert sdist.stat().st_size < 4 * 1024**2
    with pytest.raises(ValidationError) as caught:
        store.publish_file(sdist)
    assert (
        "member 'zeros-1.0/zeros0.bin' would inflate to 3565158400 bytes, over the "
        "per-member limit of 1073741824"
    ) in caught.value.message
    assert not any((store.layout.tree / "files").rglob("*.tar.gz"))


def test_members_past_the_ratio_budget_are_refused(store: Store, tmp_path: Path) -> None:
    # A few KB may inflate to 64 MiB (the floor under the ratio), not to 120 MiB.
    sdist = zero_sdist(tmp_path, "zeros", "1.0", [40, 40, 40])
    with pytest.raises(
        ValidationError, match="the archive would inflate to more than 67108864 bytes"
    ):
        store.publish_file(sdist)


@pytest.mark.parametrize("trailing_mib", [100])
def test_zeros_after_the_tar_inside_the_gzip_stream_count_too(
    store: Store, tmp_path: Path, trailing_mib: int
) -> None:
    sdist = zero_sdist(tmp_path, "zeros", "1.0", [1], trailing_mib=trailing_mib)
    with pytest.raises(ValidationError, match="the archive inflates to more than 67108864"):
        store.publish_file(sdist)
    # Within the budget, the whole gzip stream is read (its CRC checked) and published.
    (tmp_path / "ok").mkdir()
    assert (
        store.publish_file(zero_sdist(tmp_path / "ok", "zeros", "1.0", [1], trailing_mib=2)).status
        == "created"
    )


def test_a_huge_tar_header_is_refused(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "paxed-1.0.tar.gz"
    pkg_info = b"Metadata-Version: 2.1\nName: paxed\nVersion: 1.0\n"
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo("paxed-1.0/PKG-INFO")
        info.size = len(pkg_info)
        info.pax_headers = {"comment": "x" * (2 * 1024 * 1024)}
        archive.addfile(info, io.BytesIO(pkg_info))
    with pytest.raises(ValidationError, match="more than 1048576 bytes come between"):
        store.publish_file(path)


def test_the_servers_inflate_limits_apply_to_sdists(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", "--max-member", "1M")
    try:
        status, body = server.upload(zero_sdist(tmp_path, "zeros", "1.0", [2]))
        assert status == 400
        assert "over the per-member limit of 1048576" in str(body["problems"])
    finally:
        server.stop()
