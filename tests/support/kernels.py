"""A real Jupyter kernel running a throwaway venv's python, and cell execution with outputs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from .pipenv import clean_pip_env


@dataclass
class CellOutput:
    """Everything one cell produced: streams, rich displays (text and HTML), errors."""

    stdout: str = ""
    stderr: str = ""
    displays: list[dict[str, Any]] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)  # message type of each entry of displays
    display_ids: list[str | None] = field(default_factory=list)  # each entry's display_id
    error: dict[str, Any] | None = None

    def collect(self, message: dict[str, Any]) -> None:
        """Take one iopub message of the cell."""
        kind, content = message["msg_type"], message["content"]
        if kind == "stream":
            if content["name"] == "stdout":
                self.stdout += content["text"]
            else:
                self.stderr += content["text"]
        elif kind in ("display_data", "update_display_data", "execute_result"):
            self.displays.append(content["data"])
            self.kinds.append(kind)
            self.display_ids.append(content.get("transient", {}).get("display_id"))
        elif kind == "error":
            self.error = content

    @property
    def traceback(self) -> list[str]:
        """The lines the notebook shows for the cell's error (none without one)."""
        return list(self.error["traceback"]) if self.error else []

    def shown(self) -> str:
        """What a notebook shows once it is done: streams, each display's last form, the error.

        A display updated in place shows only its last update; an execute_result is Out[n].
        """
        last: dict[str, dict[str, Any]] = {}
        order: list[str] = []
        for index, (data, display_id) in enumerate(
            zip(self.displays, self.display_ids, strict=True)
        ):
            key = display_id or f"#{index}"
            if key not in last:
                order.append(key)
            last[key] = data
        parts = [self.stdout, self.stderr]
        parts += [str(last[key].get("text/plain", "")) for key in order]
        return "\n".join(parts + self.traceback)

    @property
    def text(self) -> str:
        """All visible text: streams, text/plain and text/html of displays, the error."""
        parts = [self.stdout, self.stderr]
        for data in self.displays:
            parts.append(str(data.get("text/plain", "")))
            parts.append(str(data.get("text/html", "")))
        if self.error:
            parts.append(f"{self.error['ename']}: {self.error['evalue']}")
        return "\n".join(parts)


def kernel_specs(python: Path, workdir: Path) -> KernelSpecManager:
    """Kernel specs holding one, ``throwaway``: ``python`` running ipykernel."""
    spec_dir = workdir / "kernels" / "throwaway"
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "throwaway",
                "language": "python",
            }
        )
    )
    return KernelSpecManager(kernel_dirs=[str(workdir / "kernels")])


def run_notebook(
    python: Path, workdir: Path, env: dict[str, str], cells: list[str]
) -> tuple[Any, BaseException | None]:
    """Run a notebook of ``cells`` top to bottom as nbclient (nbconvert --execute) does.

    Returns the executed notebook and the error that stopped the run (None: it ran whole).
    """
    import nbformat
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    manager = AsyncKernelManager(
        kernel_name="throwaway", kernel_spec_manager=kernel_specs(python, workdir)
    )
    client = NotebookClient(notebook, km=manager, timeout=180)
    try:
        client.execute(env=clean_pip_env(**env), cwd=str(workdir))
    except CellExecutionError as error:
        return notebook, error
    return notebook, None


class Kernel:
    """A started kernel (``python -m ipykernel_launcher``) with a blocking client."""

    def __init__(self, python: Path, workdir: Path, env: dict[str, str]) -> None:
        specs = kernel_specs(python, workdir)
        self.manager = KernelManager(kernel_name="throwaway", kernel_spec_manager=specs)
        self.manager.start_kernel(env=clean_pip_env(**env), cwd=str(workdir))
        self.client = self.manager.blocking_client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=120)

    def run(self, code: str, timeout: float = 180) -> CellOutput:
        """Execute ``code`` as one cell and collect its outputs."""
        output = CellOutput()
        self.client.execute_interactive(code, output_hook=output.collect, timeout=timeout)
        return output

    def outputs_of(self, msg_id: str, timeout: float = 180) -> CellOutput:
        """Collect the outputs of a cell sent with ``client.execute`` until it is idle."""
        output = CellOutput()
        while True:
            message = self.client.get_iopub_msg(timeout=timeout)
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            if message["msg_type"] == "status":
                if message["content"]["execution_state"] == "idle":
                    return output
                continue
            output.collect(message)

    def run_queued(self, cells: list[str], timeout: float = 180) -> list[str]:
        """Send every cell at once with ``stop_on_error``, as JupyterLab's Run All does.

        Returns the status of each reply: ``ok``, ``error``, or ``aborted`` for a cell
        the kernel skipped because one before it failed.
        """
        ids = [self.client.execute(code, stop_on_error=True) for code in cells]
        replies: dict[str, str] = {}
        while len(replies) < len(ids):
            reply = self.client.get_shell_msg(timeout=timeout)
            parent = reply["parent_header"].get("msg_id")
            if parent in ids:
                replies[parent] = reply["content"]["status"]
        return [replies[msg_id] for msg_id in ids]

    def stop(self) -> None:
        """Shut the kernel down."""
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)
