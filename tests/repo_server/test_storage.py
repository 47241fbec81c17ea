"""The store as a library (what the mirror and the farm call): validation, atomicity, repair."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest
from ipydeps_repo.errors import ConflictError, TooLargeError, ValidationError
from ipydeps_repo.store.layout import DataLayout
from ipydeps_repo.store.store import Store

from tests.support.sdists import make_sdist
from tests.support.wheels import make_wheel


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(DataLayout(tmp_path / "data"), max_upload_bytes=1_000_000)


def tree_files(store: Store) -> list[str]:
    tree = store.layout.tree
    return sorted(str(p.relative_to(tree)) for p in tree.rglob("*") if p.is_file())


def test_publish_file_keeps_the_source_and_writes_pages(store: Store, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "Demo", "1.0")
    result = store.publish_file(wheel)
    assert wheel.exists()
    assert (result.status, result.kind, result.name) == ("created", "wheel", "demo")
    assert tree_files(store) == [
        "files/demo/demo-1.0-py3-none-any.whl",
        "files/demo/demo-1.0-py3-none-any.whl.metadata",
        "files/demo/demo-1.0-py3-none-any.whl.stored",
        "simple/demo/index.html",
        "simple/demo/index.json",
        "simple/index.html",
        "simple/index.json",
    ]
    assert list(store.layout.tmp.iterdir()) == []


def _rewrite(
    wheel: Path, target: Path, *, drop: str = "", add: dict[str, bytes] | None = None
) -> Path:
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(target, "w") as out:
        for item in source.infolist():
            if not item.filename.endswith(drop) or not drop:
                out.writestr(item, source.read(item))
        for name, data in (add or {}).items():
            out.writestr(name, data)
    return target


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"drop": "RECORD"}, "demo-1.0.dist-info/RECORD is missing"),
        (
            {"add": {"other-1.0.dist-info/METADATA": b"Name: other\n"}},
            "expected one .dist-info folder, found demo-1.0.dist-info, other-1.0.dist-info",
        ),
    ],
)
def test_broken_wheels_are_refused(
    store: Store, tmp_path: Path, change: dict[str, object], problem: str
) -> None:
    wheel = make_wheel(tmp_path, "demo", "1.0")
    broken_dir = tmp_path / "broken"
    broken_dir.mkdir()
    broken = _rewrite(wheel, broken_dir / wheel.name, **change)  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as caught:
        store.publish_file(broken)
    assert problem in caught.value.problems
    assert tree_files(store) == []
    assert list(store.layout.tmp.iterdir()) == []


def test_damaged_member_is_reported(store: Store, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "demo", "1.0", files={"demo/blob.bin": os.urandom(5000)})
    data = bytearray(wheel.read_bytes())
    offset = data.index(b"demo/blob.bin") + 1000  # inside the member's (incompressible) data
    data[offset] ^= 0xFF
    wheel.write_bytes(bytes(data))
    with pytest.raises(ValidationError) as caught:
        store.publish_file(wheel)
    assert any("damaged" in problem for problem in caught.value.problems)
    assert tree_files(store) == []


def test_size_limit(tmp_path: Path) -> None:
    small = Store(DataLayout(tmp_path / "data"), max_upload_bytes=100)
    with pytest.raises(TooLargeError, match="over the limit of 100"):
        small.publish_file(make_wheel(tmp_path, "demo", "1.0"))
    assert list(small.layout.tmp.iterdir()) == []


def test_conflict_keeps_the_first_file(store: Store, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = make_wheel(tmp_path / "a", "demo", "1.0")
    second = make_wheel(tmp_path / "b", "demo", "1.0", files={"demo/__init__.py": "y = 2\n"})
    store.publish_file(first)
    with pytest.raises(ConflictError):
        store.publish_file(second)
    published = store.layout.tree / "files/demo" / first.name
    assert published.read_bytes() == first.read_bytes()
    assert store.publish_file(second, force=True).status == "replaced"
    assert published.read_bytes() == second.read_bytes()
    page = json.loads((store.layout.tree / "simple/demo/index.json").read_text())
    assert page["files"][0]["size"] == second.stat().st_size


def test_rebuild_drops_deleted_files_and_projects(store: Store, tmp_path: Path) -> None:
    store.publish_file(make_wheel(tmp_path, "demo", "1.0"))
    store.publish_file(make_wheel(tmp_path, "gone", "1.0"))
    (store.layout.tree / "files/gone/gone-1.0-py3-none-any.whl").unlink()
    for cache in (store.layout.cache / "simple").iterdir():
        cache.unlink()
    assert store.rebuild() == []
    root = json.loads((store.layout.tree / "simple/index.json").read_text())
    assert root["projects"] == [{"name": "demo"}]
    assert (store.layout.tree / "simple/demo/index.json").exists()


def test_listing_matches_the_tree(store: Store, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "demo", "1.0")
    store.publish_file(wheel)
    listing = store.listing()
    assert listing["apks"] == {}
    assert [item["filename"] for item in listing["wheels"]["demo"]] == [wheel.name]


def _root(store: Store) -> list[str]:
    document = json.loads((store.layout.tree / "simple/index.json").read_text())
    return [project["name"] for project in document["projects"]]


def test_a_publish_relists_its_own_project_and_the_root_only_when_it_changes(
    store: Store, tmp_path: Path
) -> None:
    store.publish_file(make_wheel(tmp_path, "alpha", "1.0"))
    # A project dropped into the tree by hand is not looked at by a publish into another
    # one (publishing costs the same with 10 projects as with 10000); `index` lists it.
    dropped = store.layout.tree / "files" / "dropped"
    dropped.mkdir()
    make_wheel(dropped, "dropped", "1.0")
    root_page = store.layout.tree / "simple/index.json"
    written = root_page.stat().st_mtime_ns
    store.publish_file(make_wheel(tmp_path, "alpha", "2.0"))
    assert root_page.stat().st_mtime_ns == written  # alpha was listed already
    store.publish_file(make_wheel(tmp_path, "beta", "1.0"))
    assert _root(store) == ["alpha", "beta"]
    assert not (store.layout.tree / "simple/dropped").exists()
    store.delete_files("beta", "1.0")
    assert _root(store) == ["alpha"]
    assert store.rebuild() == []
    assert _root(store) == ["alpha", "dropped"]
    assert (store.layout.tree / "simple/dropped/index.json").exists()
    assert sorted(store.listing()["wheels"]) == ["alpha", "dropped"]


def test_a_lost_project_list_is_read_again_from_the_tree(store: Store, tmp_path: Path) -> None:
    # A store written before the list was kept has none, and a cache may be deleted.
    store.publish_file(make_wheel(tmp_path, "alpha", "1.0"))
    store.publish_file(make_wheel(tmp_path, "beta", "1.0"))
    (store.layout.cache / "projects.json").unlink()
    store.publish_file(make_wheel(tmp_path, "alpha", "2.0"))
    assert _root(store) == ["alpha", "beta"]
    assert sorted(store.listing()["wheels"]) == ["alpha", "beta"]
    store.publish_file(make_wheel(tmp_path, "gamma", "1.0"))
    assert _root(store) == ["alpha", "beta", "gamma"]
    assert json.loads((store.layout.cache / "projects.json").read_text()) == [
        "alpha",
        "beta",
        "gamma",
    ]
    for page in ("index.html", "index.json"):
        (store.layout.tree / "simple" / page).unlink()
    store.publish_file(make_wheel(tmp_path, "gamma", "2.0"))
    assert _root(store) == ["alpha", "beta", "gamma"]


def test_a_published_file_is_listed_as_a_full_rescan_lists_it(store: Store, tmp_path: Path) -> None:
    # A publish lists the facts its own check found (nothing is read twice); the full
    # rescan of `index` finds the same, key for key.
    store.publish_file(make_wheel(tmp_path, "demo", "1.0", requires_python=">=3.9"))
    store.publish_file(make_sdist(tmp_path, "demo", "1.0", requires_python=">=3.9"))
    cache = store.layout.cache / "simple" / "demo.json"
    page = store.layout.tree / "simple" / "demo" / "index.json"
    published, published_page = cache.read_text(), page.read_text()
    assert store.rebuild() == []
    assert json.loads(cache.read_text()) == json.loads(published)
    assert page.read_text() == published_page
