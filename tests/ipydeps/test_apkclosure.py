"""apk's own closure: what `apk add` of the planned apks adds, from our index and apk's database."""

from __future__ import annotations

import pytest

from ipydeps.apkclosure import (
    ApkConflict,
    ApkDependency,
    InstalledApks,
    apk_closure,
    parse_installed_db,
    resolve_apks,
)
from ipydeps.formats.apkindex import ApkIndexRecord

MUSL = "so:libc.musl-x86_64.so.1"


def record(
    name: str,
    version: str,
    *depends: str,
    provides: tuple[str, ...] = (),
    install_if: tuple[str, ...] = (),
    priority: int = 0,
) -> ApkIndexRecord:
    return ApkIndexRecord(
        checksum="Q1" + "A" * 27 + "=",
        name=name,
        version=version,
        arch="x86_64",
        size=1000,
        depends=depends,
        provides=provides,
        install_if=install_if,
        provider_priority=priority,
    )


# An index as `ipydeps-repo wrap` makes it from the musllinux wheels (bundled libraries
# provide nothing, so the three co-install).
INDEX = [
    record(
        "py3-numpy",
        "2.5.5-r0",
        "python3~3.12",
        MUSL,
        provides=("py3.12:numpy=2.5.5-r0", "cmd:f2py=2.5.5-r0"),
    ),
    record("py3-numpy", "2.4.0-r0", "python3~3.12", MUSL),
    record("py3-scipy", "1.18.1-r0", "python3~3.12", "py3-numpy>=1.26.4", MUSL),
    record(
        "py3-pandas",
        "3.1.1-r0",
        "python3~3.12",
        "py3-numpy>=1.26.0",
        "py3-dateutil>=2.8.2",
        "py3-tzdata>=2023.3",
        MUSL,
    ),
    record("py3-dateutil", "2.9.0_p0-r0", "python3~3.12", "py3-six>=1.5"),
    record("py3-six", "1.17.0-r0", "python3~3.12"),
    record("py3-tzdata", "2026.6-r0", "python3~3.12"),
]
# A kernel image: Alpine's python3 and musl are installed.
IMAGE = InstalledApks(
    packages={"python3": "3.12.12-r0", "musl": "1.2.5-r10"},
    provides={MUSL: ("1",), "cmd:python3": ("3.12.12-r0",)},
)


def names(additions: tuple[object, ...]) -> list[str]:
    return [added.name for added in additions]  # type: ignore[attr-defined]


def test_pandas_pulls_numpy_and_its_python_dependencies_deps_first() -> None:
    added = apk_closure([("py3-pandas", "3.1.1-r0")], INDEX, IMAGE)
    assert names(added) == ["py3-numpy", "py3-six", "py3-dateutil", "py3-tzdata"]
    numpy = added[0]
    assert numpy.record is not None and numpy.record.version == "2.5.5-r0"
    assert (numpy.needed_by, numpy.dependency) == ("py3-pandas", "py3-numpy>=1.26.0")
    assert added[1].needed_by == "py3-dateutil"


def test_numpy_scipy_pandas_together_add_only_their_python_dependencies() -> None:
    requested = [("py3-numpy", "2.5.5-r0"), ("py3-scipy", "1.18.1-r0"), ("py3-pandas", "3.1.1-r0")]
    assert names(apk_closure(requested, INDEX, IMAGE)) == ["py3-six", "py3-dateutil", "py3-tzdata"]


def test_what_apks_database_satisfies_is_not_added() -> None:
    installed = InstalledApks(
        packages={**IMAGE.packages, "py3-numpy": "2.4.0-r0", "py3-six": "1.17.0-r0"},
        provides=IMAGE.provides,
    )
    assert names(apk_closure([("py3-pandas", "3.1.1-r0")], INDEX, installed)) == [
        "py3-dateutil",
        "py3-tzdata",
    ]
    # An installed version that is too old does not satisfy: apk upgrades it.
    old = InstalledApks(
        packages={**IMAGE.packages, "py3-numpy": "1.26.0-r0"}, provides=IMAGE.provides
    )
    assert "py3-numpy" in names(apk_closure([("py3-scipy", "1.18.1-r0")], INDEX, old))


def test_dependencies_our_index_cannot_satisfy_come_from_the_system_repositories() -> None:
    # On a fresh root nothing is installed: python3 and musl come from Alpine's repositories.
    added = apk_closure([("py3-six", "1.17.0-r0")], INDEX, InstalledApks())
    assert [(a.name, a.record, a.needed_by) for a in added] == [("python3~3.12", None, "py3-six")]
    blas = [record("py3-fast", "1.0-r0", "so:libopenblas.so.3", "openblas")]
    assert names(apk_closure([("py3-fast", "1.0-r0")], blas, IMAGE)) == [
        "so:libopenblas.so.3",
        "openblas",
    ]


