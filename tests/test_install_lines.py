"""Every documented install line works in a fresh venv, taking our distributions from the checkout.

The name ``ipydeps`` on PyPI belongs to an unrelated project, so each line is run as a user
would (PyPI reachable, this machine's pip settings cleared) and the result is checked: our two
distributions come from the checkout, and no distribution named ``ipydeps`` is installed.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.pipenv import clean_pip_env

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = ("README.md", "repo-server/README.md", "bench/README.md", "docs/client.md")
# A pip install of the checkout: its arguments name the checkout root or repo-server/.
CHECKOUT_ARGUMENT = re.compile(r"^['\"]?\.(/repo-server)?/?(\[[a-z,]+\])?['\"]?$")


def documented_install_lines() -> list[str]:
    """The ``pip install`` lines of the docs' shell blocks that install from the checkout."""
    lines: set[str] = set()
    for document in DOCUMENTS:
        in_block = False
        for raw in (ROOT / document).read_text().splitlines():
            if raw.startswith("```"):
                in_block = raw.strip() in ("```sh", "```bash", "```shell")
                continue
            command = raw.split("#", 1)[0].strip()
            if in_block and command.startswith("pip install "):
                arguments = [a for a in shlex.split(command)[2:] if a != "-e"]
                if any(
                    CHECKOUT_ARGUMENT.match(shlex.quote(a)) or CHECKOUT_ARGUMENT.match(a)
                    for a in arguments
                ):
                    lines.add(command)
    return sorted(lines)


def test_the_docs_document_installing_each_distribution() -> None:
    lines = documented_install_lines()
    assert "pip install ." in lines
    assert "pip install . ./repo-server" in lines
    assert "pip install -e . -e ./repo-server" in lines
    # Installing the server's folder alone would make pip look for the client on an index.
    assert "pip install ./repo-server" not in lines


def _checkout_copy(into: Path) -> Path:
    """The checkout's tracked files, copied as a fresh clone would hold them."""
    listed = (
        subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True)
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            target = into / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return into


@pytest.mark.e2e
@pytest.mark.network
@pytest.mark.parametrize("line", documented_install_lines())
def test_each_documented_install_line_works_in_a_fresh_venv(line: str, tmp_path: Path) -> None:
    checkout = _checkout_copy(tmp_path / "checkout")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    env = clean_pip_env()
    result = subprocess.run(
        [str(python), "-m", *shlex.split(line)],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"{line}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format", "json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    installed = {entry["name"].lower(): entry for entry in json.loads(listed)}
    assert "ipydeps" not in installed, "someone else's project named ipydeps was installed"
    assert "ipydeps-client" in installed
    serving = "repo-server" in line
    assert ("ipydeps-repo" in installed) == serving
    # Both came from the checkout: their files resolve inside it, or into the venv from it.
    where = subprocess.run(
        [
            str(python),
            "-c",
            "import ipydeps, importlib.metadata as m; print(ipydeps.__file__);"
            " print(m.distribution('ipydeps-client').read_text('direct_url.json'))",
        ],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert checkout.as_uri() in where, where
    if serving:
        subprocess.run(
            [str(venv / "bin" / "ipydeps-repo"), "--help"], env=env, check=True, capture_output=True
        )
    if "[jupyter]" in line:
        subprocess.run(
            [str(python), "-c", "import ipykernel, jupyter_server"],
            cwd=tmp_path,
            env=env,
            check=True,
        )
