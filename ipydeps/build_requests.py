"""Ask our repository's farm for a build, and show where a plan's missing builds stand.

A plan that names a missing build (``Unsatisfiable.unbuilt``) ends its line with
"build request: none"; ``annotate_plan`` replaces that with what the repository's public
``GET /api/v1/build-requests/<project>`` says (queued, scheduled, no recipe, ...), and,
with ``send``, first asks for the build (``POST /api/v1/build-requests`` with the
``repository_token``, which needs the ``request`` right). Neither ever fails a plan: a
repository without the endpoint, a refused or an unreachable request is said in the line.
``request_build`` is the same request for one project, from a notebook cell.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import urllib.error
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from packaging.utils import canonicalize_name

from .credentials import repository_access
from .environment_model import TargetEnvironment
from .errors import IpydepsError, RepositoryError
from .models import UnbuiltBuild
from .plan_model import Plan
from .settings import load_config

__all__ = [
    "BuildQueue",
    "BuildRequestError",
    "RepositoryBuildQueue",
    "annotate_plan",
    "build_request_states",
    "request_build",
]

ENDPOINT = "api/v1/build-requests"
MAX_ASKED = 10  # projects one plan asks about: a plan with more has other problems
_MAX_TEXT = 200  # characters of the server's text that reach a message
_NONE = "build request: none"


class BuildRequestError(IpydepsError):
    """The repository did not take a build request (no right, over a limit, unreachable)."""


class PageReader(Protocol):
    """What reading a request's state needs of a fetcher (``ipydeps.fetch.HttpFetcher``)."""

    def get_bytes(self, url: str, *, accept: str | None = None) -> bytes:
        """Return the body of ``url``; raise ``RepositoryError`` on failure."""
        ...


class BuildQueue(Protocol):
    """Where build requests go: our repository's queue (tests pass their own)."""

    def state(self, build: UnbuiltBuild) -> str | None:
        """Return where ``build`` stands, "" for never asked, None if nobody can tell."""
        ...

    def request(self, build: UnbuiltBuild) -> str:
        """Ask for ``build``; return its state. Raises ``BuildRequestError``."""
        ...


def _clean(text: object) -> str:
    """Server text cut short and stripped of control characters before it reaches a line."""
    return "".join(c for c in str(text) if c.isprintable())[:_MAX_TEXT]


def _describe(entry: dict[str, Any]) -> str:
    state, note = _clean(entry.get("state", "")), _clean(entry.get("note", ""))
    return f"{state} ({note})" if note else state


def _matching(entries: Sequence[Any], build: UnbuiltBuild) -> dict[str, Any] | None:
    for entry in entries:
        if (
            isinstance(entry, dict)
            and entry.get("platform_tag") == build.platform_tag
            and entry.get("python") == build.python
            and entry.get("version") in ("", build.version)
        ):
            return entry
    return None


