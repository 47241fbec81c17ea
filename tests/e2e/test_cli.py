"""``python -m ipydeps`` and the pip shim, run as child processes against the real server."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.help_text import option_texts
from tests.support.pipenv import clean_pip_env
from tests.support.server import RunningServer, start_server
from tests.support.venvs import ROOT, make_venv, run_python, snapshot
from tests.support.wheels import make_wheel

pytestmark = pytest.mark.e2e


@dataclass
class Terminal:
    server: RunningServer
    venv: Path
    python: Path
    work: Path

    def run(
        self, *args: str, command: list[str] | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        base = command or [str(self.python), "-m", "ipydeps"]
        environment = clean_pip_env(
            **{
                "IPYDEPS_REPOSITORY_URL": self.server.url,
                "IPYDEPS_UPSTREAM": "deny",
                "IPYDEPS_APK": "never",
                "HOME": str(self.work),
                "XDG_CONFIG_HOME": str(self.work / "config"),
                **env,
            }
        )
        return subprocess.run(
            [*base, *args],
            capture_output=True,
            text=True,
            env=environment,
            timeout=300,
            check=False,
        )

    def publish(self, name: str, version: str, **options: object) -> None:
        status, body = self.server.upload(
            make_wheel(self.work / "wheels", name, version, **options)
        )  # type: ignore[arg-type]
        assert status == 201, body


@pytest.fixture(scope="module")
def terminal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Terminal]:
    work = tmp_path_factory.mktemp("cli")
    (work / "wheels").mkdir()
    server = start_server(work / "repo-data")
    python = make_venv(work / "env", see_test_packages=True)
    try:
        yield Terminal(server, work / "env", python, work)
    finally:
        server.stop()


def test_install_then_import(terminal: Terminal) -> None:
    terminal.publish("cli-dep", "1.0")
    terminal.publish("cli-pkg", "2.0", requires=["cli-dep"])
    done = terminal.run("install", "cli-pkg")
    assert done.returncode == 0, done.stderr
    source = terminal.server.url.split("//", 1)[1].rstrip("/")
    assert f"cli-pkg 2.0 (wheel from {source})" in done.stderr
    assert "\r" not in done.stderr  # no progress bar redraws when stderr is not a terminal
    shown = run_python(terminal.python, "import cli_pkg, cli_dep; print(cli_pkg.__version__)")
    assert shown.stdout == "2.0\n", shown.stderr


def test_verbose_shows_why_each_source_was_chosen(terminal: Terminal) -> None:
    terminal.publish("cli-logged", "1.0")
    quiet = terminal.run("plan", "cli-logged")
    assert quiet.returncode == 0, quiet.stderr
    assert "ipydeps: cli-logged 1.0:" not in quiet.stderr  # the trail is there only when asked
    done = terminal.run("install", "-v", "cli-logged")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    # The settings in force, then the decision and its reason: apk is off in this terminal.
    assert f"ipydeps: repository {terminal.server.url}; upstream deny; apk never" in "\n".join(
        lines
    )
    assert any(
        line.startswith(f"ipydeps: cli-logged 1.0: wheel from {terminal.server.url}")
        and line.endswith("; the fastest route that is allowed")
        for line in lines
    ), lines
    assert any(
        line.startswith("ipydeps: cli-logged: ") and "fetched and staged in" in line
        for line in lines
    ), lines
    assert "cli-logged" in done.stdout  # -v's list of what was installed is kept


def test_plan_changes_nothing(terminal: Terminal) -> None:
    terminal.publish("plan-pkg", "1.0")
    before = snapshot(terminal.venv)
    done = terminal.run("plan", "plan-pkg")
    assert done.returncode == 0, done.stderr
    assert "plan-pkg" in done.stdout and "requested" in done.stdout
    assert snapshot(terminal.venv) == before


def test_errors_are_messages_with_exit_code_1(terminal: Terminal) -> None:
    before = snapshot(terminal.venv)
    bad = terminal.run("install", "numpy; import os")
    assert bad.returncode == 1
    assert bad.stderr.startswith("ipydeps: Refused invalid requirement(s)")
    assert "Traceback" not in bad.stderr
    missing = terminal.run("install", "no-such-pkg-anywhere")
    assert missing.returncode == 1
    assert "no-such-pkg-anywhere is not in our repository" in missing.stderr
    assert "Traceback" not in missing.stderr
    assert snapshot(terminal.venv) == before


def test_usage_errors_exit_2(terminal: Terminal) -> None:
    assert terminal.run().returncode == 2
    assert terminal.run("install").returncode == 2
    assert terminal.run("frobnicate").returncode == 2


def test_config_shows_where_values_come_from(terminal: Terminal) -> None:
    done = terminal.run("config")
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if "upstream " in line)
    assert "'deny'" in line and "IPYDEPS_UPSTREAM" in line


def test_requirements_file(terminal: Terminal) -> None:
    terminal.publish("file-pkg", "1.0")
    requirements = terminal.work / "requirements.txt"
    requirements.write_text("# our deps\nfile-pkg>=1  # pinned loosely\n")
    done = terminal.run("install", "-r", str(requirements))
    assert done.returncode == 0, done.stderr
    assert run_python(terminal.python, "import file_pkg").returncode == 0


def test_pip_shim_routes_install_to_ipydeps_and_the_rest_to_pip(terminal: Terminal) -> None:
    terminal.publish("shim-pkg", "1.0")
    shim = ["/bin/sh", str(ROOT / "docker" / "pip-shim")]
    installed = terminal.run(
        "install", "shim-pkg", command=shim, IPYDEPS_PYTHON=str(terminal.python)
    )
    assert installed.returncode == 0, installed.stderr
    source = terminal.server.url.split("//", 1)[1].rstrip("/")
    assert f"shim-pkg 1.0 (wheel from {source})" in installed.stderr
    listed = terminal.run(
        "list", "--format=freeze", command=shim, IPYDEPS_PYTHON=str(terminal.python)
    )
    assert listed.returncode == 0, listed.stderr
    assert "shim-pkg==1.0" in listed.stdout.split()
    # An install option ipydeps does not handle goes to the real pip unchanged.
    passthrough = terminal.run(
        "install", "--no-index", "shim-absent", command=shim, IPYDEPS_PYTHON=str(terminal.python)
    )
    assert passthrough.returncode != 0
    assert (
        "No matching distribution found for shim-absent" in passthrough.stderr + passthrough.stdout
    )


def test_install_prints_its_summary_once(terminal: Terminal) -> None:
    terminal.publish("once-pkg", "1.0")
    terminal.publish("once-verbose", "1.0")
    for requirement, flags in (("once-pkg", ()), ("once-verbose", ("-v",))):
        done = terminal.run("install", *flags, requirement)
        assert done.returncode == 0, done.stderr
        output = done.stdout + done.stderr
        assert output.count(f"Installed {requirement} 1.0") == 1, output
    # -v adds the per-package line (with its timing) below the summary, not a second summary.
    rows = [line.split() for line in done.stdout.splitlines()]
    assert any(row[:3] == ["once-verbose", "1.0", "install"] and row[-1] == "s" for row in rows), (
        done.stdout
    )


def test_an_install_that_cannot_be_met_says_so_once(terminal: Terminal) -> None:
    done = terminal.run("install", "nowhere-else-pkg")
    assert done.returncode == 1, done.stdout + done.stderr
    output = done.stdout + done.stderr
    # The error on stderr, not the plan's problems block on stdout as well.
    assert output.count("nowhere-else-pkg is not in our repository") == 1, output
    assert done.stderr.startswith("ipydeps: Cannot install 'nowhere-else-pkg'"), output


def test_unsatisfiable_dry_run_and_plan_exit_1_with_the_reason(terminal: Terminal) -> None:
    for args in (("install", "--dry-run", "nowhere-pkg"), ("plan", "nowhere-pkg")):
        done = terminal.run(*args)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert (
            "ipydeps: cannot install nowhere-pkg: nowhere-pkg is not in our repository"
            in done.stderr
        ), done.stderr
        assert "Traceback" not in done.stderr
    terminal.publish("dry-ok", "1.0")
    assert terminal.run("install", "--dry-run", "dry-ok").returncode == 0


def test_help_names_every_command_pip_included(terminal: Terminal) -> None:
    done = terminal.run("--help")
    assert done.returncode == 0
    assert "{install,plan,config,pip}" in done.stdout
    assert "anything else runs the real pip" in done.stdout


def test_no_repository_configured_is_said_once_with_how_to_fix_it(terminal: Terminal) -> None:
    terminal.publish("upstream-only", "1.0")
    # No repository, and the upstream index is our own server: packages come "from upstream".
    upstream = terminal.server.url + "simple/"
    done = terminal.run(
        "install",
        "upstream-only",
        IPYDEPS_REPOSITORY_URL="",
        IPYDEPS_UPSTREAM="allow",
        IPYDEPS_UPSTREAM_URL=upstream,
    )
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert output.count("no ipydeps repository is configured") == 1, output
    assert f"every package comes from the upstream index {upstream}" in output
    assert "set IPYDEPS_REPOSITORY_URL" in output
    configured = terminal.run("install", "--dry-run", "upstream-only")
    assert "no ipydeps repository" not in configured.stdout + configured.stderr
    shown = terminal.run("config", IPYDEPS_REPOSITORY_URL="")
    assert "no ipydeps repository is configured" in shown.stdout


def test_hints_name_the_commands_flags_and_each_error_is_said_once(terminal: Terminal) -> None:
    for command in ("install", "plan"):
        done = terminal.run(command, "hint-missing-pkg")
        assert done.returncode == 1, (command, done.stdout, done.stderr)
        # One place, stderr: nothing of the error on stdout, and it is said once.
        assert "hint-missing-pkg" not in done.stdout, (command, done.stdout)
        assert done.stderr.count("hint-missing-pkg is not in our repository") == 1, done.stderr
        assert done.stderr.count("hint:") == 1, done.stderr
        # Upstream is off here: the hint says how to allow it, as this command takes it.
        assert "allow upstream (--upstream allow) if this setup may reach it" in done.stderr
        assert 'upstream="allow"' not in done.stderr and 'upstream = "allow"' not in done.stderr
    terminal.publish("hint-kept", "1.0")
    assert terminal.run("install", "hint-kept").returncode == 0
    again = terminal.run("install", "hint-kept")
    assert again.returncode == 0, again.stderr
    assert "skipped hint-kept: hint-kept 1.0 is already installed (-U looks for newer)" in (
        again.stdout
    )
    assert "upgrade=True" not in again.stdout + again.stderr
    # The pip shim reads pip's words: -U is pip's, upstream is the environment's.
    shim = terminal.run("pip", "install", "hint-missing-pkg")
    assert shim.returncode == 1
    assert shim.stderr.count("hint-missing-pkg is not in our repository") == 1, shim.stderr
    assert "allow upstream (IPYDEPS_UPSTREAM=allow)" in shim.stderr, shim.stderr
    assert "hint-missing-pkg" not in shim.stdout


def test_the_python_api_keeps_its_keywords_in_the_same_hint(terminal: Terminal) -> None:
    code = (
        "import ipydeps\n"
        "from ipydeps.errors import NoCandidateError\n"
        "try:\n"
        "    ipydeps.pip(['hint-missing-pkg'], quiet=True)\n"
        "except NoCandidateError as error:\n"
        "    print(error)\n"
    )
    done = terminal.run(command=[str(terminal.python), "-c", code])
    assert 'allow upstream (upstream="allow") if this setup may reach it' in done.stdout, (
        done.stdout + done.stderr
    )
    assert "--upstream" not in done.stdout


def test_install_and_plan_help_explain_every_option(terminal: Terminal) -> None:
    for command in ("install", "plan"):
        done = terminal.run(command, "--help", COLUMNS="200")
        assert done.returncode == 0, done.stderr
        texts = option_texts(done.stdout)
        options = ("-U", "-q", "-v", "-i", "--profile", "--upstream", "--prefix", "--request-build")
        assert {"-r", *options} <= set(texts)
        assert all(texts.values()), texts  # no option without a word about it
        for option in options:
            assert "default" in texts[option], (command, option, texts[option])
        assert "else allow" in texts["--upstream"]
        assert ("--dry-run" in texts) == (command == "install")


def test_plan_refuses_dry_run_as_a_usage_error_that_says_why(terminal: Terminal) -> None:
    terminal.publish("plan-dry", "1.0")
    for args in (("plan", "--dry-run", "plan-dry"), ("plan", "plan-dry", "--dry-run")):
        done = terminal.run(*args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "plan never changes anything, so it takes no --dry-run" in done.stderr
        assert done.stdout == ""
    assert terminal.run("install", "--dry-run", "plan-dry").returncode == 0
