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
    error: dict[str, Any] | None = None

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


class Kernel:
    """A started kernel (``python -m ipykernel_launcher``) with a blocking client."""

    def __init__(self, python: Path, workdir: Path, env: dict[str, str]) -> None:
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
        specs = KernelSpecManager(kernel_dirs=[str(workdir / "kernels")])
        self.manager = KernelManager(kernel_name="throwaway", kernel_spec_manager=specs)
        self.manager.start_kernel(env=clean_pip_env(**env), cwd=str(workdir))
        self.client = self.manager.blocking_client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=120)

    def run(self, code: str, timeout: float = 180) -> CellOutput:
        """Execute ``code`` as one cell and collect its outputs."""
        output = CellOutput()

        def collect(message: dict[str, Any]) -> None:
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

        self.client.execute_interactive(code, output_hook=collect, timeout=timeout)
        return output

    def stop(self) -> None:
        """Shut the kernel down."""
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)