class RepositoryBuildQueue:
    """The build-request endpoints of our repository at ``base_url``."""

    def __init__(
        self, base_url: str, fetcher: PageReader, headers: dict[str, str], timeout: float = 30
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.fetcher = fetcher
        self.headers = headers
        self.timeout = timeout

    def state(self, build: UnbuiltBuild) -> str | None:
        """Read the public state of the project's requests (None: the endpoint is absent)."""
        url = f"{self.base_url}{ENDPOINT}/{urllib.parse.quote(build.project)}"
        try:
            document = json.loads(self.fetcher.get_bytes(url, accept="application/json"))
        except (RepositoryError, ValueError):
            return None
        requests = document.get("requests") if isinstance(document, dict) else None
        entry = _matching(requests if isinstance(requests, list) else [], build)
        return "" if entry is None else _describe(entry)

    def request(self, build: UnbuiltBuild) -> str:
        """POST the request with our token; return its state.

        Raises:
            BuildRequestError: refused (401/403: the token's right), over a limit (429,
                with when to retry), or the repository could not be reached.
        """
        body = {
            "project": build.project,
            "platform_tag": build.platform_tag,
            "python": build.python,
            **({"version": build.version} if build.version else {}),
        }
        # Only here (a build request is rare): urllib.request adds to every start-up.
        import urllib.request

        request = urllib.request.Request(
            self.base_url + ENDPOINT,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json", **self.headers},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                answer = json.loads(response.read(64 * 1024))
        except urllib.error.HTTPError as error:
            raise _refused(error) from None
        except (OSError, ValueError) as error:
            raise BuildRequestError(
                f"the build request could not reach our repository: {_clean(error)}"
            ) from None
        entry = answer.get("request") if isinstance(answer, dict) else None
        return _describe(entry) if isinstance(entry, dict) else "queued"


def _refused(error: urllib.error.HTTPError) -> BuildRequestError:
    try:
        said = _clean(json.loads(error.read(64 * 1024)).get("error", ""))
    except (ValueError, AttributeError, OSError):
        said = ""
    hint = None
    if error.code in (401, 403):
        hint = (
            "set repository_token (IPYDEPS_REPOSITORY_TOKEN) to a token made with "
            "'ipydeps-repo token create NAME --request-only'"
        )
    elif error.code == 429:
        hint = f"try again in {_clean(error.headers.get('Retry-After', '?'))} s"
    elif error.code == 404:
        hint = "this repository takes no build requests (its server predates them)"
    return BuildRequestError(
        f"our repository refused the build request ({error.code}{': ' + said if said else ''})",
        hint=hint,
    )


def annotate_plan(plan: Plan, queue: BuildQueue, *, send: bool = False) -> Plan:
    """Fill in where each missing build of ``plan`` stands; with ``send``, ask for it first."""
    problems = list(plan.unsatisfiable)
    asked = 0
    for index, problem in enumerate(problems):
        build = problem.unbuilt
        if build is None or _NONE not in problem.reason or asked >= MAX_ASKED:
            continue
        asked += 1
        if send:
            try:
                text = f"build requested: {queue.request(build)}"
            except BuildRequestError as error:
                text = f"build request not sent: {error.message}"
                if error.hint:
                    text += f" ({error.hint})"
        else:
            state = queue.state(build)
            text = _NONE if not state else f"build request: {state}"
        problems[index] = dataclasses.replace(problem, reason=problem.reason.replace(_NONE, text))
    return dataclasses.replace(plan, unsatisfiable=tuple(problems))


def build_request_states(
    plan: Plan,
    repository_url: str | None,
    fetcher: PageReader,
    headers_for: Callable[[str], dict[str, str]],
    *,
    send: bool,
) -> Plan:
    """``annotate_plan`` through our repository, when the plan misses a build and one is set.

    A plan without a missing build costs no request.
    """
    if not repository_url or not any(p.unbuilt for p in plan.unsatisfiable):
        return plan
    queue = RepositoryBuildQueue(repository_url, fetcher, headers_for(repository_url))
    return annotate_plan(plan, queue, send=send)


def request_build(
    project: str,
    version: str | None = None,
    *,
    platform_tag: str | None = None,
    python: str | None = None,
    config: str | None = None,
) -> str:
    """Ask our repository's farm to build ``project`` for this kernel; return its state.

    The platform and Python default to this interpreter's (``musllinux_1_2_x86_64``,
    ``3.12`` in the runtime). Needs ``repository_url`` and a ``repository_token`` made with
    ``ipydeps-repo token create NAME --request-only``. The farm decides: a project
    without a recipe stays listed as "no recipe" and nothing is built.

    Raises:
        ConfigError: invalid settings. BuildRequestError: no repository, refused, over a
            limit (the message says when to retry), or unreachable.
    """
    settings = load_config(name=config, overrides={}, environ=os.environ)
    access = repository_access(
        settings.repository_url, token=settings.repository_token, environ=os.environ
    )
    if access.url is None:
        raise BuildRequestError(
            "no repository is configured to ask for a build",
            hint="set repository_url (IPYDEPS_REPOSITORY_URL)",
        )
    build = UnbuiltBuild(
        project=canonicalize_name(project),
        version=version,
        platform_tag=platform_tag or TargetEnvironment.current(apk_available=False).platform_tag,
        python=python or f"{sys.version_info.major}.{sys.version_info.minor}",
    )
    queue = RepositoryBuildQueue(access.url, _NoFetcher(), access.headers_for(access.url))
    return queue.request(build)


class _NoFetcher:
    """``request_build`` only posts; reading pages is the planner's."""

    def get_bytes(self, url: str, *, accept: str | None = None) -> bytes:
        raise RepositoryError(f"not read: {url}")
