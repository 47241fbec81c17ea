"""Headless check for ``./quickstart.sh --check``: probe the Jupyter server, run the notebook.

The quickstart script starts the repository and Jupyter servers and exports the kernel's
environment (JUPYTER_PATH with the quickstart kernel, IPYDEPS_* settings), then runs this.
Exit status 0 means every cell ran without error and every assertion in it held.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.manager import KernelManager
from jupyter_core.paths import jupyter_runtime_dir
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

CELL_TIMEOUT_SECONDS = 900


class CheckFailed(Exception):
    """A check of the running setup failed; the message says which and why."""


def _get(url: str, token: str | None, *, json_body: bool = True) -> tuple[int, Any]:
    """GET ``url``; return the status and the JSON body (the text when ``json_body`` is False)."""
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"token {token}")
    # Jupyter may log its URL a moment before its socket accepts connections (seen with
    # port 0 on a busy machine): a refused connection is retried for a few seconds.
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                body = response.read()
                if not json_body:
                    return response.status, body.decode("utf-8", "replace")
                return response.status, json.loads(body or b"null")
        except urllib.error.HTTPError as error:
            return error.code, None
        except urllib.error.URLError as error:
            refused = isinstance(error.reason, ConnectionRefusedError)
            if not refused or time.monotonic() > deadline:
                raise CheckFailed(f"GET {url} failed: {error.reason}") from None
            time.sleep(0.05)


def check_server(server: str, token: str, kernel_env: Path) -> None:
    """Check /api/status answers with the token only, and the default kernel is ours.

    Raises ``CheckFailed`` with the observed status or kernel command otherwise.
    """
    status, body = _get(server + "api/status", token)
    if status != 200:
        raise CheckFailed(f"GET /api/status with the token answered {status}, expected 200")
    print(f"ok   Jupyter server answers /api/status: {body}")
    status, _ = _get(server + "api/status", None)
    if status not in (401, 403):
        raise CheckFailed(f"GET /api/status without a token answered {status}, expected 403")
    print(f"ok   token auth is on (no token -> {status})")
    status, specs = _get(server + "api/kernelspecs", token)
    if status != 200:
        raise CheckFailed(f"GET /api/kernelspecs answered {status}")
    default = specs["kernelspecs"][specs["default"]]["spec"]
    if Path(default["argv"][0]).parent.parent != kernel_env:
        raise CheckFailed(
            f"the default kernel runs {default['argv'][0]}, not the throwaway env {kernel_env}"
        )
    print(f"ok   default kernel {specs['default']!r} runs in {kernel_env}")


def check_kernel_through_server(server: str, token: str) -> None:
    """Start a kernel through the server and run a cell over its websocket, as a browser does.

    This is the path the quickstart's URL uses (the notebook run below talks to its own
    kernel directly), including the kernels' ipc transport. Raises ``CheckFailed``.
    """
    asyncio.run(_run_through_server(server, token))
    print("ok   a kernel started through the server runs code over its websocket")


async def _run_through_server(server: str, token: str) -> None:
    from tornado.httpclient import HTTPClientError, HTTPRequest
    from tornado.websocket import websocket_connect

    headers = {"Authorization": f"token {token}"}
    request = urllib.request.Request(
        server + "api/kernels", data=b"{}", headers=headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        kernel_id = json.loads(response.read())["id"]
    try:
        url = server.replace("http://", "ws://", 1) + f"api/kernels/{kernel_id}/channels"
        try:
            socket = await websocket_connect(HTTPRequest(url, headers=headers, connect_timeout=60))
        except HTTPClientError as error:
            raise CheckFailed(f"the kernel's websocket answered {error.code}") from None
        message_id = uuid.uuid4().hex
        socket.write_message(
            json.dumps(
                {
                    "channel": "shell",
                    "metadata": {},
                    "parent_header": {},
                    "buffers": [],
                    "header": {
                        "msg_id": message_id,
                        "msg_type": "execute_request",
                        "version": "5.3",
                        "session": uuid.uuid4().hex,
                        "username": "quickstart",
                        "date": "",
                    },
                    "content": {
                        "code": "print(6 * 7)",
                        "silent": False,
                        "store_history": False,
                        "user_expressions": {},
                        "allow_stdin": False,
                    },
                }
            )
        )
        deadline = time.monotonic() + CELL_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            raw = await asyncio.wait_for(socket.read_message(), CELL_TIMEOUT_SECONDS)
            if raw is None:
                raise CheckFailed("the kernel's websocket closed before the cell ran")
            message = json.loads(raw)
            if message.get("parent_header", {}).get("msg_id") != message_id:
                continue
            if message["msg_type"] == "stream" and message["content"]["text"] == "42\n":
                socket.close()
                return
            if message["msg_type"] == "error":
                raise CheckFailed(f"the cell failed: {message['content']['evalue']}")
        raise CheckFailed("no output from the kernel started through the server")
    finally:
        delete = urllib.request.Request(
            f"{server}api/kernels/{kernel_id}", headers=headers, method="DELETE"
        )
        with urllib.request.urlopen(delete, timeout=60):
            pass


def check_lab(server: str, token: str, notebook: Path) -> None:
    """Check the page the quickstart's URL opens: JupyterLab answers, the notebook is there.

    The URL is ``lab/tree/<notebook name>``: the server's root is the notebook's directory,
    so the contents API must find the notebook under its bare name. Raises ``CheckFailed``.
    """
    status, page = _get(server + "lab", token, json_body=False)
    if status != 200 or "jupyterlab" not in page.lower():
        raise CheckFailed(f"GET /lab answered {status}, expected JupyterLab's page")
    print("ok   JupyterLab answers /lab")
    name = urllib.parse.quote(notebook.name)
    status, model = _get(f"{server}api/contents/{name}?content=0", token)
    if status != 200 or model.get("type") != "notebook":
        raise CheckFailed(
            f"GET /api/contents/{name} answered {status}: the URL's notebook "
            "is not where the server looks"
        )
    print(f"ok   the URL's notebook exists: lab/tree/{name}")


def _text_of(outputs: list[Any]) -> str:
    parts = []
    for output in outputs:
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        elif "text/plain" in output.get("data", {}):
            text = output["data"]["text/plain"]
            # An HTML-only display's text/plain is just its repr: nothing to show.
            if not text.startswith("<IPython.core.display."):
                parts.append(text + "\n")
    return "".join(parts).rstrip()


def run_notebook(path: Path) -> None:
    """Execute the notebook with the default kernel; print each code cell's outcome.

    Raises ``CheckFailed`` naming the failing cell and its error.
    """
    notebook = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    # Unix sockets in the private runtime directory, as the quickstart's server uses: a
    # kernel on loopback TCP is readable by every local user (and ipykernel warns so). The
    # socket paths follow the connection file's, which must be absolute: by default they
    # are relative to the working directory, which the kernel (in the notebook's folder)
    # and this client do not share.
    connection_file = Path(jupyter_runtime_dir()) / f"kernel-check-{os.getpid()}.json"
    manager = KernelManager(
        kernel_name="python3", transport="ipc", connection_file=str(connection_file)
    )
    client = NotebookClient(
        notebook,
        km=manager,
        timeout=CELL_TIMEOUT_SECONDS,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    started = time.monotonic()
    try:
        client.execute()
    except CellExecutionError as error:
        raise CheckFailed(f"a notebook cell failed:\n{error}") from None
    finally:
        for number, cell in enumerate(notebook.cells, start=1):
            if cell.cell_type != "code":
                continue
            errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            first_line = cell.source.splitlines()[0] if cell.source else ""
            ran = cell.get("execution_count") is not None
            mark = "FAIL" if errors else ("ok  " if ran else "skip")
            print(f"{mark} cell {number:2}: {first_line}")
            text = _text_of(cell.get("outputs", []))
            if text:
                print("           " + text.replace("\n", "\n           "))
    print(f"ok   notebook ran in {time.monotonic() - started:.1f} s")


def main() -> int:
    """Run the checks; return 0 when all pass, 1 otherwise."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--notebook", type=Path, required=True)
    parser.add_argument("--server", required=True, help="Jupyter base URL, ending in /")
    parser.add_argument("--token", required=True)
    parser.add_argument("--kernel-env", type=Path, required=True)
    parser.add_argument("--ui", choices=("lab", "none"), default="none")
    options = parser.parse_args()
    try:
        check_server(options.server, options.token, options.kernel_env)
        check_kernel_through_server(options.server, options.token)
        if options.ui == "lab":
            check_lab(options.server, options.token, options.notebook)

        run_notebook(options.notebook)
    except CheckFailed as failure:
        print(f"FAIL {failure}", file=sys.stderr)
        return 1
    print("quickstart check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
