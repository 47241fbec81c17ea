"""Among files of one version, the planner takes the highest PEP 427 build tag, as pip and uv do.

A mirror (``ipydeps-repo mirror``) lists upstream's file beside its optimized variant
``<name>-<version>-1ipydeps-<tags>.whl``; whatever order the page lists them in, the
variant (with its stored copy) is what gets installed, and a better platform tag still
beats a build tag.
"""

from __future__ import annotations

import dataclasses

from ipydeps.formats.wheel import build_tag
from ipydeps.models import Candidate, Route
from tests.ipydeps.test_plan import FakeSource, plan, wheel


def tagged(candidate: Candidate, build: str) -> Candidate:
    parts = candidate.filename.removesuffix(".whl").split("-")
    filename = "-".join([*parts[:2], build, *parts[2:]]) + ".whl"
    return dataclasses.replace(
        candidate, filename=filename, url=candidate.url.replace(candidate.filename, filename)
    )


def test_build_tags_compare_as_number_then_rest() -> None:
    assert build_tag("six-1.0-py3-none-any.whl") == ()
    assert build_tag("six-1.0-1ipydeps-py3-none-any.whl") == (1, "ipydeps")
    assert (
        ()
        < build_tag("six-1.0-1-py3-none-any.whl")
        < (1, "ipydeps")
        < build_tag("six-1.0-2-py3-none-any.whl")
    )


def test_the_optimized_variant_wins_whatever_the_page_order() -> None:
    upstream_file = wheel("beta", "2.0")
    variant = tagged(upstream_file, "1ipydeps")
    for order in ([upstream_file, variant], [variant, upstream_file]):
        done = plan(["beta"], FakeSource(Route.WHEEL, [wheel("beta", "1.0"), *order]))
        assert [step.candidate.filename for step in done.steps] == [variant.filename]


def test_a_better_platform_tag_beats_a_build_tag() -> None:
    musl = wheel("gamma", "1.0", tag="cp312-cp312-musllinux_1_2_x86_64")
    pure = tagged(wheel("gamma", "1.0"), "1ipydeps")
    done = plan(["gamma"], FakeSource(Route.WHEEL, [pure, musl]))
    assert [step.candidate.filename for step in done.steps] == [musl.filename]
