"""Inspecting an interpreter's environment: install scheme, installed distributions, apk."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from packaging.tags import sys_tags
from packaging.version import Version

from ipydeps.environment import (
    apk_status,
    inspect_environment,
    install_scheme,
    installed_distributions,
)
from ipydeps.installers.transaction import WheelTransaction
from tests.support.venvs import make_venv, run_python, site_packages
from tests.support.wheels import make_wheel


def test_scheme_of_a_venv_points_into_it(tmp_path: Path) -> None:
    make_venv(tmp_path / "env")
    scheme = install_scheme(tmp_path / "env")
    assert scheme.purelib == site_packages(tmp_path / "env")
    assert scheme.scripts == tmp_path / "env" / "bin"
    assert scheme.data == tmp_path / "env"
    assert scheme.python == str(tmp_path / "env" / "bin" / "python")


def test_scheme_of_the_running_interpreter_is_sys_prefix() -> None:
    scheme = install_scheme()
    assert scheme.python == sys.executable
    assert Path(scheme.purelib).is_relative_to(sys.prefix)


def test_installed_distributions_of_a_prefix(tmp_path: Path) -> None:
    make_venv(tmp_path / "env")
    before = inspect_environment(tmp_path / "env", apk=False)
    assert "demo-pkg" not in before.installed
    with WheelTransaction(before.scheme) as transaction:
        transaction.stage(make_wheel(tmp_path, "Demo_Pkg", "1.2.3"))
        transaction.commit()
    after = inspect_environment(tmp_path / "env", apk=False)
    assert after.installed["demo-pkg"] == Version("1.2.3")
    assert after.tags[0] == next(iter(sys_tags()))
    assert after.apk_available is False and after.apk_reason == "set by configuration"


def test_distributions_named_without_a_version_are_read_from_their_metadata(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "Legacy_Thing.egg-info").mkdir(parents=True)
    (site / "Legacy_Thing.egg-info" / "PKG-INFO").write_text(
        "Metadata-Version: 1.1\nName: Legacy-Thing\nVersion: 2.1\n"
    )
    (site / "modern_pkg-3.0.dist-info").mkdir()
    assert installed_distributions([site]) == {
        "legacy-thing": Version("2.1"),
        "modern-pkg": Version("3.0"),
    }


def test_apk_is_not_available_without_an_apk_binary() -> None:
    available, reason = apk_status()
    if shutil.which("apk") is None:
        assert (available, reason) == (False, "no apk binary (not an Alpine system)")
    else:
        assert isinstance(available, bool) and reason


def test_apk_needs_a_venv_that_sees_system_site_packages(tmp_path: Path) -> None:
    probe = "from ipydeps.environment import sees_system_site_packages as s; print(s())"
    isolated = make_venv(tmp_path / "isolated", see_test_packages=True)
    shared = make_venv(tmp_path / "shared", see_test_packages=True, system_site_packages=True)
    assert run_python(isolated, probe).stdout == "False\n"
    assert run_python(shared, probe).stdout == "True\n"


def test_apk_database_is_read_where_it_exists(tmp_path: Path) -> None:
    from ipydeps.environment import read_installed_apks

    database = tmp_path / "installed"
    database.write_text("C:Q1x=\nP:python3\nV:3.12.12-r0\np:cmd:python3=3.12.12-r0\nF:usr/bin\n\n")
    installed = read_installed_apks(database)
    assert dict(installed.packages) == {"python3": "3.12.12-r0"}
    assert dict(installed.provides) == {"cmd:python3": ("3.12.12-r0",)}
    assert not read_installed_apks(tmp_path / "missing").packages
