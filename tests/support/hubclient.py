"""A JupyterHub user, as a browser and a client script see the hub: login, tokens, servers, kernels.

- ``HubUser.login(hub_url, name, password)`` fills in the hub's login form (GET /hub/login for
  its ``_xsrf``, POST the form, through the proxy) and keeps the session cookies; a refused
  login raises ``LoginRefused``.
- ``HubUser.request_token()`` asks the hub's REST API, with that login, for an API token with
  the user's own permissions; everything after uses ``Authorization: token ...``.
- ``start_server()`` / ``stop_server()`` go through the REST API; the start follows the hub's
  progress event stream until the server is ready (no sleeping).
- ``ServerClient`` is the user's single-user server through the proxy (REST), and
  ``KernelChannel`` a kernel's websocket there (the JSON messages a browser exchanges).
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import datetime
from http.cookiejar import CookieJar
from typing import Any

import websocket

from .kernels import CellOutput

XSRF_FIELD = re.compile(r'name="_xsrf" value="([^"]+)"')


class HubError(AssertionError):
    """The hub or a user's server did not answer as a user would expect (message says how)."""


class LoginRefused(HubError):
    """The hub's login form refused the user name and password."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # After a login the hub redirects to /hub/spawn, which would start the server itself:
    # the tests start it through the REST API instead, so redirects are not followed.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _json(response: Any) -> Any:
    body = response.read()
    return json.loads(body) if body else None


@dataclass
class HubUser:
    """A logged-in hub user: the hub's public URL, the name, the session cookies, a token."""

    hub_url: str
    name: str
    cookies: CookieJar
    token: str = ""

    @classmethod
    def login(cls, hub_url: str, name: str, password: str) -> HubUser:
        """Log in through the hub's login form. Raises ``LoginRefused`` if it is refused."""
        cookies = CookieJar()
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(cookies), _NoRedirects()
        )
        with opener.open(hub_url + "hub/login", timeout=60) as page:
            form = page.read().decode()
        match = XSRF_FIELD.search(form)
        if match is None:
            raise HubError("the hub's login page has no _xsrf field:\n" + form[:2000])
        data = urllib.parse.urlencode(
            {"username": name, "password": password, "_xsrf": match.group(1)}
        ).encode()
        try:
            opener.open(urllib.request.Request(hub_url + "hub/login", data=data), timeout=60)
        except urllib.error.HTTPError as error:
            if error.code != 302:
                raise LoginRefused(f"login as {name!r} answered {error.code}") from None
        if not any(cookie.name == "jupyterhub-session-id" for cookie in cookies):
            raise LoginRefused(f"login as {name!r} set no session cookie")
        return cls(hub_url, name, cookies)

    def _xsrf(self) -> str:
        return next((cookie.value or "" for cookie in self.cookies if cookie.name == "_xsrf"), "")

    def request_token(self, note: str = "ipydeps tests") -> str:
        """Create an API token for this user with the login cookie; remember and return it."""
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))
        request = urllib.request.Request(
            f"{self.hub_url}hub/api/users/{self.name}/tokens",
            method="POST",
            data=json.dumps({"note": note, "expires_in": 3600}).encode(),
            headers={"X-XSRFToken": self._xsrf(), "Content-Type": "application/json"},
        )
        with opener.open(request, timeout=60) as response:
            self.token = _json(response)["token"]
        return self.token

    def api(self, method: str, path: str, body: Any = None, timeout: float = 60) -> tuple[int, Any]:
        """Call the hub's REST API (``path`` after /hub/api/) with the token; (status, JSON)."""
        return _call(f"{self.hub_url}hub/api/{path}", self.token, method, body, timeout)

    def model(self) -> dict[str, Any]:
        """The hub's model of this user (servers, last activity ...)."""
        status, model = self.api("GET", f"users/{self.name}")
        if status != 200:
            raise HubError(f"GET users/{self.name} answered {status}: {model}")
        return dict(model)

    def start_server(self, timeout: float = 180) -> str:
        """Start the user's server through the REST API; return its URL through the proxy.

        Follows the hub's progress events until the server is ready. Raises ``HubError``
        when the hub refuses, the spawn fails, or it is not ready within ``timeout``.
        """
        status, body = self.api("POST", f"users/{self.name}/server")
        if status not in (201, 202):
            raise HubError(f"starting {self.name}'s server answered {status}: {body}")
        request = urllib.request.Request(
            f"{self.hub_url}hub/api/users/{self.name}/server/progress",
            headers={"Authorization": f"token {self.token}", "Accept": "text/event-stream"},
        )
        deadline = time.monotonic() + timeout
        events: list[dict[str, Any]] = []
        # The hub sends a keepalive every 8 s, so a read never waits longer than that.
        with urllib.request.urlopen(request, timeout=30) as stream:
            for raw in stream:
                line = raw.decode().strip()
                if line.startswith("data:"):
                    events.append(json.loads(line[len("data:") :]))
                    if events[-1].get("ready"):
                        return self.hub_url + str(events[-1]["url"]).lstrip("/")
                    if events[-1].get("failed"):
                        break
                if time.monotonic() > deadline:
                    break
        raise HubError(f"{self.name}'s server did not become ready: {events}")

    def stop_server(self, timeout: float = 120) -> None:
        """Stop the user's server through the REST API and wait until the hub says it stopped.

        Raises ``HubError`` if the hub refuses or the server is still there after ``timeout``.
        """
        status, body = self.api("DELETE", f"users/{self.name}/server")
        if status not in (202, 204):
            raise HubError(f"stopping {self.name}'s server answered {status}: {body}")
        deadline = time.monotonic() + timeout
        while self.model().get("servers"):
            if time.monotonic() > deadline:
                raise HubError(f"{self.name}'s server still there after {timeout} s")
            time.sleep(0.1)


