"""Plans shown to people: a readable text table and escaped HTML for notebooks."""

from __future__ import annotations

import dataclasses
from html.parser import HTMLParser

from packaging.version import Version

from ipydeps.advice import UPGRADE, UPSTREAM_ALLOW, Hint, command_flags
from ipydeps.models import Candidate, Route, Skipped, Step, StepAction, Unsatisfiable
from ipydeps.plan_model import Plan
from ipydeps.render import format_size, render_html, render_text

NUMPY_APK = Candidate(
    name="numpy",
    version=Version("2.2.6"),
    route=Route.APK,  # type: ignore[arg-type]
    url="http://127.0.0.1:8080/alpine/v3.22/sci/x86_64/py3-numpy-2.2.6-r0.apk",
    filename="py3-numpy-2.2.6-r0.apk",
    size=5_432_100,
    apk_name="py3-numpy",
    apk_version="2.2.6-r0",
)
SIX = Candidate(
    name="six",
    version=Version("1.17.0"),
    route=Route.UPSTREAM,  # type: ignore[arg-type]
    url="https://files.pythonhosted.org/packages/six-1.17.0-py2.py3-none-any.whl",
    filename="six-1.17.0-py2.py3-none-any.whl",
    size=11050,
)
PLAN = Plan(
    steps=(
        Step(NUMPY_APK, StepAction.UPGRADE, "requested", replaces=Version("1.26.4")),
        Step(SIX, StepAction.INSTALL, "dependency of python-dateutil"),
    ),
    skipped=(Skipped("json", "json is part of Python's standard library"),),
    notes=("apk cannot be used here, so apks were not considered",),
)


def test_text_table_lists_package_version_route_source_download_reason() -> None:
    lines = render_text(PLAN).splitlines()
    assert lines[0].split() == ["package", "version", "route", "source", "download", "reason"]
    assert set(lines[1]) == {"-", " "}
    assert lines[2].split() == [
        "py3-numpy",
        "2.2.6-r0",
        "(replaces",
        "1.26.4)",
        "upgrade",
        "apk",
        "127.0.0.1:8080",
        "5.4",
        "MB",
        "requested",
    ]
    assert lines[3].split() == [
        "six",
        "1.17.0",
        "install",
        "upstream",
        "files.pythonhosted.org",
        "11.1",
        "kB",
        "dependency",
        "of",
        "python-dateutil",
    ]
    # Columns line up: every row starts its "route" column at the same place.
    assert (
        len(
            {
                line.index(word)
                for line, word in zip(lines[2:4], ["upgrade", "install"], strict=True)
            }
        )
        == 1
    )
    assert "skipped json: json is part of Python's standard library" in lines
    assert "note: apk cannot be used here, so apks were not considered" in lines


def test_text_for_empty_and_failed_plans() -> None:
    assert render_text(Plan()) == "Nothing to install."
    failed = Plan(
        unsatisfiable=(
            Unsatisfiable(
                "requests",
                "requests is not in our repository (http://127.0.0.1:8080/), "
                "and the upstream index is off (air-gapped policy: upstream is off)",
                Hint.of("allow upstream"),
            ),
            Unsatisfiable("pyfoo", "only a source distribution of pyfoo exists"),
        )
    )
    text = render_text(failed)
    assert "Nothing to install." not in text
    assert text.splitlines() == [
        "Cannot install (nothing will be installed):",
        "  requests: requests is not in our repository (http://127.0.0.1:8080/), and the upstream "
        "index is off (air-gapped policy: upstream is off)",
        "    hint: allow upstream",
        "  pyfoo: only a source distribution of pyfoo exists",
    ]


def test_hints_name_settings_in_the_words_of_the_edge_that_shows_them() -> None:
    plan = Plan(
        skipped=(
            Skipped(
                "numpy", "numpy 2.4.6 is already installed", Hint.of(UPGRADE, " looks for newer")
            ),
        ),
        unsatisfiable=(
            Unsatisfiable(
                "nope",
                "nope is not in our repository",
                Hint.of("allow upstream (", UPSTREAM_ALLOW, ") if this setup may reach it"),
            ),
        ),
    )
    # The notebook (and ipydeps.pip() at a terminal) reads the keywords of ipydeps.pip().
    assert render_text(plan).splitlines() == [
        "skipped numpy: numpy 2.4.6 is already installed (upgrade=True looks for newer)",
        "Cannot install (nothing will be installed):",
        "  nope: nope is not in our repository",
        '    hint: allow upstream (upstream="allow") if this setup may reach it',
    ]
    html = render_html(plan)
    assert "upgrade=True looks for newer" in html
    assert "allow upstream (upstream=&quot;allow&quot;)" in html
    # python -m ipydeps reads its flags, and says what cannot be installed as its error.
    assert render_text(plan, wording=command_flags, problems=False).splitlines() == [
        "skipped numpy: numpy 2.4.6 is already installed (-U looks for newer)",
    ]


