"""The air gap holds when a pip command goes to the real pip: sealed to our repository, or refused.

Issue 15, item 8: with ``IPYDEPS_UPSTREAM=deny``, ``%pip install --no-deps six`` (an option
ipydeps does not take) ran the real pip, which went to the machine's index. Here the
machine's pip settings (PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_FIND_LINKS and a pip.conf)
all point at a loopback "upstream" that records every request and must receive none;
our repository is another loopback server.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ipydeps.errors import InvalidRequirementError
from ipydeps.handoff import AirGapError, plan_handoff
from ipydeps.settings import load_config
from tests.ipydeps.test_stored_copies import routes_for
from tests.support.loopback import Scripted, ScriptedServer, scripted_server
from tests.support.pipenv import clean_pip_env
from tests.support.venvs import make_venv, run_python, site_packages
from tests.support.wheels import make_wheel

OURS = "http://repo.example:8080/"


def _settings(upstream: str, repository: str | None = OURS) -> object:
    return load_config(
        environ={
            "IPYDEPS_UPSTREAM": upstream,
            **({"IPYDEPS_REPOSITORY_URL": repository} if repository else {}),
        },
        system_path=None,
        user_path=Path("/nonexistent/config.toml"),
    )


MACHINE = {
    "PIP_INDEX_URL": "https://elsewhere.example/simple/",
    "PIP_EXTRA_INDEX_URL": "https://elsewhere.example/extra/",
    "PIP_FIND_LINKS": "https://elsewhere.example/links/",
    "PIP_CONSTRAINT": "/etc/constraints-with-an-index.txt",
    "PIP_CONFIG_FILE": "/etc/elsewhere.conf",
    "PIP_CERT": "/etc/ssl/private-ca.pem",
    "PATH": "/usr/bin",
    "HOME": "/home/u",
}


def test_with_upstream_allowed_pip_runs_as_the_machine_configures_it() -> None:
    # compiler=True: what this machine's PATH holds is the subject of the issue-21 tests below.
    handoff = plan_handoff(
        ["install", "--no-deps", "six"], settings=_settings("allow"), environ=MACHINE, compiler=True
    )
    assert handoff.args == ("install", "--no-deps", "six")
    assert handoff.environ == MACHINE and handoff.notice is None


@pytest.mark.parametrize("upstream", ["allow", "deny"])
def test_pip_never_installs_the_unrelated_project_that_would_replace_ipydeps(upstream: str) -> None:
    with pytest.raises(InvalidRequirementError) as caught:
        plan_handoff(
            ["install", "--no-deps", "six", "IPyDeps>=0.3"],
            settings=_settings(upstream),
            environ=MACHINE,
        )
    assert list(caught.value.problems) == ["IPyDeps>=0.3"]
    assert "would replace this installer" in caught.value.problems["IPyDeps>=0.3"]
    # Other pip commands naming it (uninstall, show) are pip's business.
    plan_handoff(["show", "ipydeps"], settings=_settings(upstream), environ=MACHINE)


def test_with_upstream_denied_pip_is_sealed_to_our_repository() -> None:
    handoff = plan_handoff(
        ["install", "--no-deps", "six"], settings=_settings("deny"), environ=MACHINE, compiler=True
    )
    assert handoff.args == ("install", "--no-deps", "six")
    assert {key: value for key, value in handoff.environ.items() if key.startswith("PIP_")} == {
        "PIP_INDEX_URL": OURS + "simple/",
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_CERT": "/etc/ssl/private-ca.pem",
    }  # kept: it names no package source
    assert handoff.environ["PATH"] == "/usr/bin" and handoff.environ["HOME"] == "/home/u"
    assert handoff.notice is not None
    assert "upstream is off (air-gapped)" in handoff.notice
    assert f"our repository ({OURS}simple/) as its only index" in handoff.notice
    # Without a repository, pip gets no index at all.
    bare = plan_handoff(
        ["download", "six"], settings=_settings("deny", None), environ=MACHINE, compiler=True
    )
    assert bare.environ["PIP_NO_INDEX"] == "1" and "PIP_INDEX_URL" not in bare.environ


def test_credentials_of_our_repository_reach_pip_but_not_the_notice() -> None:
    settings = _settings("deny", "https://reader:s3cret@repo.example/")
    handoff = plan_handoff(["list"], settings=settings, environ={})
    assert handoff.environ["PIP_INDEX_URL"] == "https://reader:s3cret@repo.example/simple/"
    assert handoff.notice is not None and "s3cret" not in handoff.notice


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (
            ["install", "--extra-index-url", "https://pypi.org/simple", "six"],
            "--extra-index-url https://pypi.org/simple adds another index",
        ),
        (["install", "--extra-index-url=https://pypi.org/simple", "six"], "adds another index"),
        (["install", "-i", "https://pypi.org/simple", "six"], "is not our repository"),
        (["install", "-ihttps://pypi.org/simple", "six"], "is not our repository"),
        (["install", "--index-url=https://pypi.org/simple/", "six"], "is not our repository"),
        (["download", "-f", "https://example.org/wheels/", "six"], "is a remote place"),
        (["install", "--find-links=http://example.org/", "six"], "is a remote place"),
        (["install", "https://example.org/six-1.0-py3-none-any.whl"], "is a URL"),
        (["install", "six @ https://example.org/six.whl"], "is a URL"),
        (["install", "-e", "git+https://example.org/six.git#egg=six"], "is a URL"),
        (["--isolated", "install", "six"], "--isolated"),
    ],
)
def test_another_source_on_the_command_line_is_refused(args: list[str], named: str) -> None:
    with pytest.raises(AirGapError) as refused:
        plan_handoff(args, settings=_settings("deny"), environ=MACHINE)
    assert named in str(refused.value)
    assert "upstream is off (air-gapped)" in str(refused.value)
    assert "IPYDEPS_UPSTREAM=allow" in (refused.value.hint or "")
    # Allowed upstream: the same command line runs unchanged.
    assert plan_handoff(args, settings=_settings("allow"), environ=MACHINE).args == tuple(args)


def test_another_source_in_a_requirements_file_is_refused(tmp_path: Path) -> None:
    nested = tmp_path / "nested.txt"
    nested.write_text("--extra-index-url https://pypi.org/simple\nsix\n")
    top = tmp_path / "requirements.txt"
    top.write_text("# pinned\n-r nested.txt\nnumpy==2.0  # comment\n")
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("--index-url=https://pypi.org/simple\n")
    with pytest.raises(AirGapError) as refused:
        plan_handoff(
            ["install", "--no-deps", "-r", str(top), "-c", str(constraints)],
            settings=_settings("deny"),
            environ=MACHINE,
        )
    message = str(refused.value)
    assert f"adds another index (in {nested}) (in {top})" in message
    assert f"is not our repository (in {constraints})" in message


@pytest.mark.parametrize(
    "args",
    [
        ["install", "--no-deps", "six"],
        ["install", "-i", OURS, "six"],
        ["install", "--index-url", OURS + "simple", "six"],
        ["install", "--no-index", "-f", "./wheels", "six"],
        ["install", "./six-1.0-py3-none-any.whl"],
        ["install", "file:///tmp/six-1.0-py3-none-any.whl"],
        ["install", "-e", "."],
        ["install", "--proxy", "http://proxy.example:3128", "six"],
        ["list", "--outdated"],
    ],
)
def test_sources_that_stay_on_our_repository_or_this_machine_are_allowed(args: list[str]) -> None:
    handoff = plan_handoff(args, settings=_settings("deny"), environ=MACHINE)
    assert handoff.args == tuple(args) and handoff.notice is not None


# The real pip, through the CLI's hand-off (python -m ipydeps pip; the pip shim's entry).


@dataclass
class Sites:
    repository: ScriptedServer
    upstream: ScriptedServer
    machine: dict[str, str]  # this "machine's" pip settings: all pointing at upstream


@pytest.fixture
def sites(tmp_path: Path) -> Iterator[Sites]:
    # Not "six": the test venv, which kernels here see, has the real one.
    # Not "six" itself: the test venv, which the kernels here see, has the real one.
    six = make_wheel(
        tmp_path, "gap-six", "1.99", files={"gap_six.py": "WHERE = 'our repository'\n"}
    )
    pip_conf = tmp_path / "pip.conf"
    with scripted_server(routes=routes_for(six, None)) as repository, scripted_server() as upstream:
        pip_conf.write_text(
            f"[global]\nindex-url = {upstream.url}simple/\nextra-index-url = {upstream.url}extra/\n"
        )
        machine = {
            "PIP_INDEX_URL": upstream.url + "simple/",
            "PIP_EXTRA_INDEX_URL": upstream.url + "extra/",
            "PIP_FIND_LINKS": upstream.url + "links/",
            "PIP_CONFIG_FILE": str(pip_conf),
        }
        yield Sites(repository, upstream, machine)


def _cli(python: Path, sites: Sites, work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environ = clean_pip_env(
        IPYDEPS_UPSTREAM="deny",
        IPYDEPS_REPOSITORY_URL=sites.repository.url,
        HOME=str(work),
        XDG_CONFIG_HOME=str(work / "config"),
    )
    environ.update(sites.machine)
    return subprocess.run(
        [str(python), "-m", "ipydeps", "pip", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=300,
        check=False,
    )


def test_a_hand_off_to_the_real_pip_reaches_only_our_repository(
    tmp_path: Path, sites: Sites
) -> None:
    python = make_venv(tmp_path / "env", see_test_packages=True)
    done = _cli(python, sites, tmp_path, "install", "--no-deps", "gap-six")
    assert done.returncode == 0, done.stderr + done.stdout
    assert sites.upstream.requests == []
    assert "/simple/gap-six/" in sites.repository.requests
    assert "upstream is off (air-gapped)" in done.stderr
    assert f"our repository ({sites.repository.url}simple/) as its only index" in done.stderr
    assert (site_packages(tmp_path / "env") / "gap_six-1.99.dist-info").is_dir()
    assert run_python(python, "import gap_six; print(gap_six.WHERE)").stdout == "our repository\n"


def test_a_hand_off_naming_another_index_is_refused_before_pip_runs(
    tmp_path: Path, sites: Sites
) -> None:
    python = make_venv(tmp_path / "env", see_test_packages=True)
    done = _cli(
        python,
        sites,
        tmp_path,
        "install",
        "--no-deps",
        "--extra-index-url",
        sites.upstream.url + "simple/",
        "gap-six",
    )
    assert done.returncode == 1
    assert "ipydeps: Refused `pip install --no-deps --extra-index-url" in done.stderr
    assert "adds another index" in done.stderr
    assert sites.upstream.requests == [] and sites.repository.requests == []
    assert not (site_packages(tmp_path / "env") / "gap_six-1.99.dist-info").exists()


@pytest.mark.e2e
def test_the_pip_magic_hands_off_within_the_air_gap_in_a_real_kernel(
    tmp_path: Path, sites: Sites
) -> None:
    from tests.support.kernels import Kernel

    python = make_venv(tmp_path / "env", see_test_packages=True)
    kernel = Kernel(
        python,
        tmp_path,
        {
            "IPYDEPS_UPSTREAM": "deny",
            "IPYDEPS_APK": "never",
            "IPYDEPS_REPOSITORY_URL": sites.repository.url,
            "HOME": str(tmp_path),
            **sites.machine,
        },
    )
    try:
        assert kernel.run("%load_ext ipydeps").error is None
        refused = kernel.run(f"%pip install --extra-index-url {sites.upstream.url}simple/ gap-six")
        installed = kernel.run("%pip install --no-deps gap-six")
        imported = kernel.run("import gap_six; print(gap_six.WHERE)")
    finally:
        kernel.stop()
    # A refused install fails its cell (so Run All stops), as its message alone.
    assert refused.error is not None and refused.error["ename"] == "AirGapError", refused.text
    assert "adds another index" in refused.error["traceback"][0], refused.text
    assert "upstream is off (air-gapped)" in installed.stderr, installed.text
    assert imported.stdout == "our repository\n", imported.text
    assert sites.upstream.requests == []


# Issue 21: a runtime without a compiler hands pip wheels only, so nothing builds for minutes.


def test_without_a_compiler_pip_takes_prebuilt_wheels_only() -> None:
    for upstream in ("allow", "deny"):
        handoff = plan_handoff(
            ["install", "--no-deps", "scikit-learn"],
            settings=_settings(upstream),
            environ=MACHINE,
            compiler=False,
        )
        assert handoff.environ["PIP_ONLY_BINARY"] == ":all:"
        assert handoff.notice is not None
        assert "this runtime has no compiler, so pip takes prebuilt wheels only" in handoff.notice


def test_with_a_compiler_or_the_users_own_choice_pip_is_left_alone(tmp_path: Path) -> None:
    allow = _settings("allow")
    args = ["install", "--no-deps", "scikit-learn"]
    assert plan_handoff(args, settings=allow, environ=MACHINE, compiler=True).environ == MACHINE
    for chosen in (["--no-binary", ":all:"], ["--only-binary=:none:"]):
        handoff = plan_handoff(args + chosen, settings=allow, environ=MACHINE, compiler=False)
        assert "PIP_ONLY_BINARY" not in handoff.environ
    mine = {**MACHINE, "PIP_ONLY_BINARY": "numpy"}
    assert plan_handoff(args, settings=allow, environ=mine, compiler=False).environ == mine
    # Sealed (air-gapped), the machine's variable is dropped, so the guard still applies.
    sealed = plan_handoff(args, settings=_settings("deny"), environ=mine, compiler=False)
    assert sealed.environ["PIP_ONLY_BINARY"] == ":all:"
    listing = plan_handoff(["list"], settings=allow, environ=MACHINE, compiler=False)
    assert "PIP_ONLY_BINARY" not in listing.environ
    # The probe reads PATH: a PATH with no cc, gcc or clang has no compiler.
    empty = tmp_path / "bin"
    empty.mkdir()
    probed = plan_handoff(args, settings=allow, environ={**MACHINE, "PATH": str(empty)})
    assert probed.environ["PIP_ONLY_BINARY"] == ":all:"


def test_a_source_only_project_fails_at_once_without_a_compiler(tmp_path: Path) -> None:
    # A real pip, handed off by `python -m ipydeps pip`, on a PATH without a compiler:
    # it refuses the index's sdist without downloading it or installing build dependencies.
    sdist = b"not even a tarball: pip must never read it"
    digest = hashlib.sha256(sdist).hexdigest()
    page = f'<a href="/files/demo-ext-1.0.tar.gz#sha256={digest}">demo-ext-1.0.tar.gz</a>'
    routes = {
        "/simple/demo-ext/": Scripted(body=page.encode(), content_type="text/html"),
        "/files/demo-ext-1.0.tar.gz": Scripted(body=sdist),
    }
    python = make_venv(tmp_path / "env", see_test_packages=True)
    no_cc = tmp_path / "bin"
    no_cc.mkdir()
    with scripted_server(routes=routes) as repository:
        environ = clean_pip_env(
            IPYDEPS_UPSTREAM="deny",
            IPYDEPS_REPOSITORY_URL=repository.url,
            HOME=str(tmp_path),
            XDG_CONFIG_HOME=str(tmp_path / "config"),
            PATH=str(no_cc),
        )
        done = subprocess.run(
            [str(python), "-m", "ipydeps", "pip", "install", "--no-deps", "demo-ext"],
            capture_output=True,
            text=True,
            env=environ,
            timeout=300,
            check=False,
        )
    assert done.returncode != 0
    assert "this runtime has no compiler" in done.stderr
    assert "No matching distribution found for demo-ext" in done.stderr + done.stdout
    assert "/files/demo-ext-1.0.tar.gz" not in repository.requests
    assert "build dependencies" not in done.stdout + done.stderr
