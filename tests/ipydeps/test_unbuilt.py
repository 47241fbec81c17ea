"""The plan says in one line that no prebuilt build exists here, and what to do (issue 21).

The pure planner, on a simulated musl target without a compiler: no musl harness needed.
"""

from __future__ import annotations

from ipydeps.advice import command_flags, pip_flags
from ipydeps.environment_model import TargetEnvironment
from ipydeps.models import Route, UnbuiltBuild
from ipydeps.plan_model import Plan
from tests.ipydeps.test_plan import FakeSource, apk, plan, sdist, upstream, wheel

MUSL_RUNTIME = TargetEnvironment.simulated(
    python="3.12.4", platforms=["musllinux_1_2_x86_64"], compiler_available=False
)
GLIBC = "cp312-cp312-manylinux_2_17_x86_64"


def sklearn_upstream() -> FakeSource:
    # scikit-learn on PyPI: glibc wheels and an sdist, never a musllinux wheel.
    return FakeSource(
        Route.UPSTREAM,
        [
            upstream("scikit-learn", "1.9.1", tag=GLIBC),
            upstream("scikit-learn", "1.8.0", tag=GLIBC),
            sdist("scikit-learn", "1.9.1"),
            sdist("scikit-learn", "1.8.0"),
        ],
    )


def only(result: Plan) -> tuple[str, str | None, UnbuiltBuild | None]:
    [problem] = result.unsatisfiable
    assert result.steps == ()
    return problem.reason, problem.hint, problem.unbuilt


def test_wheels_for_other_platforms_only_say_it_in_one_line() -> None:
    reason, hint, unbuilt = only(plan("scikit-learn", sklearn_upstream(), environment=MUSL_RUNTIME))
    assert "\n" not in reason
    assert reason.startswith(
        "no prebuilt build of scikit-learn 1.9.1 for musllinux_1_2_x86_64 / cp3.12; "
        "this runtime has no compiler"
    )
    assert "our repository has no build of scikit-learn" in reason
    assert reason.endswith("build request: none")
    assert hint is not None and "ipydeps.request_build('scikit-learn')" in str(hint)
    # A terminal and the pip shim name the flag they take instead.
    for wording in (command_flags, pip_flags):
        worded = hint.worded(wording)
        assert "; or --request-build asks our repository's farm to build it" in worded
        assert "ipydeps.request_build" not in worded
    assert unbuilt == UnbuiltBuild("scikit-learn", "1.9.1", "musllinux_1_2_x86_64", "3.12")


def test_a_source_only_project_names_the_compiler_and_the_request() -> None:
    pypi = FakeSource(Route.UPSTREAM, [sdist("ecos", "2.0.14"), sdist("ecos", "2.0.13")])
    reason, hint, unbuilt = only(plan("ecos<2.0.14", pypi, environment=MUSL_RUNTIME))
    assert reason.startswith(
        "no prebuilt build of ecos 2.0.13 for musllinux_1_2_x86_64 / cp3.12; "
        "this runtime has no compiler (only a source distribution of ecos exists"
    )
    assert unbuilt is not None and unbuilt.version == "2.0.13"
    assert hint is not None and "publish a wheel" in str(hint)


def test_our_other_version_is_offered_when_the_wanted_one_is_unbuilt() -> None:
    # The farm built 1.8.0 for musl; the notebook pins 1.9.1, which upstream has unbuilt.
    ours = FakeSource(
        Route.WHEEL, [wheel("scikit-learn", "1.8.0", tag="cp312-cp312-musllinux_1_2_x86_64")]
    )
    reason, _, unbuilt = only(
        plan("scikit-learn==1.9.1", ours, sklearn_upstream(), environment=MUSL_RUNTIME)
    )
    assert reason.startswith("no prebuilt build of scikit-learn 1.9.1 for musllinux_1_2_x86_64")
    assert "our repository offers scikit-learn 1.8.0 for this platform" in reason
    assert unbuilt is not None and unbuilt.version == "1.9.1"


def test_our_build_for_another_python_is_named() -> None:
    ours = FakeSource(
        Route.WHEEL, [wheel("scikit-learn", "1.9.1", tag="cp311-cp311-musllinux_1_2_x86_64")]
    )
    reason, _, _ = only(plan("scikit-learn", ours, sklearn_upstream(), environment=MUSL_RUNTIME))
    assert "our repository has scikit-learn only for cp311-cp311-musllinux_1_2_x86_64 (1.9.1)" in (
        reason
    )


def test_a_compiler_or_an_unknown_target_is_said_as_such() -> None:
    with_cc = TargetEnvironment.simulated(python="3.12.4", compiler_available=True)
    reason, _, _ = only(plan("scikit-learn", sklearn_upstream(), environment=with_cc))
    assert "this machine has a compiler, but ipydeps installs prebuilt packages only" in reason
    unknown = TargetEnvironment.simulated(python="3.12.4")
    reason, _, _ = only(plan("scikit-learn", sklearn_upstream(), environment=unknown))
    assert "compiler" not in reason and "ipydeps installs prebuilt packages only" in reason


def test_no_source_upstream_is_said() -> None:
    pypi = FakeSource(Route.UPSTREAM, [upstream("torch", "2.9.0", tag=GLIBC)])
    reason, _, _ = only(plan("torch", pypi, environment=MUSL_RUNTIME))
    assert "upstream has no source to build from" in reason


def test_other_problems_name_no_missing_build() -> None:
    # An apk for another Python, or a version that exists nowhere, is not a missing build.
    with_apk = TargetEnvironment.simulated(python="3.12.4", apk_available=True)
    ours = FakeSource(Route.APK, [apk("numpy", "2.3.5", python="3.11")])
    reason, _, unbuilt = only(plan("numpy", ours, environment=with_apk))
    assert unbuilt is None and "apks built for Python 3.11" in reason
    pypi = FakeSource(Route.UPSTREAM, [upstream("attrs", "25.1.0")])
    reason, _, unbuilt = only(plan("attrs>=30", pypi, environment=MUSL_RUNTIME))
    assert unbuilt is None and reason.startswith("no version of attrs matches")


def test_the_platform_named_is_a_standard_one() -> None:
    # packaging lists linux_x86_64 (wheels built on this machine) first on glibc.
    here = TargetEnvironment.simulated(platforms=["linux_x86_64", "manylinux_2_36_x86_64"])
    assert here.platform_tag == "manylinux_2_36_x86_64"
    assert MUSL_RUNTIME.platform_tag == "musllinux_1_2_x86_64"
