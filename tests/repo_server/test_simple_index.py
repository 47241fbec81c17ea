"""PEP 691 content negotiation and the rendered PEP 503/691 pages, without a server."""

from __future__ import annotations

import json

import pytest
from ipydeps_repo.store.pages import (
    API_VERSION,
    Project,
    WheelFile,
    render_project_html,
    render_project_json,
    render_root_html,
    render_root_json,
)
from ipydeps_repo.web.negotiation import choose_format

from ipydeps.formats.wire import SIMPLE_HTML as HTML_TYPE
from ipydeps.formats.wire import SIMPLE_JSON as JSON_TYPE

PIP_ACCEPT = f"{JSON_TYPE}, {HTML_TYPE}; q=0.1, text/html; q=0.01"


@pytest.mark.parametrize(
    ("accept", "kind", "content_type"),
    [
        (None, "html", "text/html"),
        ("", "html", "text/html"),
        ("*/*", "html", "text/html"),
        (PIP_ACCEPT, "json", JSON_TYPE),
        (f"text/html, {JSON_TYPE}", "html", "text/html"),  # equal q: header order wins
        (f"text/html;q=0.5, {JSON_TYPE};q=0.6", "json", JSON_TYPE),
        (f"{JSON_TYPE};q=0", "html", "text/html"),  # q=0 means "not acceptable"
        ("application/vnd.pypi.simple.latest+html", "html", HTML_TYPE),
        ("application/vnd.pypi.simple.v1+JSON", "json", JSON_TYPE),
        (f"{JSON_TYPE};q=bogus, text/html;q=0.1", "html", "text/html"),
    ],
)
def test_choose_format(accept: str | None, kind: str, content_type: str) -> None:
    chosen = choose_format(accept)
    assert (chosen.kind, chosen.content_type) == (kind, content_type)


def test_format_override_beats_accept() -> None:
    assert choose_format("text/html", "json").kind == "json"
    assert choose_format(PIP_ACCEPT, "html").kind == "html"


def _project() -> Project:
    return Project(
        name="demo",
        files=(
            WheelFile(
                "demo-1.10-py3-none-any.whl",
                "../../files/demo/demo-1.10-py3-none-any.whl",
                "1.10",
                "b" * 64,
                20,
                "d" * 64,
            ),
            WheelFile(
                "demo-1.9-py3-none-any.whl",
                "../../files/demo/demo-1.9-py3-none-any.whl",
                "1.9",
                "a" * 64,
                10,
                "c" * 64,
                requires_python="<4,>=3.8",
                upload_time="2024-01-02T03:04:05Z",
            ),
        ),
    )


def test_project_json_is_pep_691_v1_1() -> None:
    page = json.loads(render_project_json(_project()))
    assert page["meta"] == {"api-version": "1.1"}
    assert page["versions"] == ["1.9", "1.10"]  # version order, not text order
    first = page["files"][0]
    assert first == {
        "filename": "demo-1.9-py3-none-any.whl",
        "url": "../../files/demo/demo-1.9-py3-none-any.whl",
        "hashes": {"sha256": "a" * 64},
        "size": 10,
        "core-metadata": {"sha256": "c" * 64},
        "dist-info-metadata": {"sha256": "c" * 64},
        "yanked": False,
        "requires-python": "<4,>=3.8",
        "upload-time": "2024-01-02T03:04:05Z",
    }
    assert "requires-python" not in page["files"][1]


def test_project_html_escapes_and_carries_hashes() -> None:
    page = render_project_html(_project())
    assert 'data-requires-python="&lt;4,&gt;=3.8"' in page
    assert f'href="../../files/demo/demo-1.9-py3-none-any.whl#sha256={"a" * 64}"' in page
    assert f'data-core-metadata="sha256={"c" * 64}"' in page
    assert '<meta name="pypi:repository-version" content="1.1">' in page


def test_root_html_escapes_names() -> None:
    page = render_root_html(["b", "a<script>"])
    assert '<a href="a&lt;script&gt;/">a&lt;script&gt;</a>' in page
    assert page.index("a&lt;script") < page.index(">b<")


@pytest.mark.parametrize("names", [[], ["one"], ["b-two", "a", 'quo"te', "unicodé", "x\\y"]])
def test_root_json_is_the_json_module_s_text(names: list[str]) -> None:
    document = {
        "meta": {"api-version": API_VERSION},
        "projects": [{"name": name} for name in sorted(names)],
    }
    assert render_root_json(names) == json.dumps(document, indent=1) + "\n"
