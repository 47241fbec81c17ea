"""Making new installs importable in the running interpreter, and restart warnings."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from ipydeps.kernel import Upgraded, refresh_import_system, restart_warnings


@pytest.fixture
def isolated_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let a test change sys.path and sys.modules; both are restored afterwards."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "modules", dict(sys.modules))


@pytest.mark.usefixtures("isolated_path")
def test_new_module_is_importable_at_once(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    sys.path.append(str(site))
    with pytest.raises(ImportError):
        importlib.import_module("fresh_module_xyz")
    (site / "fresh_module_xyz.py").write_text("VALUE = 42\n")
    refresh_import_system([site])
    assert importlib.import_module("fresh_module_xyz").VALUE == 42


@pytest.mark.usefixtures("isolated_path")
def test_site_dir_not_on_path_is_added_with_its_pth_files(tmp_path: Path) -> None:
    site, extra = tmp_path / "site", tmp_path / "extra"
    site.mkdir()
    extra.mkdir()
    (site / "extra.pth").write_text(f"{extra}\n")
    (extra / "via_pth_xyz.py").write_text("VALUE = 'pth'\n")
    refresh_import_system([site])
    assert str(site) in sys.path and str(extra) in sys.path
    assert importlib.import_module("via_pth_xyz").VALUE == "pth"


@pytest.mark.usefixtures("isolated_path")
def test_new_pth_file_in_a_known_site_dir_is_processed(tmp_path: Path) -> None:
    site, extra = tmp_path / "site", tmp_path / "extra"
    site.mkdir()
    extra.mkdir()
    sys.path.append(str(site))
    (site / "new.pth").write_text(f"{extra}\n")
    refresh_import_system([site], [site / "new.pth"])
    assert str(extra) in sys.path


@pytest.mark.usefixtures("isolated_path")
def test_restart_warning_only_for_imported_modules() -> None:
    sys.modules["fake_numpy_xyz"] = sys  # stands for an already-imported module
    warnings = restart_warnings(
        [
            Upgraded("numpy", "1.26.4", "2.3.5", ("fake_numpy_xyz",)),
            Upgraded("scipy", "1.11.0", "1.16.3", ("not_imported_xyz",)),
        ]
    )
    assert warnings == ["numpy 1.26.4 is already imported; restart the kernel to use 2.3.5"]