def _call(url: str, token: str | None, method: str, body: Any, timeout: float) -> tuple[int, Any]:
    headers = {"Authorization": f"token {token}"} if token else {}
    data = json.dumps(body).encode() if body is not None else None
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, _json(response)
    except urllib.error.HTTPError as error:
        text = error.read().decode(errors="replace")
        try:
            return error.code, json.loads(text)
        except ValueError:
            return error.code, text


@dataclass(frozen=True)
class ServerClient:
    """A user's single-user server through the hub's proxy (``url`` ends in ``/user/<name>/``)."""

    url: str
    token: str | None

    def api(self, method: str, path: str, body: Any = None, timeout: float = 60) -> tuple[int, Any]:
        """Call the server's REST API (``path`` after /api/); (status, JSON or text)."""
        return _call(f"{self.url}api/{path}", self.token, method, body, timeout)

    def get(self, path: str, timeout: float = 60) -> tuple[int, Any]:
        """GET ``path`` under the server's URL with its token; (status, JSON or text)."""
        return _call(f"{self.url}{path}", self.token, "GET", None, timeout)

    def start_kernel(self) -> str:
        """Start a ``python3`` kernel; return its id. Raises ``HubError`` if refused."""
        status, kernel = self.api("POST", "kernels", {"name": "python3"})
        if status != 201:
            raise HubError(f"POST api/kernels answered {status}: {kernel}")
        return str(kernel["id"])

    def start_session(self, path: str) -> str:
        """Open ``path`` as a notebook session (as JupyterLab does); return its kernel's id."""
        status, session = self.api(
            "POST",
            "sessions",
            {"path": path, "name": path, "type": "notebook", "kernel": {"name": "python3"}},
        )
        if status != 201:
            raise HubError(f"POST api/sessions answered {status}: {session}")
        return str(session["kernel"]["id"])

    def channel(self, kernel_id: str, timeout: float = 60) -> KernelChannel:
        """Open the kernel's websocket (``api/kernels/<id>/channels``) through the proxy."""
        url = self.url.replace("http", "ws", 1) + f"api/kernels/{kernel_id}/channels"
        header = [f"Authorization: token {self.token}"] if self.token else []
        return KernelChannel(websocket.create_connection(url, header=header, timeout=timeout))


@dataclass(frozen=True)
class CellRun:
    """A cell's outputs and when the kernel went idle after it (the kernel's clock, UTC)."""

    output: CellOutput
    finished: datetime


class KernelChannel:
    """A kernel's websocket: execute a cell, collect its output until the kernel is idle."""

    def __init__(self, socket: websocket.WebSocket) -> None:
        self.socket = socket
        self.session = uuid.uuid4().hex

    def send_execute(self, code: str, *, stop_on_error: bool = True) -> str:
        """Send an ``execute_request`` as JupyterLab does; return its msg_id."""
        msg_id = uuid.uuid4().hex
        self.socket.send(
            json.dumps(
                {
                    "channel": "shell",
                    "metadata": {},
                    "parent_header": {},
                    "buffers": [],
                    "header": {
                        "msg_id": msg_id,
                        "msg_type": "execute_request",
                        "version": "5.3",
                        "session": self.session,
                        "username": "ipydeps-tests",
                        "date": "",
                    },
                    "content": {
                        "code": code,
                        "silent": False,
                        "store_history": True,
                        "user_expressions": {},
                        "allow_stdin": False,
                        "stop_on_error": stop_on_error,
                    },
                }
            )
        )
        return msg_id

    def run_all(self, cells: list[str], timeout: float = 300) -> list[str]:
        """Send every cell at once with ``stop_on_error``, as JupyterLab's "Run All" does.

        Returns each reply's status: ``ok``, ``error``, or ``aborted`` for a cell the
        kernel skipped because one before it failed.
        """
        ids = [self.send_execute(code) for code in cells]
        statuses: dict[str, str] = {}
        deadline = time.monotonic() + timeout
        while len(statuses) < len(ids):
            self.socket.settimeout(max(deadline - time.monotonic(), 0.1))
            message = json.loads(self.socket.recv())
            parent = message.get("parent_header", {}).get("msg_id")
            if message["msg_type"] == "execute_reply" and parent in ids:
                statuses[parent] = message["content"]["status"]
            if time.monotonic() > deadline:
                raise HubError(f"no reply to every cell within {timeout} s: {statuses}")
        return [statuses[msg_id] for msg_id in ids]

    def execute(self, code: str, timeout: float = 300) -> CellRun:
        """Run ``code`` as one cell. Raises ``HubError`` if it does not finish in ``timeout``."""
        msg_id = self.send_execute(code)
        output = CellOutput()
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.socket.settimeout(left)
            try:
                message = json.loads(self.socket.recv())
            except websocket.WebSocketTimeoutException:
                break
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "stream":
                if content["name"] == "stdout":
                    output.stdout += content["text"]
                else:
                    output.stderr += content["text"]
            elif kind in ("display_data", "update_display_data", "execute_result"):
                output.displays.append(content["data"])
                output.kinds.append(kind)
            elif kind == "error":
                output.error = content
            elif kind == "status" and content["execution_state"] == "idle":
                finished = datetime.fromisoformat(message["header"]["date"])
                return CellRun(output, finished)
        raise HubError(f"the cell did not finish within {timeout} s: {code!r}\n{output.text}")

    def close(self) -> None:
        """Close the websocket (the kernel keeps running)."""
        self.socket.close()
