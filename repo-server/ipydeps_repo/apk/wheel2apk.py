"""Apk wheels: wrap a built wheel as a signed Alpine apk for one (branch, Python, arch) target."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet

from ipydeps.formats.apknames import apk_name_for
from ipydeps.formats.apkversion import ApkVersionError, compare_apk_versions, pep440_to_apk

from ..errors import ValidationError
from .elf import read_elf
from .keys import SigningKey
from .package import ApkEntry, build_apk
from .pkginfo import PkgInfo
from .wheelfile import WheelContents, read_wheel
from .wheellayout import installed_files

# Alpine arch -> the machine name in wheel platform tags and in platform_machine.
WHEEL_MACHINES = {
    "x86_64": "x86_64",
    "aarch64": "aarch64",
    "armv7": "armv7l",
    "armhf": "armv6l",
    "x86": "i686",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "loongarch64": "loongarch64",
}
# Libraries only glibc provides: a wheel needing them was built for glibc, not musl.
GLIBC_LIBRARIES = re.compile(r"libc\.so\.6|ld-linux.*\.so\.\d|libpthread\.so\.0|libdl\.so\.2")
_MUSL_TAG = re.compile(r"musllinux_(\d+)_(\d+)_(\w+)")
# The musl loader's default search path. abuild provides ``so:`` names only for libraries
# here: a copy bundled elsewhere (auditwheel's ``numpy.libs/``) is found through the
# extension's RPATH by that package alone, and a versioned provide is exclusive in apk,
# so two wheels bundling the same ``libgcc_s-<hash>.so.1`` could never be installed together.
LIBRARY_DIRS = frozenset({"lib", "usr/lib", "usr/local/lib"})


@dataclass(frozen=True)
class ApkTarget:
    """Where the apk will run: Alpine ``branch`` (``v3.22``), ``python`` (``3.12``), ``arch``."""

    branch: str
    python: str
    arch: str

    def __post_init__(self) -> None:
        """Check the values, so a typo fails here and not in a user's ``apk add``."""
        problems = []
        if not re.fullmatch(r"3\.\d{1,2}", self.python):
            problems.append(f"python {self.python!r} must look like '3.12'")
        if self.arch not in WHEEL_MACHINES:
            problems.append(f"arch {self.arch!r} is not one of {', '.join(WHEEL_MACHINES)}")
        if not re.fullmatch(r"v\d+\.\d+|edge", self.branch):
            problems.append(f"branch {self.branch!r} must look like 'v3.22' or 'edge'")
        if problems:
            raise ValidationError("apk target", problems)

    @property
    def python_tag(self) -> str:
        """The CPython tag of this Python, e.g. ``cp312``."""
        return "cp" + self.python.replace(".", "")

    @property
    def site_packages(self) -> str:
        """The site-packages directory, relative to / (``usr/lib/python3.12/site-packages``)."""
        return f"usr/lib/python{self.python}/site-packages"

    def marker_environment(self) -> dict[str, str]:
        """Return the PEP 508 marker environment of CPython on Alpine Linux for this target."""
        return {
            "implementation_name": "cpython",
            "implementation_version": f"{self.python}.0",
            "os_name": "posix",
            "platform_machine": WHEEL_MACHINES[self.arch],
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": "Linux",
            "platform_version": "",
            "python_full_version": f"{self.python}.0",
            "python_version": self.python,
            "sys_platform": "linux",
            "extra": "",
        }


def _tag_problem(wheel: WheelContents, target: ApkTarget) -> str | None:
    """Return why no tag of the wheel runs on the target, or None if one does."""
    minor = int(target.python.split(".")[1])
    machine = WHEEL_MACHINES[target.arch]
    for tag in wheel.tags:
        python_ok = tag.interpreter in ("py3", target.python_tag) or (
            re.fullmatch(r"(py|cp)3\d+", tag.interpreter) is not None
            and int(tag.interpreter[3:]) <= minor
            and (tag.interpreter.startswith("py") or tag.abi in ("abi3", "none"))
        )
        abi_ok = tag.abi == "none" or tag.abi == target.python_tag or tag.abi == "abi3"
        musl = _MUSL_TAG.fullmatch(tag.platform)
        platform_ok = (
            tag.platform == "any"
            or tag.platform == f"linux_{machine}"
            or (musl is not None and musl[3] == machine and (int(musl[1]), int(musl[2])) <= (1, 2))
        )
        if python_ok and abi_ok and platform_ok:
            return None
    platforms = sorted({tag.platform for tag in wheel.tags})
    if any(p.startswith("manylinux") for p in platforms):
        return f"{wheel.filename} is built for glibc ({', '.join(platforms)}); Alpine uses musl"
    return (
        f"{wheel.filename} has no tag for CPython {target.python} on musllinux {machine} "
        f"(tags: {', '.join(sorted(str(t) for t in wheel.tags))})"
    )