def test_versioned_provides_satisfy_dependencies_and_the_newest_provider_wins() -> None:
    index = [
        record("py3-fast", "1.0-r0", "so:libopenblas.so.3", "py3.12:numpy"),
        record("openblas", "0.3.28-r0", provides=("so:libopenblas.so.3=3",)),
        record("openblas", "0.3.30-r0", provides=("so:libopenblas.so.3=3",)),
        *INDEX,
    ]
    added = apk_closure([("py3-fast", "1.0-r0")], index, IMAGE)
    assert [(a.name, a.record.version if a.record else "") for a in added] == [
        ("openblas", "0.3.30-r0"),
        ("py3-numpy", "2.5.5-r0"),
    ]
    # An unversioned provide is virtual: apk needs a provider priority to choose it.
    virtual = [record("py3-x", "1-r0", "blas"), record("openblas", "1-r0", provides=("blas",))]
    assert names(apk_closure([("py3-x", "1-r0")], virtual, IMAGE)) == ["blas"]
    chosen = [
        record("py3-x", "1-r0", "blas"),
        record("openblas", "1-r0", provides=("blas",), priority=10),
    ]
    assert names(apk_closure([("py3-x", "1-r0")], chosen, IMAGE)) == ["openblas"]


def test_conflicts_add_nothing_and_install_if_adds_what_apk_adds() -> None:
    index = [
        record("py3-a", "1-r0", "!py3-b"),
        record("py3-b", "1-r0"),
        record("py3-a-pyc", "1-r0", install_if=("py3-a=1-r0", "pyc")),
        record("py3-a-doc", "1-r0", install_if=("py3-a=1-r0", "docs")),
    ]
    with_pyc = InstalledApks(packages={"pyc": "0.1-r0"})
    added = apk_closure([("py3-a", "1-r0")], index, with_pyc)
    assert [(a.name, a.needed_by) for a in added] == [("py3-a-pyc", "py3-a")]
    assert names(apk_closure([("py3-a", "1-r0")], index, InstalledApks())) == []


@pytest.mark.parametrize(
    ("token", "parsed"),
    [
        ("py3-numpy>=1.26", ApkDependency("py3-numpy", ">=", "1.26")),
        ("python3~3.12", ApkDependency("python3", "~", "3.12")),
        ("!py3-old", ApkDependency("py3-old", conflict=True)),
        ("so:libc.musl-x86_64.so.1", ApkDependency("so:libc.musl-x86_64.so.1")),
        ("py3-x@sci=1.0-r0", ApkDependency("py3-x", "=", "1.0-r0")),
    ],
)
def test_dependency_tokens(token: str, parsed: ApkDependency) -> None:
    assert ApkDependency.parse(token) == parsed


def test_installed_database_is_read_like_apk_writes_it() -> None:
    text = (
        "C:Q1abc=\nP:musl\nV:1.2.5-r10\nA:x86_64\nS:411000\nI:622592\nT:the musl c library\n"
        "p:so:libc.musl-x86_64.so.1=1\nF:lib\nR:ld-musl-x86_64.so.1\na:0:0:755\n"
        "Z:Q1aaaaaaaaaaaaaaaaaaaaaaaaaaa=\n\n"
        "C:Q1def=\nP:python3\nV:3.12.12-r0\nD:so:libc.musl-x86_64.so.1\n"
        "p:cmd:python3=3.12.12-r0 cmd:python=3.12.12-r0\nF:usr/bin\nR:python3\n"
    )
    installed = parse_installed_db(text)
    assert dict(installed.packages) == {"musl": "1.2.5-r10", "python3": "3.12.12-r0"}
    assert installed.satisfies(ApkDependency(MUSL))
    assert installed.satisfies(ApkDependency("python3", "~", "3.12"))
    assert not installed.satisfies(ApkDependency("python3", "~", "3.13"))
    assert installed.satisfies(ApkDependency("cmd:python", ">=", "3.12"))
    assert parse_installed_db("") == InstalledApks()


def test_two_apks_providing_one_versioned_name_are_a_conflict_apk_would_refuse() -> None:
    # What `ipydeps-repo wrap` wrote before it stopped providing auditwheel's bundled copies.
    gcc = "so:libgcc_s-0cd532bd.so.1=1"
    index = [
        record("py3-numpy", "2.5.5-r0", provides=(gcc, "py3.12:numpy=2.5.5-r0")),
        record("py3-scipy", "1.18.1-r0", "py3-numpy>=2", provides=(gcc,)),
        record("py3-blas-a", "1-r0", provides=("blas",)),
        record("py3-blas-b", "1-r0", provides=("blas",)),
    ]
    resolution = resolve_apks([("py3-scipy", "1.18.1-r0")], index, IMAGE)
    assert names(resolution.additions) == ["py3-numpy"]
    assert resolution.conflicts == (
        ApkConflict("so:libgcc_s-0cd532bd.so.1", "py3-numpy", "py3-scipy"),
    )
    # Unversioned provides are virtual: several packages may offer one.
    both = resolve_apks([("py3-blas-a", "1-r0"), ("py3-blas-b", "1-r0")], index, IMAGE)
    assert both.conflicts == ()
