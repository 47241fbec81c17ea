"""The ``ipydeps-repo`` command line: keygen, token, publish, index, exit codes."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

from tests.support.elf import make_elf
from tests.support.help_text import option_texts
from tests.support.pipenv import clean_pip_env
from tests.support.server import RunningServer, repo_cli, start_server
from tests.support.wheels import make_wheel


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ipydeps_repo", *args],
        capture_output=True,
        text=True,
        env=clean_pip_env(**env),
        timeout=300,
    )


def test_keygen_writes_private_key_0600_and_publishes_public_key(tmp_path: Path) -> None:
    result = repo_cli("keygen", "--name", "maint", "--bits", "2048", data=tmp_path)
    name = result.stdout.splitlines()[-1]
    assert name.startswith("maint-") and name.endswith(".rsa")
    private = tmp_path / "keys" / name
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    public = tmp_path / "tree" / "keys" / f"{name}.pub"
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")


def test_keygen_refuses_to_overwrite_unless_forced(tmp_path: Path) -> None:
    first = repo_cli("keygen", "--name", "maint", "--bits", "2048", data=tmp_path)
    old = first.stdout.splitlines()[-1]
    again = repo_cli("keygen", "--name", "maint", "--bits", "2048", data=tmp_path, check=False)
    assert again.returncode == 1
    assert f"error: a signing key already exists: {tmp_path / 'keys' / old}" in again.stderr
    assert "Traceback" not in again.stderr
    forced = repo_cli("keygen", "--name", "maint", "--bits", "2048", "--force", data=tmp_path)
    new = forced.stdout.splitlines()[-1]
    assert sorted(p.name for p in (tmp_path / "keys").glob("*.rsa")) == [new]
    # The old public key stays published so packages signed with it still verify.
    published = sorted(p.name for p in (tmp_path / "tree" / "keys").iterdir())
    assert published == sorted([f"{old}.pub", f"{new}.pub"])


def test_token_create_list_revoke(tmp_path: Path) -> None:
    token = repo_cli("token", "create", "alice", data=tmp_path).stdout.splitlines()[-1]
    repo_cli("token", "create", "ci", "--no-force", data=tmp_path)
    stored = (tmp_path / "state" / "tokens.json").read_text()
    assert token not in stored
    assert stat.S_IMODE((tmp_path / "state" / "tokens.json").stat().st_mode) == 0o600
    listing = repo_cli("token", "list", data=tmp_path).stdout
    assert token not in listing
    alice = next(line for line in listing.splitlines() if line.startswith("alice"))
    assert f"...{token[-4:]}" in alice
    assert alice.endswith("active")
    assert "upload " in next(line for line in listing.splitlines() if line.startswith("ci "))
    repo_cli("token", "revoke", "alice", data=tmp_path)
    listing = repo_cli("token", "list", data=tmp_path).stdout
    alice = next(line for line in listing.splitlines() if line.startswith("alice"))
    assert "revoked 20" in alice


def test_token_errors_exit_1_with_message(tmp_path: Path) -> None:
    repo_cli("token", "create", "alice", data=tmp_path)
    duplicate = repo_cli("token", "create", "alice", data=tmp_path, check=False)
    assert duplicate.returncode == 1
    assert "error: a token named 'alice' already exists" in duplicate.stderr
    missing = repo_cli("token", "revoke", "bob", data=tmp_path, check=False)
    assert missing.returncode == 1
    assert "error: no token named 'bob'" in missing.stderr
    bad = repo_cli("token", "create", "no spaces", data=tmp_path, check=False)
    assert bad.returncode == 1
    assert "token name 'no spaces' is invalid" in bad.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run("no-such-command").returncode == 2
    assert run("token", "--data", str(tmp_path)).returncode == 2
    assert run("serve", "--port", "eighty", "--data", str(tmp_path)).returncode == 2


def test_help_lists_every_command() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("serve", "keygen", "token", "wrap", "publish", "index"):
        assert command in result.stdout


def test_data_directory_comes_from_the_environment(tmp_path: Path) -> None:
    result = run("token", "create", "env", IPYDEPS_REPO_DATA=str(tmp_path / "from-env"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "from-env" / "state" / "tokens.json").exists()


def test_publish_command_uploads_and_reports(repo_server: RunningServer, tmp_path: Path) -> None:
    first = make_wheel(tmp_path, "demo", "1.0")
    second = make_wheel(tmp_path, "demo", "1.1")
    args = [
        "publish",
        str(first),
        str(second),
        "--url",
        repo_server.url,
        "--token",
        repo_server.token,
        "--data",
        str(tmp_path),
    ]
    result = run(*args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith(f"created   files/demo/{first.name} sha256=")
    again = run(*args)
    assert again.stdout.splitlines()[1].startswith(f"unchanged files/demo/{second.name}")
    bad = run(
        "publish", str(first), "--url", repo_server.url, "--token", "nope", "--data", str(tmp_path)
    )
    assert bad.returncode == 1
    assert f"error: {first.name}: invalid token" in bad.stderr


def test_index_rebuilds_lost_pages(repo_server: RunningServer, tmp_path: Path) -> None:
    for version in ("1.0", "1.1"):
        repo_server.upload(make_wheel(tmp_path, "demo", version))
    repo_server.upload(make_wheel(tmp_path, "other", "0.1"))
    simple = repo_server.data / "tree" / "simple"
    expected = (simple / "demo" / "index.json").read_text()
    for page in simple.rglob("index.*"):
        page.unlink()
    (repo_server.data / "tree/files/demo/demo-1.0-py3-none-any.whl.metadata").unlink()
    result = repo_cli("index", data=repo_server.data)
    assert "[1/2] simple/demo/" in result.stderr
    assert "[2/2] simple/other/" in result.stderr
    rebuilt = json.loads((simple / "demo" / "index.json").read_text())
    assert rebuilt["files"] == json.loads(expected)["files"]
    assert (repo_server.data / "tree/files/demo/demo-1.0-py3-none-any.whl.metadata").exists()
    assert json.loads((simple / "index.json").read_text())["projects"] == [
        {"name": "demo"},
        {"name": "other"},
    ]


def test_wrap_then_publish_an_apk(repo_server: RunningServer, tmp_path: Path) -> None:
    from ipydeps_repo.apk.keys import load_public_keys
    from ipydeps_repo.apk.verify import verify_index

    wheel = make_wheel(tmp_path, "demo", "1.2", requires=["numpy>=1.26"])
    out = tmp_path / "apks"
    out.mkdir()
    wrapped = repo_cli(
        "wrap",
        str(wheel),
        "--branch",
        "v3.22",
        "--python",
        "3.12",
        "--arch",
        "x86_64",
        "--pkgrel",
        "1",
        "--output",
        str(out),
        data=repo_server.data,
    )
    apk = Path(wrapped.stdout.splitlines()[-1])
    assert apk == out / "py3-demo-1.2-r1.apk"
    result = run(
        "publish",
        str(apk),
        "--arch",
        "x86_64",
        "--url",
        repo_server.url,
        "--token",
        repo_server.token,
        "--data",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("created   alpine/v3.22/sci/x86_64/py3-demo-1.2-r1.apk")
    index = (repo_server.data / "tree/alpine/v3.22/sci/x86_64/APKINDEX.tar.gz").read_bytes()
    _, records = verify_index(index, load_public_keys(repo_server.data / "tree" / "keys"))
    (record,) = records
    assert (record.name, record.version, record.arch) == ("py3-demo", "1.2-r1", "x86_64")
    assert "py3-numpy>=1.26" in record.depends


def test_wrap_so_map_names_the_apk_of_another_wheels_library(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    from ipydeps_repo.apk.package import read_apk

    # torchvision links torch's libc10.so, which torch ships in site-packages, not /usr/lib.
    core = make_elf(needed=["libc10.so", "libc.musl-x86_64.so.1"])
    wheel = make_wheel(
        tmp_path,
        "vision",
        "1.0",
        tag="cp312-cp312-musllinux_1_2_x86_64",
        files={"vision/__init__.py": "", "vision/_C.so": core},
    )
    out = tmp_path / "apks"
    out.mkdir()
    repo_cli(
        "wrap",
        str(wheel),
        "--so-map",
        "libc10.so=py3-torch",
        "--output",
        str(out),
        data=repo_server.data,
    )
    (apk,) = out.glob("*.apk")
    assert read_apk(apk.read_bytes()).info.depends == (
        "python3~3.12",
        "so:libc.musl-x86_64.so.1",
        "py3-torch",
    )
    bad = repo_cli("wrap", str(wheel), "--so-map", "libc10.so", data=repo_server.data, check=False)
    assert bad.returncode == 2 and "expected LIB=APK, got 'libc10.so'" in bad.stderr


def test_wrap_without_a_key_says_to_run_keygen(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "demo", "1.0")
    result = repo_cli(
        "wrap", str(wheel), "--output", str(tmp_path), data=tmp_path / "empty", check=False
    )
    assert result.returncode == 1
    assert f"error: no signing key in {tmp_path / 'empty' / 'keys'}" in result.stderr
    assert "hint: run 'ipydeps-repo keygen --name NAME --data DIR' first" in result.stderr


def test_serve_on_a_busy_port_exits_1(repo_server: RunningServer) -> None:
    port = repo_server.url.rstrip("/").rsplit(":", 1)[1]
    result = repo_cli(
        "serve", "--host", "127.0.0.1", "--port", port, data=repo_server.data, check=False
    )
    assert result.returncode == 1
    assert f"error: cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert "hint: choose another --port, or 0 for any free port" in result.stderr


def test_serve_help_gives_the_default_port_and_every_options_default() -> None:
    done = run("serve", "--help", COLUMNS="200")
    assert done.returncode == 0, done.stderr
    texts = option_texts(done.stdout)
    del texts["-h"]
    assert "(default: 8080)" in texts["--port"]
    assert "(default: 127.0.0.1" in texts["--host"]
    missing = {option: text for option, text in texts.items() if "default" not in text}
    assert not missing, missing


def test_token_create_output_writes_the_token_to_a_private_file_and_says_so(
    tmp_path: Path,
) -> None:
    server = start_server(tmp_path / "data")
    try:
        target = tmp_path / "publish-token"
        (tmp_path / "wheels").mkdir()
        done = repo_cli("token", "create", "quick", "--output", str(target), data=server.data)
        token = target.read_text().strip()
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        # Nothing promises a token that is not there: the message says where it went.
        assert done.stdout == ""
        assert f"written to {target} (mode 0600)" in done.stderr
        assert "shown only once" not in done.stderr and token not in done.stderr
        # The token in the file is the real one: the running server takes an upload with it.
        status, body = server.upload(
            make_wheel(tmp_path / "wheels", "out-token", "1.0"), token=token
        )
        assert status == 201, body
        nowhere = tmp_path / "no-such-folder" / "token"
        refused = repo_cli(
            "token", "create", "lost", "--output", str(nowhere), data=server.data, check=False
        )
        assert refused.returncode == 1
        assert f"cannot write the token to {nowhere}" in refused.stderr
        # Refused before it was made: no token nobody holds.
        assert "lost" not in repo_cli("token", "list", data=server.data).stdout
    finally:
        server.stop()