def _dependency(requirement: Requirement, name_map: Mapping[str, str]) -> tuple[str, str, str]:
    """Map a requirement to (apk name, operator, apk version); operator "" for any version.

    apk keeps one dependency per name (apk_deps_add replaces an earlier one), so only
    the lower bound (or ``==``) is kept; pip checks upper bounds against the metadata.
    """
    name = apk_name_for(requirement.name, name_map)
    for spec in sorted(requirement.specifier, key=lambda s: s.operator):
        if spec.operator == "==" and spec.version.endswith(".*"):
            return name, "~", spec.version[:-2]
        if spec.operator in (">=", ">", "~=", "=="):
            try:
                version = pep440_to_apk(spec.version)
            except ApkVersionError:
                continue
            # "==1.2" must match 1.2-r0, 1.2-r1...: that is apk's fuzzy "~".
            return name, {"==": "~", "~=": ">=", ">=": ">=", ">": ">"}[spec.operator], version
    return name, "", ""


def _requirements(
    wheel: WheelContents, target: ApkTarget, name_map: Mapping[str, str]
) -> tuple[list[str], list[str]]:
    chosen: dict[str, tuple[str, str, str]] = {}
    problems: list[str] = []
    environment = target.marker_environment()
    for text in wheel.metadata_values("Requires-Dist"):
        try:
            requirement = Requirement(text)
        except InvalidRequirement as error:
            problems.append(f"Requires-Dist {text!r} is invalid: {error}")
            continue
        # Dependencies of extras and of other platforms are not installed by default.
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        name, op, version = _dependency(requirement, name_map)
        earlier = chosen.get(name)
        # Two requirements on one project (different markers): keep the higher bound.
        if (
            earlier is None
            or not earlier[2]
            or (version and compare_apk_versions(version, earlier[2]) > 0)
        ):
            chosen[name] = (name, op, version)
    return ["".join(parts) for parts in chosen.values()], problems


def _so_version(soname: str) -> str:
    # abuild provides "so:libfoo.so.1=1" (the part after ".so."), or "=0" without one.
    _, found, version = soname.partition(".so.")
    return version if found and version else "0"


def _elf_relations(
    wheel: WheelContents, entries: list[ApkEntry], target: ApkTarget, so_map: Mapping[str, str]
) -> tuple[list[str], list[str], set[str], list[str]]:
    """Return (so: depends, so: provides, ELF paths, problems) for the packaged files."""
    needed: dict[str, str] = {}
    bundled: set[str] = set()
    provides: list[str] = []
    elf_paths: set[str] = set()
    problems: list[str] = []
    for entry in entries:
        info = read_elf(entry.data, f"{wheel.filename}: /{entry.path}")
        if info is None:
            continue
        elf_paths.add(entry.path)
        if target.arch not in info.arches:
            problems.append(f"/{entry.path} is machine code for {info.arches or info.machine}")
        folder, _, filename = entry.path.rpartition("/")
        # A library the package carries itself is no dependency, wherever it lies.
        bundled.add(filename)
        if info.soname:
            bundled.add(info.soname)
            if folder in LIBRARY_DIRS:
                provides.append(f"so:{info.soname}={_so_version(info.soname)}")
        for library in info.needed:
            needed.setdefault(library, entry.path)
        if info.interpreter and GLIBC_LIBRARIES.search(info.interpreter):
            needed.setdefault(info.interpreter.rsplit("/", 1)[-1], entry.path)
    for library, path in sorted(needed.items()):
        if GLIBC_LIBRARIES.fullmatch(library):
            problems.append(f"/{path} needs {library}: it was built against glibc, not musl")
    depends = [so_map.get(lib, f"so:{lib}") for lib in sorted(needed) if lib not in bundled]
    return depends, sorted(set(provides)), elf_paths, problems


def _module_provides(entries: list[ApkEntry], target: ApkTarget, pkgver: str) -> list[str]:
    """abuild-style ``py3.X:<module>=<pkgver>`` for each top-level module or package."""
    prefix = target.site_packages + "/"
    modules: set[str] = set()
    for entry in entries:
        if not entry.path.startswith(prefix):
            continue
        parts = entry.path[len(prefix) :].split("/")
        if len(parts) == 2 and parts[1] == "__init__.py":
            modules.add(parts[0])
        elif len(parts) == 1 and parts[0].endswith((".py", ".so")):
            modules.add(parts[0].split(".", 1)[0])
    commands = [e.path[len("usr/bin/") :] for e in entries if e.path.startswith("usr/bin/")]
    valid = sorted(m for m in modules if m.isidentifier())
    return [f"py{target.python}:{m}={pkgver}" for m in valid] + [
        f"cmd:{c}={pkgver}" for c in sorted(commands)
    ]


