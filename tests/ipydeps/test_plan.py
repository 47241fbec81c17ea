"""resolve() as a pure function over fake in-memory sources: routes, versions, deps, problems."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

import pytest
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from ipydeps.advice import command_flags
from ipydeps.environment_model import PlanPolicy, TargetEnvironment
from ipydeps.errors import (
    InvalidRequirementError,
    NoCandidateError,
    RepositoryError,
    ResolutionError,
)
from ipydeps.models import Candidate, Route, StepAction
from ipydeps.plan import raise_for_unsatisfiable, resolve
from ipydeps.plan_model import Plan
from ipydeps.render import render_text
from ipydeps.requirements import parse_requirements

MUSL = TargetEnvironment.simulated(
    python="3.12.1", platforms=["musllinux_1_2_x86_64"], apk_available=True
)
MUSL_NO_APK = TargetEnvironment.simulated(python="3.12.1", platforms=["musllinux_1_2_x86_64"])
HOSTS = {Route.APK: "apk.local", Route.WHEEL: "repo.local", Route.UPSTREAM: "pypi.local"}


class FakeSource:
    """A PackageSource over candidates made in code; it records which projects were asked for."""

    def __init__(self, route: Route, candidates: Iterable[Candidate]) -> None:
        self.route = route
        self.location = f"http://{HOSTS[route]}/"
        self.files = list(candidates)
        self.asked: list[str] = []

    def candidates(self, name: NormalizedName) -> Sequence[Candidate]:
        self.asked.append(name)
        return [c for c in self.files if c.name == name]

    def requires_dist(self, candidate: Candidate) -> tuple[str, ...]:
        return candidate.requires_dist or ()


def wheel(
    name: str,
    version: str,
    *requires: str,
    route: Route = Route.WHEEL,
    tag: str = "py3-none-any",
    requires_python: str | None = None,
    yanked: bool = False,
) -> Candidate:
    filename = f"{name.replace('-', '_')}-{version}-{tag}.whl"
    return Candidate(
        name=canonicalize_name(name),
        version=Version(version),
        route=route,
        url=f"http://{HOSTS[route]}/files/{filename}",
        filename=filename,
        sha256="0" * 64,
        size=1000,
        requires_python=requires_python,
        requires_dist=tuple(requires),
        yanked=yanked,
    )


def upstream(name: str, version: str, *requires: str, **kwargs: object) -> Candidate:
    return wheel(name, version, *requires, route=Route.UPSTREAM, **kwargs)  # type: ignore[arg-type]


def sdist(name: str, version: str, route: Route = Route.UPSTREAM) -> Candidate:
    filename = f"{name}-{version}.tar.gz"
    return Candidate(
        name=canonicalize_name(name),
        version=Version(version),
        route=route,
        url=f"http://{HOSTS[route]}/{filename}",
        filename=filename,
    )


def apk(
    name: str, version: str, *requires: str, release: int = 0, python: str | None = None
) -> Candidate:
    apk_name = f"py3-{name}"
    filename = f"{apk_name}-{version}-r{release}.apk"
    return Candidate(
        name=canonicalize_name(name),
        version=Version(version),
        route=Route.APK,
        url=f"http://apk.local/alpine/v3.22/sci/x86_64/{filename}",
        filename=filename,
        size=5000,
        requires_dist=tuple(requires),
        apk_name=apk_name,
        apk_version=f"{version}-r{release}",
        apk_python=python,
    )


def plan(
    requirements: Iterable[str] | str,
    *sources: FakeSource,
    installed: dict[str, str] | None = None,
    environment: TargetEnvironment = MUSL,
    **policy: bool,
) -> Plan:
    return resolve(
        parse_requirements(requirements),
        sources=list(sources),
        installed={canonicalize_name(k): Version(v) for k, v in (installed or {}).items()},
        environment=environment,
        policy=PlanPolicy(**policy),
    )


def chosen(result: Plan) -> list[tuple[str, str, str]]:
    """(name, version, route) of each step in plan order."""
    assert result.ok, result.unsatisfiable
    return [
        (s.candidate.name, str(s.candidate.version), s.candidate.route.value) for s in result.steps
    ]


def only_problem(result: Plan) -> tuple[str, str, str | None]:
    assert not result.steps
    [problem] = result.unsatisfiable
    # The hint as the notebook API words it (str); hints naming settings are checked apart.
    return problem.text, problem.reason, None if problem.hint is None else str(problem.hint)


# Where a package comes from.


def test_newest_wheel_from_our_repository_is_planned_as_requested() -> None:
    ours = FakeSource(Route.WHEEL, [wheel("scipy", "1.13.0"), wheel("scipy", "1.14.1")])
    result = plan("scipy", ours)
    assert chosen(result) == [("scipy", "1.14.1", "wheel")]
    step = result.steps[0]
    assert (
        step.action is StepAction.INSTALL and step.reason == "requested" and step.replaces is None
    )


def test_version_specifiers_are_honoured() -> None:
    ours = FakeSource(
        Route.WHEEL, [wheel("numpy", v) for v in ("1.25.0", "1.26.4", "2.0.0", "2.3.5")]
    )
    assert chosen(plan("numpy<2", ours)) == [("numpy", "1.26.4", "wheel")]
    assert chosen(plan("numpy~=2.0.0", ours)) == [("numpy", "2.0.0", "wheel")]
    assert chosen(plan(["numpy>=1.26", "numpy!=2.3.5"], ours)) == [("numpy", "2.0.0", "wheel")]


def test_apk_beats_our_wheel_which_beats_upstream() -> None:
    apks = FakeSource(Route.APK, [apk("numpy", "2.2.6")])
    ours = FakeSource(Route.WHEEL, [wheel("numpy", "2.3.0")])
    pypi = FakeSource(Route.UPSTREAM, [upstream("numpy", "2.3.5")])
    assert chosen(plan("numpy", pypi, ours, apks)) == [("numpy", "2.2.6", "apk")]
    assert chosen(plan("numpy", pypi, ours)) == [("numpy", "2.3.0", "wheel")]
    assert chosen(plan("numpy", pypi)) == [("numpy", "2.3.5", "upstream")]
    # A faster route only wins while it satisfies the specifier.
    assert chosen(plan("numpy>=2.3", pypi, ours, apks)) == [("numpy", "2.3.0", "wheel")]
    assert chosen(plan("numpy>=2.3.1", pypi, ours, apks)) == [("numpy", "2.3.5", "upstream")]


def test_apk_is_not_used_where_apk_cannot_run_or_policy_forbids_it() -> None:
    apks = FakeSource(Route.APK, [apk("numpy", "2.2.6")])
    ours = FakeSource(Route.WHEEL, [wheel("numpy", "2.2.6")])
    result = plan("numpy", apks, ours, environment=MUSL_NO_APK)
    assert chosen(result) == [("numpy", "2.2.6", "wheel")]
    assert "apk cannot be used here, so apks were not considered" in result.notes
    assert apks.asked == []  # the apk index is not even read
    assert chosen(plan("numpy", apks, ours, apk_allowed=False)) == [("numpy", "2.2.6", "wheel")]


def test_apk_steps_carry_the_apk_name_and_version() -> None:
    apks = FakeSource(Route.APK, [apk("numpy", "2.2.6", release=3)])
    [step] = plan("numpy", apks).steps
    assert step.candidate.apk_name == "py3-numpy" and step.candidate.apk_version == "2.2.6-r3"


def test_the_dependencies_of_an_apk_come_as_apks() -> None:
    apks = FakeSource(Route.APK, [apk("pandas", "2.2.3", "numpy>=1.26"), apk("numpy", "2.2.6")])
    ours = FakeSource(Route.WHEEL, [wheel("numpy", "2.3.0")])
    assert chosen(plan("pandas", apks, ours)) == [
        ("numpy", "2.2.6", "apk"),
        ("pandas", "2.2.3", "apk"),
    ]


def test_an_apk_whose_dependency_has_no_apk_gives_way_to_the_wheel() -> None:
    apks = FakeSource(Route.APK, [apk("pandas", "2.2.3", "numpy>=1.26")])
    ours = FakeSource(
        Route.WHEEL, [wheel("pandas", "2.2.3", "numpy>=1.26"), wheel("numpy", "2.3.0")]
    )
    assert chosen(plan("pandas", apks, ours)) == [
        ("numpy", "2.3.0", "wheel"),
        ("pandas", "2.2.3", "wheel"),
    ]


def test_apks_built_for_another_python_give_way_to_the_wheel_and_the_plan_says_why() -> None:
    # Issue 15, item 10: a dry run from CPython 3.11 planned the 3.12 apks.
    apks = FakeSource(
        Route.APK,
        [
            apk("numpy", "2.2.6", python="3.12"),
            apk("pandas", "2.2.3", "numpy>=1.26", python="3.12"),
        ],
    )
    ours = FakeSource(Route.WHEEL, [wheel("numpy", "2.2.6"), wheel("pandas", "2.2.3", "numpy")])
    python311 = TargetEnvironment.simulated(python="3.11.4", apk_available=True)
    result = plan("pandas", apks, ours, environment=python311)
    assert chosen(result) == [("numpy", "2.2.6", "wheel"), ("pandas", "2.2.3", "wheel")]
    assert (
        "the apks of pandas are built for Python 3.12 and this is Python 3.11, so they "
        "were not used (a wheel was looked for instead)"
    ) in result.notes
    # On the Python they are built for, they are taken as before.
    python312 = TargetEnvironment.simulated(python="3.12.9", apk_available=True)
    assert chosen(plan("pandas", apks, ours, environment=python312)) == [
        ("numpy", "2.2.6", "apk"),
        ("pandas", "2.2.3", "apk"),
    ]


def test_an_apk_for_another_python_alone_is_unsatisfiable_with_the_reason() -> None:
    apks = FakeSource(Route.APK, [apk("numpy", "2.2.6", python="3.12")])
    python314 = TargetEnvironment.simulated(python="3.14.0", apk_available=True)
    text, reason, hint = only_problem(plan("numpy", apks, environment=python314))
    assert text == "numpy"
    assert reason == (
        "the only prebuilt packages of numpy are apks built for Python 3.12, "
        "and this is Python 3.14"
    )
    assert hint is not None and "for this Python" in hint


# Air-gapped and missing packages.


def test_upstream_denied_is_never_asked_and_says_air_gapped() -> None:
    ours = FakeSource(Route.WHEEL, [wheel("numpy", "2.3.0")])
    pypi = FakeSource(Route.UPSTREAM, [upstream("requests", "2.32.3")])
    result = plan(["numpy", "requests"], ours, pypi, upstream_allowed=False)
    assert pypi.asked == []
    [problem] = result.unsatisfiable
    assert problem.text == "requests"
    assert "requests is not in our repository (http://repo.local/simple/" not in problem.reason
    assert "requests is not in our repository (http://repo.local/)" in problem.reason
    assert "air-gapped policy: upstream is off" in problem.reason
    assert problem.hint is not None and "allow upstream" in str(problem.hint)
    # The hint keeps the setting, for each edge to word: a keyword in Python, a flag at a shell.
    assert 'allow upstream (upstream="allow")' in str(problem.hint)
    assert "allow upstream (--upstream allow)" in problem.hint.worded(command_flags)
    assert result.steps == ()  # a plan with a problem is never half carried out
    assert "upstream is off (air-gapped policy): only our repository was used" in result.notes


def test_not_found_anywhere() -> None:
    pypi = FakeSource(Route.UPSTREAM, [])
    text, reason, hint = only_problem(plan("nosuchproject", pypi))
    assert text == "nosuchproject"
    assert reason == "nosuchproject was not found in http://pypi.local/"
    assert hint == "check the spelling of the project name"


def test_only_a_source_distribution_is_explained_not_built() -> None:
    pypi = FakeSource(Route.UPSTREAM, [sdist("pyfoo", "1.0"), sdist("pyfoo", "1.1")])
    _, reason, hint = only_problem(plan("pyfoo", pypi))
    assert "only a source distribution of pyfoo exists (1.1, 1.0)" in reason
    assert "would need compiling" in reason
    assert hint is not None and "publish a wheel" in hint


def test_wheels_only_for_other_platforms() -> None:
    pypi = FakeSource(
        Route.UPSTREAM,
        [
            upstream("fastlib", "1.0", tag="cp312-cp312-manylinux_2_17_x86_64"),
            sdist("fastlib", "1.0"),
        ],
    )
    _, reason, _ = only_problem(plan("fastlib", pypi))
    assert "no wheel of fastlib fits this platform (cp312-cp312-musllinux_1_2_x86_64)" in reason


def test_platform_specific_wheel_is_preferred_to_a_generic_one() -> None:
    ours = FakeSource(
        Route.WHEEL,
        [wheel("fastlib", "1.0"), wheel("fastlib", "1.0", tag="cp312-cp312-musllinux_1_2_x86_64")],
    )
    [step] = plan("fastlib", ours).steps
    assert step.candidate.filename == "fastlib-1.0-cp312-cp312-musllinux_1_2_x86_64.whl"


def test_no_version_matches_lists_what_exists() -> None:
    ours = FakeSource(Route.WHEEL, [wheel("numpy", "1.26.4"), wheel("numpy", "2.3.0")])
    text, reason, hint = only_problem(plan("numpy>=3", ours))
    assert text == "numpy>=3"
    assert reason == "no version of numpy matches numpy>=3 (available: 2.3.0, 1.26.4)"
    assert hint == "relax the version specifier"


# Installed distributions and upgrades.


def test_installed_and_satisfying_is_kept_without_a_step() -> None:
    ours = FakeSource(Route.WHEEL, [wheel("numpy", "2.3.0")])
    result = plan("numpy>=1.26", ours, installed={"numpy": "1.26.4"})
    assert result.steps == () and result.ok
    [skip] = result.skipped
    assert skip.text == "numpy>=1.26" and "numpy 1.26.4 is already installed" in skip.reason
    assert skip.describe() == "numpy 1.26.4 is already installed (upgrade=True looks for newer)"
    assert skip.describe(command_flags) == "numpy 1.26.4 is already installed (-U looks for newer)"


def test_installed_but_too_old_is_upgraded_with_replaces() -> None:
    ours = FakeSource(Route.WHEEL, [wheel("numpy", "2.3.0")])
    [step] = plan("numpy>=2", ours, installed={"numpy": "1.26.4"}).steps
    assert step.action is StepAction.UPGRADE and step.replaces == Version("1.26.4")
    assert step.candidate.version == Version("2.3.0")


def test_upgrade_takes_the_newest_and_never_downgrades() -> None:
    apks = FakeSource(Route.APK, [apk("numpy", "1.26.0")])
    pypi = FakeSource(Route.UPSTREAM, [upstream("numpy", "2.3.5")])
    [step] = plan("numpy", apks, pypi, installed={"numpy": "2.0.0"}, upgrade=True).steps
    assert (step.action, step.replaces, step.candidate.version) == (
        StepAction.UPGRADE,
        Version("2.0.0"),
        Version("2.3.5"),
    )
    up_to_date = plan("numpy", pypi, installed={"numpy": "2.3.5"}, upgrade=True)
    assert up_to_date.steps == () and "already installed" in up_to_date.skipped[0].reason
    assert up_to_date.skipped[0].hint is None  # -U was given: no hint to give it
    # Without upgrade the installed version stays.
    assert plan("numpy", apks, pypi, installed={"numpy": "2.0.0"}).steps == ()


def test_an_older_pin_than_the_installed_version_is_a_downgrade() -> None:
    ours = FakeSource(Route.WHEEL, [wheel("numpy", "2.4.6"), wheel("numpy", "2.4.5")])
    [step] = plan("numpy==2.4.5", ours, installed={"numpy": "2.4.6"}).steps
    assert (step.action, step.replaces, step.candidate.version) == (
        StepAction.DOWNGRADE,
        Version("2.4.6"),
        Version("2.4.5"),
    )
    assert "2.4.5 (replaces 2.4.6)  downgrade wheel" in render_text(
        plan("numpy==2.4.5", ours, installed={"numpy": "2.4.6"})
    )


def test_upgrade_applies_to_requested_names_only() -> None:
    ours = FakeSource(
        Route.WHEEL, [wheel("pandas", "2.2.3", "numpy>=1.26"), wheel("numpy", "2.3.0")]
    )
    result = plan("pandas", ours, installed={"numpy": "1.26.4", "pandas": "2.0.0"}, upgrade=True)
    assert chosen(result) == [("pandas", "2.2.3", "wheel")]


# Dependencies, extras and markers.


def test_dependency_closure_comes_first_with_reasons() -> None:
    ours = FakeSource(
        Route.WHEEL,
        [
            wheel("pandas", "2.2.3", "numpy>=1.26", "python-dateutil>=2.8", "tzdata"),
            wheel("numpy", "2.3.0"),
            wheel("tzdata", "2025.1"),
        ],
    )
    pypi = FakeSource(
        Route.UPSTREAM,
        [
            upstream("python-dateutil", "2.9.0", "six>=1.5"),
            upstream("six", "1.17.0"),
            upstream("numpy", "2.3.5"),
        ],
    )
    result = plan("pandas", pypi, ours)
    steps = chosen(result)
    assert set(steps) == {
        ("pandas", "2.2.3", "wheel"),
        ("numpy", "2.3.0", "wheel"),
        ("tzdata", "2025.1", "wheel"),
        ("python-dateutil", "2.9.0", "upstream"),
        ("six", "1.17.0", "upstream"),
    }
    order = [name for name, _, _ in steps]
    assert order.index("six") < order.index("python-dateutil") < order.index("pandas")
    assert order[-1] == "pandas"
    reasons = {s.candidate.name: s.reason for s in result.steps}
    assert reasons["six"] == "dependency of python-dateutil"
    assert reasons["numpy"] == "dependency of pandas" and reasons["pandas"] == "requested"


def test_extras_pull_their_dependencies_and_only_then() -> None:
    ours = FakeSource(
        Route.WHEEL,
        [
            wheel(
                "pandas",
                "2.2.3",
                "numpy",
                'numexpr>=2.8; extra == "performance"',
                'openpyxl; extra == "excel"',
            ),
            wheel("numpy", "2.3.0"),
            wheel("numexpr", "2.10.0", "numpy"),
            wheel("openpyxl", "3.1.0"),
        ],
    )
    assert {n for n, _, _ in chosen(plan("pandas", ours))} == {"pandas", "numpy"}
    with_extra = plan("pandas[performance]", ours)
    assert {n for n, _, _ in chosen(with_extra)} == {"pandas", "numpy", "numexpr"}
    assert [s.candidate.name for s in with_extra.steps].count("pandas") == 1
    both = plan(["pandas[performance]", "pandas[excel]"], ours)
    assert {n for n, _, _ in chosen(both)} == {"pandas", "numpy", "numexpr", "openpyxl"}


def test_extras_of_an_installed_distribution_still_install_their_dependencies() -> None:
    ours = FakeSource(
        Route.WHEEL,
        [wheel("pandas", "2.2.3", 'numexpr; extra == "performance"'), wheel("numexpr", "2.10.0")],
    )
    result = plan("pandas[performance]", ours, installed={"pandas": "2.2.3"})
    assert chosen(result) == [("numexpr", "2.10.0", "wheel")]


def test_dependency_markers_are_evaluated_for_the_target() -> None:
    ours = FakeSource(
        Route.WHEEL,
        [
            wheel(
                "tool",
                "1.0",
                'tomli; python_version < "3.11"',
                'pywin32; sys_platform == "win32"',
                'uvloop; sys_platform == "linux"',
                "dataclasses; python_version < '3.7'",
                "json",
            ),
            wheel("uvloop", "0.21.0"),
        ],
    )
    assert {n for n, _, _ in chosen(plan("tool", ours))} == {"tool", "uvloop"}


def test_requested_stdlib_and_false_marker_are_skipped_with_notes() -> None:
    ours = FakeSource(Route.WHEEL, [wheel("numpy", "2.3.0")])
    result = plan(["numpy", "json", 'pywin32; sys_platform == "win32"'], ours)
    assert chosen(result) == [("numpy", "2.3.0", "wheel")]
    assert [s.text for s in result.skipped] == ["json", 'pywin32; sys_platform == "win32"']
    assert "standard library" in result.skipped[0].reason


def test_dependency_cycles_are_planned() -> None:
    ours = FakeSource(Route.WHEEL, [wheel("a", "1.0", "b"), wheel("b", "1.0", "a")])
    assert {n for n, _, _ in chosen(plan("a", ours))} == {"a", "b"}


def test_invalid_dependency_metadata_is_ignored_with_a_note() -> None:
    ours = FakeSource(Route.WHEEL, [wheel("odd", "1.0", "not a requirement!!")])
    result = plan("odd", ours)
    assert chosen(result) == [("odd", "1.0", "wheel")]
    assert any("invalid dependency 'not a requirement!!'" in note for note in result.notes)


# Conflicts and backtracking.


def test_backtracks_to_an_older_version_whose_dependencies_exist() -> None:
    ours = FakeSource(
        Route.WHEEL,
        [wheel("lib", "2.0", "helper>=3"), wheel("lib", "1.0", "helper"), wheel("helper", "1.0")],
    )
    assert chosen(plan("lib", ours)) == [("helper", "1.0", "wheel"), ("lib", "1.0", "wheel")]


def test_version_conflict_names_both_sides() -> None:
    ours = FakeSource(
        Route.WHEEL,
        [
            wheel("old", "1.0", "numpy<2"),
            wheel("new", "1.0", "numpy>=2"),
            wheel("numpy", "1.26.4"),
            wheel("numpy", "2.3.0"),
        ],
    )
    result = plan(["old", "new"], ours)
    assert result.steps == ()
    [problem] = result.unsatisfiable
    assert problem.reason == (
        "version conflict: these requirements on numpy cannot all be "
        "satisfied at once (available: 2.3.0, 1.26.4)"
    )
    assert "numpy<2 (needed by old 1.0)" in problem.text
    assert "numpy>=2 (needed by new 1.0)" in problem.text


def test_requested_versus_dependency_conflict() -> None:
    ours = FakeSource(
        Route.WHEEL,
        [wheel("new", "1.0", "numpy>=2"), wheel("numpy", "1.26.4"), wheel("numpy", "2.3.0")],
    )
    [problem] = plan(["numpy<2", "new"], ours).unsatisfiable
    assert "version conflict" in problem.reason and "numpy<2" in problem.text


def test_missing_dependency_says_who_needs_it() -> None:
    ours = FakeSource(Route.WHEEL, [wheel("pandas", "2.2.3", "tzdata")])
    text, reason, _ = only_problem(plan("pandas", ours, upstream_allowed=False))
    assert text == "tzdata (needed by pandas 2.2.3)"
    assert "air-gapped policy" in reason


def test_each_unsatisfiable_request_is_reported_and_the_edge_can_raise() -> None:
    ours = FakeSource(Route.WHEEL, [wheel("numpy", "2.3.0")])
    result = plan(["numpy", "nothere", "numpy<1"], ours)
    assert [u.text for u in result.unsatisfiable] == ["numpy, numpy<1", "nothere"]
    assert result.unsatisfiable[0].reason == (
        "no version of numpy matches numpy and numpy<1 (available: 2.3.0)"
    )
    with pytest.raises(ResolutionError, match="nothere"):
        raise_for_unsatisfiable(result)
    with pytest.raises(NoCandidateError, match="Cannot install 'nothere'") as caught:
        raise_for_unsatisfiable(plan("nothere", ours))
    assert caught.value.hint == "check the spelling of the project name"
    raise_for_unsatisfiable(plan("numpy", ours))  # an ok plan raises nothing


# PEP 440 pre-releases, PEP 592 yanks, Requires-Python.


def test_prereleases_only_when_asked_for() -> None:
    ours = FakeSource(Route.WHEEL, [wheel("numpy", "2.3.0"), wheel("numpy", "2.4.0rc1")])
    assert chosen(plan("numpy", ours)) == [("numpy", "2.3.0", "wheel")]
    assert chosen(plan("numpy>=2.4.0rc1", ours)) == [("numpy", "2.4.0rc1", "wheel")]
    assert chosen(plan("numpy", ours, prereleases=True)) == [("numpy", "2.4.0rc1", "wheel")]


def test_only_prereleases_is_explained() -> None:
    ours = FakeSource(Route.WHEEL, [wheel("shiny", "0.1.0b1")])
    _, reason, hint = only_problem(plan("shiny", ours))
    assert reason == "only pre-releases of shiny match (0.1.0b1)"
    assert hint == "ask for a pre-release explicitly, e.g. 'shiny>=0.1.0b1'"


def test_yanked_files_are_skipped_unless_pinned_exactly() -> None:
    ours = FakeSource(Route.WHEEL, [wheel("lib", "1.0"), wheel("lib", "1.1", yanked=True)])
    assert chosen(plan("lib", ours)) == [("lib", "1.0", "wheel")]
    assert chosen(plan("lib==1.1", ours)) == [("lib", "1.1", "wheel")]
    _, reason, _ = only_problem(plan("lib>1.0", ours))
    assert reason == "every matching file of lib is yanked"


def test_requires_python_filters_versions() -> None:
    ours = FakeSource(
        Route.WHEEL,
        [
            wheel("lib", "2.0", requires_python=">=3.13"),
            wheel("lib", "1.9", requires_python=">=3.10"),
            wheel("old", "1.0", requires_python="<3"),
        ],
    )
    assert chosen(plan("lib", ours)) == [("lib", "1.9", "wheel")]
    _, reason, _ = only_problem(plan("old", ours))
    assert "needs another Python (Requires-Python <3; this is 3.12.1)" in reason


def test_resolution_is_deterministic() -> None:
    ours = FakeSource(
        Route.WHEEL,
        [
            wheel("a", "1.0", "c", "b"),
            wheel("b", "1.0", "d"),
            wheel("c", "1.0", "d"),
            wheel("d", "1.0"),
        ],
    )
    first = plan("a", ours)
    assert all(plan("a", ours) == first for _ in range(3))
    order = [s.candidate.name for s in first.steps]
    assert order[0] == "d" and order[-1] == "a"


# Reading ahead in parallel.


class MeetingSource(FakeSource):
    """Pages of ``b`` and ``c`` are only served once both are being read at the same time."""

    def __init__(self, candidates: Iterable[Candidate]) -> None:
        super().__init__(Route.WHEEL, candidates)
        self.meeting = threading.Barrier(2, timeout=30)

    def candidates(self, name: NormalizedName) -> Sequence[Candidate]:
        if name in ("b", "c"):
            self.meeting.wait()  # raises BrokenBarrierError if read one after the other
        return super().candidates(name)


def test_jobs_read_dependency_pages_in_parallel() -> None:
    source = MeetingSource([wheel("a", "1.0", "b", "c"), wheel("b", "1.0"), wheel("c", "1.0")])
    result = resolve(
        parse_requirements("a"),
        sources=[source],
        installed={},
        environment=MUSL,
        policy=PlanPolicy(),
        jobs=2,
    )
    assert {n for n, _, _ in chosen(result)} == {"a", "b", "c"}


def test_parallel_plans_equal_sequential_plans() -> None:
    apks = FakeSource(Route.APK, [apk("pandas", "2.2.3", "numpy>=1.26"), apk("numpy", "2.2.6")])
    ours = FakeSource(
        Route.WHEEL,
        [
            wheel("pandas", "2.2.3", "numpy>=1.26", "python-dateutil", 'numexpr; extra == "perf"'),
            wheel("numpy", "2.3.0"),
            wheel("numexpr", "2.10.0", "numpy"),
            wheel("lib", "2.0", "x>=3"),
            wheel("lib", "1.0"),
        ],
    )
    pypi = FakeSource(
        Route.UPSTREAM,
        [
            upstream("python-dateutil", "2.9.0", "six>=1.5"),
            upstream("six", "1.17.0"),
            upstream("x", "1.0"),
        ],
    )
    for requirements in (["pandas[perf]", "lib"], ["pandas", "nothere"], ["lib", "numpy<2"]):
        for environment in (MUSL, MUSL_NO_APK):
            results = [
                resolve(
                    parse_requirements(requirements),
                    sources=[apks, ours, pypi],
                    installed={canonicalize_name("six"): Version("1.16.0")},
                    environment=environment,
                    policy=PlanPolicy(),
                    jobs=jobs,
                )
                for jobs in (1, 4)
            ]
            assert results[0] == results[1], requirements


def test_a_source_error_in_a_reading_thread_reaches_the_caller() -> None:
    class Down(FakeSource):
        def candidates(self, name: NormalizedName) -> Sequence[Candidate]:
            raise RepositoryError(f"Cannot read the package index at {self.location}{name}/")

    with pytest.raises(RepositoryError, match="Cannot read the package index"):
        resolve(
            parse_requirements(["a", "b"]),
            sources=[Down(Route.WHEEL, [])],
            installed={},
            environment=MUSL,
            policy=PlanPolicy(),
            jobs=3,
        )


def test_project_names_are_canonical() -> None:
    pypi = FakeSource(Route.UPSTREAM, [upstream("python-dateutil", "2.9.0")])
    result = plan("Python_Dateutil>=2", pypi)
    assert chosen(result) == [("python-dateutil", "2.9.0", "upstream")]
    assert result.steps[0].reason == "requested"


# Slower routes are read only when needed.


def test_upstream_is_not_asked_about_what_our_repository_has() -> None:
    ours = FakeSource(
        Route.WHEEL, [wheel("pandas", "2.2.3", "numpy>=1.26"), wheel("numpy", "2.3.0")]
    )
    pypi = FakeSource(Route.UPSTREAM, [upstream("numpy", "2.3.5"), upstream("pandas", "2.3.0")])
    assert chosen(plan("pandas", ours, pypi)) == [
        ("numpy", "2.3.0", "wheel"),
        ("pandas", "2.2.3", "wheel"),
    ]
    assert pypi.asked == []


def test_upstream_is_asked_when_our_files_do_not_satisfy() -> None:
    ours = FakeSource(Route.WHEEL, [wheel("numpy", "1.26.4"), wheel("six", "1.17.0")])
    pypi = FakeSource(Route.UPSTREAM, [upstream("numpy", "2.3.5")])
    assert chosen(plan(["numpy>=2", "six"], ours, pypi)) == [
        ("numpy", "2.3.5", "upstream"),
        ("six", "1.17.0", "wheel"),
    ]
    assert pypi.asked == ["numpy"]


def test_upstream_is_the_fallback_when_our_versions_conflict() -> None:
    ours = FakeSource(Route.WHEEL, [wheel("app", "1.0", "numpy>=2"), wheel("numpy", "1.26.4")])
    pypi = FakeSource(Route.UPSTREAM, [upstream("numpy", "2.3.5")])
    assert chosen(plan("app", ours, pypi)) == [
        ("numpy", "2.3.5", "upstream"),
        ("app", "1.0", "wheel"),
    ]


def test_reading_ahead_also_stops_at_the_first_route_that_has_the_project() -> None:
    ours = FakeSource(Route.WHEEL, [wheel("a", "1.0", "b", "c"), wheel("b", "1.0")])
    pypi = FakeSource(Route.UPSTREAM, [upstream("b", "2.0"), upstream("c", "1.0")])
    result = resolve(
        parse_requirements("a"),
        sources=[ours, pypi],
        installed={},
        environment=MUSL,
        policy=PlanPolicy(),
        jobs=3,
    )
    assert chosen(result) == [
        ("b", "1.0", "wheel"),
        ("c", "1.0", "upstream"),
        ("a", "1.0", "wheel"),
    ]
    assert sorted(pypi.asked) == ["c"]


def test_an_unknown_extra_is_noted() -> None:
    ours = FakeSource(Route.WHEEL, [wheel("pandas", "2.2.3", 'numexpr; extra == "performance"')])
    result = plan("pandas[perfomance]", ours)
    assert chosen(result) == [("pandas", "2.2.3", "wheel")]
    assert "pandas 2.2.3 has no extra 'perfomance'; it was ignored" in result.notes


def test_extras_of_an_apk_are_learned_from_the_wheel_of_the_same_version() -> None:
    apks = FakeSource(Route.APK, [apk("pandas", "2.2.3", "numpy"), apk("numpy", "2.2.6")])
    ours = FakeSource(
        Route.WHEEL,
        [
            wheel("pandas", "2.2.3", "numpy>=1.26", 'numexpr>=2.8; extra == "performance"'),
            wheel("numexpr", "2.10.0"),
        ],
    )
    result = plan("pandas[performance]", apks, ours)
    assert sorted(chosen(result)) == [
        ("numexpr", "2.10.0", "wheel"),
        ("numpy", "2.2.6", "apk"),
        ("pandas", "2.2.3", "apk"),
    ]
    assert result.notes == ()
    # Without such a wheel the extras cannot be known: the apk still installs, with a note.
    result = plan("pandas[performance]", apks)
    assert sorted(chosen(result)) == [("numpy", "2.2.6", "apk"), ("pandas", "2.2.3", "apk")]
    assert result.notes == (
        "the dependencies of pandas 2.2.3's extras (performance) are unknown and not planned",
    )


def test_order_is_stable_whatever_the_hash_seed() -> None:
    # resolvelib keeps its graph in sets; the plan must not inherit their order.
    ours = FakeSource(
        Route.WHEEL,
        [
            wheel("app", "1.0", "zeta", "mu", "beta", "kappa"),
            *(wheel(name, "1.0") for name in ("zeta", "mu", "beta", "kappa", "other")),
        ],
    )
    result = plan(["other", "app"], ours)
    assert [s.candidate.name for s in result.steps] == [
        "other",
        "beta",
        "kappa",
        "mu",
        "zeta",
        "app",
    ]
    shared = FakeSource(
        Route.WHEEL,
        [
            wheel("x", "1.0", "lib"),
            wheel("w", "1.0", "lib"),
            wheel("y", "1.0", "lib"),
            wheel("lib", "1.0"),
        ],
    )
    reasons = {s.candidate.name: s.reason for s in plan(["y", "x", "w"], shared).steps}
    assert reasons["lib"] == "dependency of w, x, y"


# Our own names: never taken from someone else's project (own_names.py).


def test_the_unrelated_pypi_project_named_ipydeps_is_refused_by_name() -> None:
    with pytest.raises(InvalidRequirementError) as caught:
        parse_requirements(["ipydeps", "numpy"])
    assert set(caught.value.problems) == {"ipydeps"}
    assert "unrelated project" in caught.value.problems["ipydeps"]
    assert "ipydeps-client" in caught.value.problems["ipydeps"]


def test_a_dependency_on_the_unrelated_ipydeps_is_never_planned() -> None:
    ours = FakeSource(Route.WHEEL, [wheel("helper", "1.0", "ipydeps>=0.3")])
    pypi = FakeSource(Route.UPSTREAM, [upstream("ipydeps", "0.3.1")])
    result = plan("helper", ours, pypi)
    assert not result.ok and result.steps == ()
    [problem] = result.unsatisfiable
    assert problem.text.startswith("ipydeps>=0.3 (needed by helper 1.0)")
    assert any("would replace this installer" in note for note in result.notes)


def test_our_own_distributions_come_from_our_repository_never_upstream() -> None:
    ours = FakeSource(Route.WHEEL, [wheel("ipydeps-client", "0.1.0")])
    pypi = FakeSource(
        Route.UPSTREAM, [upstream("ipydeps-client", "9.0"), upstream("ipydeps-repo", "9.0")]
    )
    assert chosen(plan("ipydeps-client", ours, pypi)) == [("ipydeps-client", "0.1.0", "wheel")]
    result = plan("ipydeps-repo", ours, pypi)
    assert not result.ok and result.steps == ()
    assert any("taken from our repository only, not upstream" in note for note in result.notes)