class _TextAndTags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_escapes_everything_that_came_from_an_index() -> None:
    hostile = Candidate(
        name="evil",
        version=Version("1.0"),
        route=Route.UPSTREAM,  # type: ignore[arg-type]
        url="http://127.0.0.1/<script>alert(1)</script>.whl",
        filename="evil-1.0-py3-none-any.whl",
    )
    plan = Plan(
        steps=(Step(hostile, StepAction.INSTALL, "dependency of <img src=x onerror=alert(1)>"),),
        skipped=(Skipped("<b>x</b>", "reason & <i>more</i>"),),
        unsatisfiable=(Unsatisfiable("a<b", "why <script>", Hint.of("hint <svg>")),),
        notes=("note <iframe>",),
    )
    html = render_html(plan)
    parser = _TextAndTags()
    parser.feed(html)
    assert not {"script", "img", "b", "i", "svg", "iframe"} & set(parser.tags)
    text = "".join(parser.text)
    for shown in [
        "dependency of <img src=x onerror=alert(1)>",
        "<b>x</b>",
        "reason & <i>more</i>",
        "why <script>",
        "hint: hint <svg>",
        "note: note <iframe>",
    ]:
        assert shown in text


def test_html_table_has_one_row_per_step() -> None:
    parser = _TextAndTags()
    parser.feed(render_html(PLAN))
    assert parser.tags.count("tr") == 3  # header + two steps
    assert parser.tags.count("th") == 6
    assert "py3-numpy" in parser.text and "2.2.6-r0 (replaces 1.26.4)" in parser.text
    assert "Nothing to install." in "".join(_parsed(render_html(Plan())))


def _parsed(html: str) -> list[str]:
    parser = _TextAndTags()
    parser.feed(html)
    return parser.text


def test_format_size() -> None:
    assert format_size(None) == "?"
    assert format_size(999) == "999 B"
    assert format_size(11050) == "11.1 kB"
    assert format_size(5_432_100) == "5.4 MB"
    assert format_size(3_000_000_000) == "3.0 GB"


def test_plan_displays_itself_in_terminals_and_notebooks() -> None:
    assert str(PLAN) == render_text(PLAN)
    assert PLAN._repr_html_() == render_html(PLAN)


def test_apk_dependencies_are_rows_above_the_apk_steps_and_escaped_in_html() -> None:
    from ipydeps.apkclosure import ApkAddition
    from ipydeps.formats.apkindex import ApkIndexRecord

    numpy = ApkIndexRecord(
        checksum="Q1" + "A" * 27 + "=", name="py3-numpy", version="2.5.5-r0", size=9_100_000
    )
    plan = Plan(
        steps=(
            Step(SIX, StepAction.INSTALL, "requested"),
            Step(NUMPY_APK, StepAction.INSTALL, "requested"),
        ),
        apk_dependencies=(
            ApkAddition(
                "py3-numpy>=1.26", "py3-pandas", numpy, "http://127.0.0.1:8080/alpine/v3.22/sci"
            ),
            ApkAddition("so:<libopenblas>.so.3", "py3-numpy"),
        ),
    )
    lines = render_text(plan).splitlines()
    assert lines[2].split()[0] == "six"
    assert lines[3].split() == [
        "py3-numpy",
        "2.5.5-r0",
        "install",
        "apk",
        "127.0.0.1:8080",
        "9.1",
        "MB",
        "apk",
        "dependency",
        "of",
        "py3-pandas",
        "(py3-numpy>=1.26)",
    ]
    assert lines[4].split() == [
        "so:<libopenblas>.so.3",
        "?",
        "install",
        "apk",
        "system",
        "repositories",
        "?",
        "apk",
        "dependency",
        "of",
        "py3-numpy",
    ]
    assert lines[5].split()[0] == "py3-numpy"
    html = render_html(plan)
    assert "so:&lt;libopenblas&gt;.so.3" in html and "<libopenblas>" not in html


