"""Refresh apkbuilds/alpine-packages/<branch>.tsv from Alpine's own package index.

Run: ``python3 scripts/alpine_packages.py v3.24 [--arch x86_64 --arch aarch64]
[--mirror URL] [--output DIR]``. For each of ``main`` and ``community`` and each arch it
downloads ``<mirror>/<branch>/<repo>/<arch>/APKINDEX.tar.gz``, reads it with ipydeps' APKINDEX
reader and keeps only the packages the farm's recipes and Dockerfiles name (plus the build tools
the recipes pin from PyPI instead, so the data shows what the branch would have offered):
names, versions and the plain names they provide. The file records the date and the index URLs.

``tests/farm/test_alpine_packages.py`` holds the recipes and Dockerfiles to that file; the
script itself is tested against a local mirror (``--mirror file://...``).
"""

from __future__ import annotations

import argparse
import datetime
import sys
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "repo-server")]

from ipydeps_repo.farm.alpine_packages import (  # noqa: E402
    BranchPackage,
    BranchPackages,
    data_path,
    dockerfile_needs,
    recipe_needs,
    render_branch_packages,
)
from ipydeps_repo.farm.recipe import load_recipes  # noqa: E402

from ipydeps.formats.apkindex import parse_apkindex, read_apkindex_archive  # noqa: E402

DEFAULT_MIRROR = "https://dl-cdn.alpinelinux.org/alpine"
REPOS = ("main", "community")
# Looked up although no recipe asks the branch for them (the recipes pin these from PyPI):
# the data then says whether a newer branch could serve them.
ALSO_ASKED = (
    "cython",
    "openblas",
    "py3-beniget",
    "py3-gast",
    "py3-meson-python",
    "py3-pybind11",
    "py3-pybind11-dev",
    "py3-pyproject-metadata",
    "py3-python-versioneer",
    "py3-setuptools",
    "pythran",
)


def wanted_names(root: Path) -> set[str]:
    """Every package name the recipes under ``root/apkbuilds`` and ``root/docker`` ask for."""
    needs = recipe_needs(load_recipes(root / "apkbuilds"))
    for dockerfile in sorted((root / "docker").glob("*.Dockerfile")):
        needs += dockerfile_needs(dockerfile)
    return {need.name for need in needs} | set(ALSO_ASKED)


def read_index(url: str) -> str:
    """Download one APKINDEX.tar.gz and return its APKINDEX text."""
    try:
        with urllib.request.urlopen(url, timeout=120) as response:
            data = response.read()
    except (urllib.error.URLError, TimeoutError) as error:
        raise SystemExit(f"alpine_packages: cannot read {url}: {error}") from error
    return read_apkindex_archive(data)[1]


def refresh(branch: str, arches: list[str], mirror: str, names: set[str]) -> BranchPackages:
    """Read the branch's indexes and keep the packages that are or provide one of ``names``."""
    packages: list[BranchPackage] = []
    for arch in arches:
        for repo in REPOS:
            url = f"{mirror.rstrip('/')}/{branch}/{repo}/{arch}/APKINDEX.tar.gz"
            print(f"alpine_packages: reading {url}", file=sys.stderr)
            for record in parse_apkindex(read_index(url)):
                provided = tuple(
                    token.partition("=")[0] for token in record.provides if ":" not in token
                )
                if record.name in names or names.intersection(provided):
                    packages.append(
                        BranchPackage(repo, arch, record.name, record.version, provided)
                    )
    source = f"{mirror.rstrip('/')}/{branch}/{{{','.join(REPOS)}}}/{{{','.join(arches)}}}"
    return BranchPackages(
        branch=branch,
        taken=datetime.date.today().isoformat(),
        source=source + "/APKINDEX.tar.gz",
        asked=frozenset(names),
        packages=tuple(packages),
    )


def main(argv: list[str] | None = None) -> int:
    """Write ``<output>/<branch>.tsv``; exit 1 with a message if an index cannot be read."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("branch", help="Alpine branch, e.g. v3.24")
    parser.add_argument("--arch", action="append", default=[], help="default: x86_64")
    parser.add_argument("--mirror", default=DEFAULT_MIRROR, help=f"default: {DEFAULT_MIRROR}")
    parser.add_argument("--output", type=Path, default=ROOT / "apkbuilds" / "alpine-packages")
    args = parser.parse_args(argv)
    data = refresh(args.branch, args.arch or ["x86_64"], args.mirror, wanted_names(ROOT))
    args.output.mkdir(parents=True, exist_ok=True)
    path = data_path(args.output, args.branch)
    path.write_text(render_branch_packages(data), encoding="utf-8")
    print(f"alpine_packages: {len(data.packages)} packages -> {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
