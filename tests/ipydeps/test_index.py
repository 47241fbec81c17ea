"""Index formats parse straight into Candidates: recorded PyPI pages, crafted pages, APKINDEX."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from packaging.version import Version

from ipydeps.environment_model import TargetEnvironment
from ipydeps.errors import RepositoryError
from ipydeps.formats.apkindex import ApkIndexRecord, parse_apkindex, render_apkindex
from ipydeps.index import (
    apk_candidates,
    apk_depends_to_requires_dist,
    apk_name_for,
    apk_python_version,
    compatible_wheels,
    parse_project_html,
    parse_project_json,
    parse_project_page,
    project_for_apk,
)
from ipydeps.models import Route
from ipydeps.sources import requires_dist_from_metadata

DATA = Path(__file__).parent / "data"
PYPI_SIX = "https://pypi.org/simple/six/"
OURS = "http://127.0.0.1:8080/simple/demo/"
MUSL = TargetEnvironment.simulated(python="3.12.1", platforms=["musllinux_1_2_x86_64"])
GLIBC = TargetEnvironment.simulated(
    python="3.12.1", platforms=["manylinux_2_17_x86_64", "manylinux2014_x86_64", "linux_x86_64"]
)


def test_recorded_pypi_json_and_html_agree() -> None:
    from_json = parse_project_json(
        (DATA / "pypi-six.json").read_bytes(), page_url=PYPI_SIX, route=Route.UPSTREAM
    )
    from_html = parse_project_html(
        (DATA / "pypi-six.html").read_bytes(), page_url=PYPI_SIX, route=Route.UPSTREAM
    )
    assert len(from_json) > 20
    # The JSON carries sizes, the HTML does not; everything else is the same.
    html_by_file = {c.filename: c for c in from_html}
    assert {c.filename for c in from_json} == set(html_by_file)
    for json_candidate in from_json:
        html_candidate = html_by_file[json_candidate.filename]
        assert json_candidate.url == html_candidate.url
        assert json_candidate.sha256 == html_candidate.sha256
        assert json_candidate.requires_python == html_candidate.requires_python


def test_recorded_pypi_six_wheel_fields() -> None:
    candidates = parse_project_page(
        (DATA / "pypi-six.json").read_bytes(), page_url=PYPI_SIX, route=Route.UPSTREAM
    )
    [wheel] = [c for c in candidates if c.filename == "six-1.17.0-py2.py3-none-any.whl"]
    assert wheel.name == "six" and wheel.version == Version("1.17.0")
    assert wheel.route is Route.UPSTREAM and wheel.is_wheel and not wheel.is_sdist
    assert wheel.sha256 == "4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274"
    assert wheel.requires_python == "!=3.0.*,!=3.1.*,!=3.2.*,>=2.7"
    assert wheel.size == 11050
    assert wheel.url.startswith("https://files.pythonhosted.org/")
    sdists = [c for c in candidates if c.is_sdist]
    assert Version("0.9.0") in {c.version for c in sdists}
    assert wheel in compatible_wheels(candidates, GLIBC.supported_tags)
    assert all(c.is_wheel for c in compatible_wheels(candidates, GLIBC.supported_tags))


@pytest.mark.parametrize("filename", ["handmade-demo.json", "handmade-demo.html"])
def test_crafted_page_metadata_yanks_relative_urls_and_tags(filename: str) -> None:
    candidates = parse_project_page(
        (DATA / filename).read_bytes(), page_url=OURS, route=Route.WHEEL
    )
    by_file = {c.filename: c for c in candidates}
    assert "demo-0.1-py2.7.egg" not in by_file  # eggs are never used
    sdist = by_file["demo-1.0.tar.gz"]
    assert sdist.is_sdist and sdist.url == "http://127.0.0.1:8080/files/demo/demo-1.0.tar.gz"
    assert sdist.sha256 == "aaaa" + "0" * 60  # hex digests are compared lower-case
    assert sdist.metadata_url is None
    musl = by_file["demo-2.0-cp312-cp312-musllinux_1_2_x86_64.whl"]
    assert musl.requires_python == ">=3.10"
    # PEP 658/714: metadata lives beside the file.
    assert musl.metadata_url == musl.url + ".metadata"
    assert (
        musl.url == "http://127.0.0.1:8080/files/demo/demo-2.0-cp312-cp312-musllinux_1_2_x86_64.whl"
    )
    glibc = by_file["demo-2.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"]
    assert glibc.metadata_url is not None and glibc.sha256 is None
    rc = by_file["demo-2.1rc1-py3-none-any.whl"]
    assert rc.yanked and rc.url == "http://127.0.0.1:8080/simple/demo/demo-2.1rc1-py3-none-any.whl"
    assert not musl.yanked
    assert {c.filename for c in compatible_wheels(candidates, MUSL.supported_tags)} == {
        musl.filename,
        rc.filename,
    }
    assert {c.filename for c in compatible_wheels(candidates, GLIBC.supported_tags)} == {
        glibc.filename,
        rc.filename,
    }


def test_not_an_index_page_is_a_repository_error() -> None:
    with pytest.raises(RepositoryError, match="did not return a PEP 691 project page"):
        parse_project_page(b'{"detail": "nope"}', page_url=OURS, route=Route.WHEEL)
    # An HTML page without links (a login page, say) simply offers nothing.
    assert (
        parse_project_page(b"<html><body>Sign in</body></html>", page_url=OURS, route=Route.WHEEL)
        == []
    )


def test_a_deeply_nested_page_is_a_repository_error() -> None:
    depth = 100_000
    body = b'{"files": ' + b"[" * depth + b"]" * depth + b"}"
    with pytest.raises(RepositoryError, match="nested too deeply"):
        parse_project_page(body, page_url=OURS, route=Route.WHEEL)


def test_names_and_hashes_with_a_trailing_newline_are_not_taken() -> None:
    # "$" matches before a final newline: such entries must not pass as valid.
    stored = {"url": "x.stored", "hashes": {"sha256": "ab" * 32 + "\n"}, "size": 3}
    body = json.dumps(
        {
            "files": [
                {"filename": "demo\n-1.0-py3-none-any.whl", "url": "a.whl", "hashes": {}},
                {
                    "filename": "demo-1.0-py3-none-any.whl",
                    "url": "b.whl",
                    "hashes": {},
                    "_ipydeps-stored": stored,
                },
            ]
        }
    ).encode()
    candidates = parse_project_page(body, page_url=OURS, route=Route.WHEEL)
    assert [candidate.filename for candidate in candidates] == ["demo-1.0-py3-none-any.whl"]
    assert candidates[0].stored is None


def test_html_escaping_in_attributes_is_undone() -> None:
    page = (
        '<a href="x-1.0-py3-none-any.whl" data-requires-python="&gt;=3.8,&lt;4">'
        "x-1.0-py3-none-any.whl</a>"
    )
    [candidate] = parse_project_html(page, page_url=OURS, route=Route.WHEEL)
    assert candidate.requires_python == ">=3.8,<4"


def test_apk_names_map_both_ways() -> None:
    assert apk_name_for("NumPy") == "py3-numpy"
    assert apk_name_for("python-dateutil", {"python_dateutil": "py3-dateutil"}) == "py3-dateutil"
    assert project_for_apk("py3-numpy") == "numpy"
    assert project_for_apk("py3-dateutil", {"python-dateutil": "py3-dateutil"}) == "python-dateutil"
    assert project_for_apk("openblas") is None
    assert project_for_apk("py3-numpy-pyc") is None


def test_apk_depends_become_requirements_on_python_projects() -> None:
    depends = [
        "python3~3.12",
        "py3-numpy>=1.22.4-r0",
        "so:libopenblas.so.0",
        "openblas",
        "py3-tzdata",
        "py3-dateutil~2.8",
        "!py3-conflict",
        "py3-pytz=2024.1-r0",
    ]
    assert apk_depends_to_requires_dist(depends, {"python-dateutil": "py3-dateutil"}) == (
        "numpy>=1.22.4",
        "tzdata",
        "python-dateutil==2.8.*",
        "pytz==2024.1",
    )


@pytest.mark.parametrize(
    ("depends", "python"),
    [
        (("python3~3.12", "so:libc.musl-x86_64.so.1"), "3.12"),
        (("so:libopenblas.so.0", "python3~3.9"), "3.9"),
        (("python3=3.11.9-r0",), "3.11"),
        (("python3",), None),
        (("python3>=3.8",), None),
        (("py3-numpy", "python3-dev~3.12"), None),
        ((), None),
    ],
)
def test_the_python_an_apk_is_built_for_comes_from_its_python3_dependency(
    depends: tuple[str, ...], python: str | None
) -> None:
    assert apk_python_version(depends) == python


def test_apkindex_records_become_apk_candidates() -> None:
    records = [
        ApkIndexRecord(
            checksum="Q1" + "A" * 27 + "=",
            name="py3-pandas",
            version="2.2.3-r1",
            arch="x86_64",
            size=9_000_000,
            depends=("python3~3.12", "py3-numpy>=1.26", "py3-dateutil", "py3-tzdata"),
        ),
        ApkIndexRecord(
            checksum="Q1" + "B" * 27 + "=",
            name="py3-numpy",
            version="2.1.0_rc1-r0",
            arch="x86_64",
            size=5_000_000,
            depends=("openblas",),
        ),
        ApkIndexRecord(
            checksum="Q1" + "C" * 27 + "=",
            name="openblas",
            version="0.3.28-r0",
            arch="x86_64",
            size=4_000_000,
        ),
        ApkIndexRecord(
            checksum="Q1" + "D" * 27 + "=",
            name="py3-tzdata",
            version="2024.2-r0",
            arch="noarch",
            size=1000,
        ),
    ]
    # Through the real APKINDEX text, as the repository serves it.
    parsed = parse_apkindex(render_apkindex(records))
    candidates = apk_candidates(
        parsed,
        repository_url="http://127.0.0.1:8080/alpine/v3.22/sci/",
        apk_map={"python-dateutil": "py3-dateutil"},
        arch="x86_64",
    )
    by_name = {c.name: c for c in candidates}
    assert set(by_name) == {"pandas", "numpy", "tzdata"}
    pandas = by_name["pandas"]
    assert pandas.route is Route.APK and pandas.is_apk
    assert pandas.apk_python == "3.12" and by_name["numpy"].apk_python is None
    assert pandas.version == Version("2.2.3") and pandas.apk_version == "2.2.3-r1"
    assert pandas.apk_name == "py3-pandas" and pandas.size == 9_000_000
    assert pandas.url == "http://127.0.0.1:8080/alpine/v3.22/sci/x86_64/py3-pandas-2.2.3-r1.apk"
    assert pandas.requires_dist == ("numpy>=1.26", "python-dateutil", "tzdata")
    assert by_name["numpy"].version == Version("2.1.0rc1")
    assert by_name["tzdata"].url.endswith("/x86_64/py3-tzdata-2024.2-r0.apk")


@pytest.mark.parametrize("suffix", ["json", "html"])
def test_recorded_pages_of_our_server(suffix: str) -> None:
    page = "http://127.0.0.1:8080/simple/demo-lib/"
    candidates = parse_project_page(
        (DATA / f"ours-demo-lib.{suffix}").read_bytes(), page_url=page, route=Route.WHEEL
    )
    assert sorted(str(c.version) for c in candidates) == ["1.0", "1.1"]
    [newest] = [c for c in candidates if c.version == Version("1.1")]
    assert newest.url == "http://127.0.0.1:8080/files/demo-lib/demo_lib-1.1-py3-none-any.whl"
    assert newest.metadata_url == newest.url + ".metadata"
    metadata = (DATA / "ours-demo-lib-1.1.metadata").read_bytes()
    assert newest.metadata_sha256 == hashlib.sha256(metadata).hexdigest()
    assert newest.sha256 is not None and len(newest.sha256) == 64
    assert requires_dist_from_metadata(metadata) == ("six>=1.5",)