def test_dry_run_summary_counts_what_apk_adds() -> None:
    from ipydeps.api import Installed, Result
    from ipydeps.apkclosure import ApkAddition

    plan = Plan(
        steps=(Step(NUMPY_APK, StepAction.INSTALL, "requested"),),
        apk_dependencies=(ApkAddition("openblas", "py3-numpy"),),
    )
    assert Result(plan, (), (), True, 0.1).summary() == (
        "Dry run: 2 package(s) would be installed; nothing was changed"
    )
    installed = Installed(
        name="numpy",
        version="2.2.6",
        route="apk",
        source="127.0.0.1:8080",
        action="install",
        replaced=None,
        bytes=1000,
        seconds=0.5,
    )
    assert (
        Result(plan, (installed,), (), False, 0.5)
        .summary()
        .endswith("in 0.50 s; apk also added openblas")
    )


def test_the_download_column_names_a_stored_copy_beside_the_wheel() -> None:
    from ipydeps.models import StoredCopy

    numpy = Candidate(
        name="numpy",
        version=Version("2.4.6"),
        route=Route.WHEEL,  # type: ignore[arg-type]
        url="http://127.0.0.1:8080/files/numpy/numpy-2.4.6-cp311-cp311-musllinux_1_2_x86_64.whl",
        filename="numpy-2.4.6-cp311-cp311-musllinux_1_2_x86_64.whl",
        size=17_200_000,
        stored=StoredCopy("http://127.0.0.1:8080/files/numpy/x.whl.stored", "0" * 64, 56_000_000),
    )
    plan = Plan(
        steps=(
            Step(numpy, StepAction.INSTALL, "requested"),
            Step(SIX, StepAction.INSTALL, "requested"),
        )
    )
    lines = render_text(plan).splitlines()
    assert "download" in lines[0].split()
    assert "17.2 MB (stored copy 56.0 MB)" in lines[2]
    assert "11.1 kB" in lines[3] and "stored copy" not in lines[3]
    assert "17.2 MB (stored copy 56.0 MB)" in render_html(plan)


def test_a_plan_whose_error_is_raised_leaves_its_problems_to_the_error() -> None:
    plan = Plan(
        steps=(Step(SIX, StepAction.INSTALL, "dependency of python-dateutil"),),
        unsatisfiable=(
            Unsatisfiable("nope-pkg", "nope-pkg is not in our repository", Hint.of("try -U")),
        ),
    )
    assert "Cannot install" in render_text(plan) and "Cannot install" in render_html(plan)
    for shown in (render_text(plan, problems=False), render_html(plan, problems=False)):
        assert "six" in shown
        assert "Cannot install" not in shown and "nope-pkg" not in shown


def test_the_result_names_what_was_downloaded_and_what_is_on_disk() -> None:
    from ipydeps.api import Installed, Result

    installed = Installed(
        name="numpy",
        version="2.4.5",
        route="wheel",
        source="127.0.0.1:8080",
        action="downgrade",
        replaced="2.4.6",
        bytes=56_000_000,
        seconds=0.5,
        stored_copy=True,
        on_disk=55_900_000,
    )
    result = Result(Plan(steps=()), (installed,), (), False, 0.7, ("a <b>warning</b>",))
    assert result.summary() == (
        "Installed numpy 2.4.5 (wheel from 127.0.0.1:8080) "
        "(downloaded 56.0 MB, 55.9 MB on disk) in 0.70 s"
    )
    header, row = repr(result).splitlines()[1:3]
    assert header.split() == [
        "package",
        "version",
        "action",
        "route",
        "from",
        "downloaded",
        "on",
        "disk",
        "time",
    ]
    assert row.split() == [
        "numpy", "2.4.5", "downgrade", "from", "2.4.6", "wheel", "127.0.0.1:8080", "(stored",
        "copy)", "56.0", "MB", "55.9", "MB", "0.50", "s",
    ]  # fmt: skip
    assert repr(result).splitlines()[-1] == "  WARNING: a <b>warning</b>"
    html = result._repr_html_()
    assert "<th>downloaded</th><th>on disk</th>" in html
    # What an apk takes on disk is not known: no total that would leave it out.
    apk = dataclasses.replace(installed, name="py3-x", route="apk", on_disk=None)
    both = Result(Plan(steps=()), (installed, apk), (), False, 0.7)
    assert "(downloaded 112.0 MB) in 0.70 s" in both.summary()
    assert repr(both).splitlines()[3].split()[-3:] == ["?", "0.50", "s"]
    assert "a &lt;b&gt;warning&lt;/b&gt;" in html and "<b>warning</b>" not in html
