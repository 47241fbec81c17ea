"""The shared package's contract: a leaf of the client, the server's only way into it, cheap.

``ipydeps.formats`` imports nothing else of ``ipydeps``; the repository server imports the
client through it alone; and importing it (or ``ipydeps`` itself) loads neither the
resolver nor the notebook API, whose names still work on first use (PEP 562).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORMATS = ROOT / "ipydeps" / "formats"
SERVER = ROOT / "repo-server" / "ipydeps_repo"


def imported_modules(path: Path, root: Path) -> list[str]:
    """Every module an import statement of ``path`` names (relative ones made absolute).

    ``root`` is the directory imports start from (``ROOT``, or ``repo-server``).
    """
    package = path.parent.relative_to(root).parts
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else ()
            found.append(".".join([*base, *([node.module] if node.module else [])]))
    return found


def loaded_after(statement: str) -> list[str]:
    """The modules a fresh interpreter has loaded after ``statement``."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return list(json.loads(done.stdout))


def test_formats_imports_nothing_else_of_ipydeps() -> None:
    for path in FORMATS.glob("*.py"):
        outside = [
            name
            for name in imported_modules(path, ROOT)
            if name.split(".")[0] == "ipydeps" and not name.startswith("ipydeps.formats")
        ]
        assert outside == [], f"{path.name} imports {outside}"


def test_the_server_imports_the_client_only_through_formats() -> None:
    for path in SERVER.rglob("*.py"):
        outside = [
            name
            for name in imported_modules(path, SERVER.parent)
            if name == "ipydeps"
            or (name.startswith("ipydeps.") and not name.startswith("ipydeps.formats"))
        ]
        assert outside == [], f"{path.relative_to(ROOT)} imports {outside}"


def test_the_shared_package_loads_a_handful_of_modules() -> None:
    loaded = loaded_after("import ipydeps.formats.apkindex")
    ours = [name for name in loaded if name.split(".")[0] == "ipydeps"]
    assert ours == [
        "ipydeps",
        "ipydeps.formats",
        "ipydeps.formats.apkindex",
        "ipydeps.formats.apkversion",
        "ipydeps.formats.errors",
    ]
    assert "resolvelib" not in loaded and "IPython" not in loaded


def test_import_ipydeps_loads_nothing_until_a_name_is_used() -> None:
    assert set(loaded_after("import ipydeps")) - set(loaded_after("pass")) == {"ipydeps"}


def test_the_result_type_loads_no_install_machinery() -> None:
    # ``ipydeps.Result`` (for an annotation, an isinstance check) is plain data and its display.
    loaded = loaded_after("import ipydeps\nipydeps.Result")
    assert "ipydeps.result" in loaded
    assert "ipydeps.api" not in loaded and "resolvelib" not in loaded


PUBLIC_NAMES = r"""
import ipydeps, ipydeps.settings
from ipydeps import pip
import ipydeps.api
assert callable(ipydeps.config) and ipydeps.config is ipydeps.api.config
assert ipydeps.pip is pip is ipydeps.api.pip
assert ipydeps.Result is ipydeps.api.Result
import ipydeps.result
assert ipydeps.Result is ipydeps.result.Result
assert ipydeps.api.Installed is ipydeps.result.Installed
assert ipydeps.__version__ == "0.1.0"
import ipydeps.magics
assert ipydeps.load_ipython_extension is ipydeps.magics.load_ipython_extension
assert ipydeps.unload_ipython_extension is ipydeps.magics.unload_ipython_extension
assert set(ipydeps.__all__) <= set(dir(ipydeps))
try:
    ipydeps.no_such_name
except AttributeError as error:
    assert "no_such_name" in str(error)
else:
    raise AssertionError("an unknown name must raise AttributeError")
"""


def test_every_public_name_still_works() -> None:
    # In a fresh interpreter: ipydeps.settings and ipydeps.api are imported first, which
    # must not shadow the public function ipydeps.config with a module.
    done = subprocess.run(
        [sys.executable, "-c", PUBLIC_NAMES], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert done.returncode == 0, done.stderr


LOAD_EXT = r"""
import sys
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
assert "ipydeps.api" not in sys.modules
shell.run_line_magic("load_ext", "ipydeps")
assert "ipydeps.api" in sys.modules  # loaded at kernel start, not by the first %pip
assert "pip" in shell.magics_manager.magics["line"]
from ipydeps.magics import rewrite_shell_pip
assert rewrite_shell_pip in shell.input_transformers_cleanup
print(shell.magics_manager.magics["line"]["pip"].__module__)
"""


def test_load_ext_ipydeps_registers_the_magic_and_loads_the_installer() -> None:
    done = subprocess.run(
        [sys.executable, "-c", LOAD_EXT], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ipydeps.magics"
