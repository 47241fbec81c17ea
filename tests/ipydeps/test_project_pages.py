"""Our repository's pages from hosts that do not negotiate: the JSON page by its file name.

Scripted loopback hosts stand for each kind: one that always answers JSON (as a negotiating
server answers ipydeps), a static host of a current tree (HTML at the folder URL,
``index.json`` beside it), a static host of an old tree (no ``index.json``), S3 refusing a
missing key with 403, and a host that answers every URL with the same HTML page. The real
server and nginx, negotiating and static, are in tests/repo_server/test_nginx_reads.py.
"""

from __future__ import annotations

import json

from packaging.utils import canonicalize_name

from ipydeps.fetch import HttpFetcher, RetryPolicy
from ipydeps.models import Candidate
from ipydeps.sources import RepositorySource, UpstreamSource
from tests.support.loopback import Scripted, scripted_server

FETCHER = HttpFetcher(retry=RetryPolicy(attempts=1, initial_delay=0.0, timeout=30.0))
WHEEL_SHA = "a" * 64
STORED_SHA = "b" * 64


def json_page(name: str) -> Scripted:
    wheel = f"{name}-1.0-py3-none-any.whl"
    page = {
        "meta": {"api-version": "1.1"},
        "name": name,
        "files": [
            {
                "filename": wheel,
                "url": f"../../files/{name}/{wheel}",
                "hashes": {"sha256": WHEEL_SHA},
                "size": 100,
                "_ipydeps-stored": {
                    "url": f"../../files/{name}/{wheel}.stored",
                    "hashes": {"sha256": STORED_SHA},
                    "size": 200,
                },
            }
        ],
    }
    return Scripted(body=json.dumps(page).encode(), content_type="application/json")


def html_page(name: str) -> Scripted:
    wheel = f"{name}-1.0-py3-none-any.whl"
    body = f'<a href="../../files/{name}/{wheel}#sha256={WHEEL_SHA}">{wheel}</a>'
    return Scripted(body=body.encode(), content_type="text/html")


def only(candidates: object) -> Candidate:
    [candidate] = list(candidates)  # type: ignore[call-overload]
    assert isinstance(candidate, Candidate)
    return candidate


def test_a_host_that_answers_json_gets_one_request_a_project() -> None:
    routes = {"/simple/alpha/": json_page("alpha"), "/simple/beta/": json_page("beta")}
    with scripted_server(routes=routes) as host:
        source = RepositorySource(host.url, FETCHER)
        alpha = only(source.candidates(canonicalize_name("alpha")))
        only(source.candidates(canonicalize_name("beta")))
        assert list(source.candidates(canonicalize_name("missing"))) == []
    assert host.requests == ["/simple/alpha/", "/simple/beta/", "/simple/missing/"]
    assert alpha.stored is not None


def test_a_static_host_of_a_current_tree_is_read_by_index_json() -> None:
    routes = {
        "/simple/alpha/": html_page("alpha"),
        "/simple/alpha/index.json": json_page("alpha"),
        "/simple/beta/": html_page("beta"),
        "/simple/beta/index.json": json_page("beta"),
    }
    with scripted_server(routes=routes) as host:
        source = RepositorySource(host.url, FETCHER)
        alpha = only(source.candidates(canonicalize_name("alpha")))
        beta = only(source.candidates(canonicalize_name("beta")))
        assert list(source.candidates(canonicalize_name("missing"))) == []
    # The first page finds out (folder, then index.json); later pages go by name at once.
    assert host.requests == [
        "/simple/alpha/",
        "/simple/alpha/index.json",
        "/simple/beta/index.json",
        "/simple/missing/index.json",
    ]
    for candidate, name in ((alpha, "alpha"), (beta, "beta")):
        # The JSON page's data: the wheel's and the stored copy's sha256, links resolved
        # against the folder as with negotiation.
        assert candidate.sha256 == WHEEL_SHA
        assert candidate.url == f"{host.url}files/{name}/{name}-1.0-py3-none-any.whl"
        assert candidate.stored is not None
        assert candidate.stored.sha256 == STORED_SHA
        assert candidate.stored.url == candidate.url + ".stored"


def test_a_static_host_of_an_old_tree_keeps_the_html_pages() -> None:
    routes = {"/simple/alpha/": html_page("alpha"), "/simple/beta/": html_page("beta")}
    with scripted_server(routes=routes) as host:  # index.json: 404
        source = RepositorySource(host.url, FETCHER)
        alpha = only(source.candidates(canonicalize_name("alpha")))
        only(source.candidates(canonicalize_name("beta")))
    # Asked once; after the 404 the HTML pages are read as before.
    assert host.requests == ["/simple/alpha/", "/simple/alpha/index.json", "/simple/beta/"]
    assert alpha.sha256 == WHEEL_SHA
    assert alpha.stored is None


def test_a_refused_or_html_answer_for_index_json_keeps_the_html_pages() -> None:
    # S3 answers 403 for a missing key; a catch-all host answers every URL with one page.
    for probe in (Scripted(403, b"AccessDenied"), html_page("alpha")):
        routes = {
            "/simple/alpha/": html_page("alpha"),
            "/simple/alpha/index.json": probe,
            "/simple/beta/": html_page("beta"),
        }
        with scripted_server(routes=routes) as host:
            source = RepositorySource(host.url, FETCHER)
            alpha = only(source.candidates(canonicalize_name("alpha")))
            only(source.candidates(canonicalize_name("beta")))
        assert host.requests == ["/simple/alpha/", "/simple/alpha/index.json", "/simple/beta/"]
        assert alpha.sha256 == WHEEL_SHA and alpha.stored is None


def test_the_upstream_index_is_never_asked_for_index_json() -> None:
    # index.json is our tree's layout, not a PEP 503 index's: PyPI and mirrors are left alone.
    routes = {
        "/simple/alpha/": html_page("alpha"),
        "/simple/alpha/index.json": json_page("alpha"),
    }
    with scripted_server(routes=routes) as host:
        source = UpstreamSource(host.url + "simple/", FETCHER)
        alpha = only(source.candidates(canonicalize_name("alpha")))
    assert host.requests == ["/simple/alpha/"]
    assert alpha.stored is None