def _first_line(text: object, limit: int) -> str:
    line = str(text or "").strip().splitlines()[0] if str(text or "").strip() else ""
    return line[:limit]


def _project_url(wheel: WheelContents) -> str:
    for value in wheel.metadata_values("Project-URL"):
        label, _, url = value.partition(",")
        if label.strip().lower() in ("homepage", "home", "source", "repository"):
            return url.strip()
    return _first_line(wheel.metadata.get("Home-page"), 256)


def _python_problem(wheel: WheelContents, target: ApkTarget) -> str | None:
    requires = wheel.metadata.get("Requires-Python")
    if requires is None:
        return None
    try:
        accepted = SpecifierSet(str(requires)).contains(f"{target.python}.0", prereleases=True)
    except InvalidSpecifier:
        return f"Requires-Python {requires!r} is invalid"
    return None if accepted else f"Requires-Python {requires} excludes Python {target.python}"


def wheel_to_apk(
    wheel_path: Path | str,
    target: ApkTarget,
    key: SigningKey,
    *,
    pkgrel: int = 0,
    packager: str = "ipydeps-repo",
    so_map: Mapping[str, str] | None = None,
    name_map: Mapping[str, str] | None = None,
    builddate: int | None = None,
    compresslevel: int = 9,
) -> tuple[str, bytes]:
    """Wrap a wheel as a signed apk; return (``<apk name>-<ver>-r<pkgrel>.apk``, bytes).

    The apk name, and the name of each Requires-Dist depend, is Alpine's
    (``ipydeps.formats.apknames.apk_name_for``: ``py3-<name>``, ``py3-dateutil`` for
    python-dateutil), the one the farm's APKBUILDs use; ``name_map`` overrides it.

    Pure wheels become ``noarch``; wheels with machine code get ``target.arch``,
    ``so:`` depends for libraries they need but do not bundle (``so_map`` may name the
    apk instead, e.g. ``{"libopenblas.so.3": "openblas"}``) and, like abuild, ``so:``
    provides only for libraries in the loader's path (``LIBRARY_DIRS``), never for the
    copies auditwheel bundles under site-packages (``<name>.libs/``). Requires-Dist
    becomes depends (markers evaluated for the target, extras dropped; ``name_map`` maps
    a project to another apk, e.g. ``{"numpy": "py3-numpy-openblas"}``), plus
    ``python3~<python>``. ``compresslevel`` 6 builds big packages about 3x faster than
    abuild's 9, for about 1% more bytes.

    Raises:
        ValidationError: for a wheel that cannot run on the target (glibc/manylinux,
            another Python or arch, Requires-Python), a broken wheel (RECORD mismatch,
            unsafe paths), or a version apk cannot express (epoch, local version).
    """
    wheel = read_wheel(wheel_path)
    problems = [p for p in (_tag_problem(wheel, target), _python_problem(wheel, target)) if p]
    entries = installed_files(wheel, target.python)
    so_depends, so_provides, elf_paths, elf_problems = _elf_relations(
        wheel, entries, target, so_map or {}
    )
    names = dict(name_map or {})
    requirements, requirement_problems = _requirements(wheel, target, names)
    problems += elf_problems + requirement_problems
    try:
        pkgver = f"{pep440_to_apk(wheel.version)}-r{pkgrel}"
    except ApkVersionError as error:
        problems.append(error.message)
        pkgver = ""
    if problems:
        raise ValidationError(
            wheel.filename, problems, hint="build a musllinux wheel for the target"
        )
    pure = not elf_paths and all(tag.platform == "any" for tag in wheel.tags)
    entries = [
        ApkEntry.file(e.path, e.data, mode=0o755) if e.path in elf_paths else e for e in entries
    ]
    info = PkgInfo(
        pkgname=apk_name_for(wheel.name, names),
        pkgver=pkgver,
        pkgdesc=_first_line(wheel.metadata.get("Summary"), 128),
        url=_project_url(wheel),
        builddate=int(time.time()) if builddate is None else builddate,
        packager=packager,
        size=1,
        arch="noarch" if pure else target.arch,
        license=_first_line(
            wheel.metadata.get("License-Expression") or wheel.metadata.get("License"), 64
        ),
        depends=tuple(dict.fromkeys([f"python3~{target.python}", *requirements, *so_depends])),
        provides=tuple(_module_provides(entries, target, pkgver) + so_provides),
    )
    return info.filename, build_apk(entries, info, key, compresslevel=compresslevel)
