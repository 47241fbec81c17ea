"""Proxies with credentials, as pip takes them: Proxy-Authorization, CONNECT, NO_PROXY, redaction.

A real forward proxy on 127.0.0.1 (tests/support/proxy.py) wants Basic credentials and is
the only one that can resolve the repository's name (``repo.example``), as behind a
corporate proxy; the repository is a loopback server, over http or https.
"""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

import ipydeps
from ipydeps.errors import RepositoryError
from ipydeps.proxies import bypasses_proxy, describe_proxies, parse_proxy
from tests.ipydeps.test_stored_copies import routes_for
from tests.support.loopback import scripted_server
from tests.support.pipenv import clean_pip_env
from tests.support.proxy import auth_proxy
from tests.support.tls import make_certificates
from tests.support.venvs import make_venv, run_python
from tests.support.wheels import make_wheel

ROOT = Path(__file__).resolve().parents[2]
USER, SECRET = "proxy-user", "s3cr@t:pw"
QUOTED = "s3cr%40t%3Apw"  # the secret as it is written in a URL
AUTHORIZATION = "Basic " + base64.b64encode(f"{USER}:{SECRET}".encode()).decode()


@pytest.fixture(autouse=True)
def _no_machine_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.lower().endswith("_proxy"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("IPYDEPS_RETRIES", "1")
    monkeypatch.delenv("IPYDEPS_STORED_COPIES", raising=False)


def _install(url: str, tmp_path: Path) -> tuple[ipydeps.Result, str]:
    make_venv(tmp_path / "env")
    out = io.StringIO()
    result = ipydeps.pip(
        ["proxied-pkg"], index_url=url, upstream="deny", prefix=tmp_path / "env", stream=out
    )
    return result, out.getvalue()


def _wheel(tmp_path: Path) -> Path:
    return make_wheel(
        tmp_path, "proxied-pkg", "1.0", files={"proxied_pkg/__init__.py": "VIA = 'proxy'\n"}
    )


def test_plain_http_through_a_proxy_with_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = _wheel(tmp_path)
    with (
        scripted_server(routes=routes_for(wheel, None)) as repository,
        auth_proxy(AUTHORIZATION, {"repo.example": "127.0.0.1"}) as proxy,
    ):
        monkeypatch.setenv("HTTP_PROXY", f"http://{USER}:{QUOTED}@127.0.0.1:{proxy.port}")
        result, output = _install(f"http://repo.example:{repository.port}/", tmp_path)
    assert [item.name for item in result.installed] == ["proxied-pkg"]
    assert proxy.asked, "nothing went through the proxy"
    assert {asked.authorization for asked in proxy.asked} == {AUTHORIZATION}
    assert f"http://repo.example:{repository.port}/files/{wheel.name}" in [
        asked.target for asked in proxy.asked
    ]
    # The origin never sees the proxy's credentials.
    assert not any("Proxy-Authorization" in headers for headers in repository.headers)
    assert SECRET not in output and QUOTED not in output
    python = tmp_path / "env" / "bin" / "python"
    assert run_python(python, "import proxied_pkg; print(proxied_pkg.VIA)").stdout == "proxy\n"


def test_https_through_a_connect_tunnel_with_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The setting: an https:// proxy URL with credentials (the proxy speaks plain
    # HTTP, as squid on 3128 does); TLS runs end to end with the repository.
    certificates = make_certificates(tmp_path, "repo.example")
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates.ca))
    wheel = _wheel(tmp_path)
    with (
        scripted_server(
            routes=routes_for(wheel, None), tls=certificates.server_context()
        ) as repository,
        auth_proxy(AUTHORIZATION, {"repo.example": "127.0.0.1"}) as proxy,
    ):
        monkeypatch.setenv("HTTPS_PROXY", f"https://{USER}:{QUOTED}@127.0.0.1:{proxy.port}")
        result, output = _install(f"https://repo.example:{repository.port}/", tmp_path)
    assert [item.name for item in result.installed] == ["proxied-pkg"]
    assert {(asked.method, asked.target, asked.authorization) for asked in proxy.asked} == {
        ("CONNECT", f"repo.example:{repository.port}", AUTHORIZATION)
    }
    assert f"/files/{wheel.name}" in repository.requests
    assert SECRET not in output and QUOTED not in output


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_wrong_proxy_credentials_are_a_clear_error_without_the_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scheme: str
) -> None:
    certificates = make_certificates(tmp_path, "repo.example")
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates.ca))
    wheel = _wheel(tmp_path)
    tls = certificates.server_context() if scheme == "https" else None
    with (
        scripted_server(routes=routes_for(wheel, None), tls=tls) as repository,
        auth_proxy(AUTHORIZATION, {"repo.example": "127.0.0.1"}) as proxy,
    ):
        monkeypatch.setenv(
            f"{scheme.upper()}_PROXY", f"http://{USER}:wrong-{QUOTED}@127.0.0.1:{proxy.port}"
        )
        with pytest.raises(RepositoryError) as refused:
            _install(f"{scheme}://repo.example:{repository.port}/", tmp_path)
    shown = f"{refused.value}\n{refused.value.hint}"
    assert "407" in shown and "HTTPS_PROXY=http://user:password@" in shown
    assert SECRET not in shown and QUOTED not in shown and "wrong" not in shown
    assert len(proxy.asked) == 1  # a refusal is not retried
    assert repository.requests == []


def test_no_proxy_hosts_are_reached_directly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = _wheel(tmp_path)
    with (
        scripted_server(routes=routes_for(wheel, None), host="127.0.0.2") as repository,
        auth_proxy(AUTHORIZATION, {}) as proxy,
    ):
        monkeypatch.setenv("HTTP_PROXY", f"http://{USER}:{QUOTED}@127.0.0.1:{proxy.port}")
        monkeypatch.setenv("NO_PROXY", "internal.example,127.0.0.0/8")
        result, _ = _install(repository.url, tmp_path)
    assert [item.name for item in result.installed] == ["proxied-pkg"]
    assert proxy.asked == []


@pytest.mark.parametrize(
    ("host", "port", "no_proxy", "direct"),
    [
        ("repo.example", 80, "", False),
        ("localhost", 80, "", True),
        ("127.0.0.1", 80, "", True),
        ("repo.example", 80, "*", True),
        ("repo.example", 80, "other.example, repo.example", True),
        ("files.repo.example", 80, ".repo.example", True),
        ("files.repo.example", 80, "repo.example", True),
        ("notrepo.example", 80, "repo.example", False),
        ("repo.example", 8080, "repo.example:8080", True),
        ("repo.example", 80, "repo.example:8080", False),
        ("10.1.2.3", 80, "10.0.0.0/8", True),
        ("192.168.1.1", 80, "10.0.0.0/8", False),
        ("fd00::1", 80, "fd00::/8", True),
        ("::1", 80, "", True),
    ],
)
def test_no_proxy_entries(host: str, port: int, no_proxy: str, direct: bool) -> None:
    assert bypasses_proxy(host, port, no_proxy) is direct


def test_proxy_urls_are_read_as_pip_reads_them() -> None:
    proxy = parse_proxy(f"https://{USER}:{QUOTED}@proxy.corp:3128")
    assert (proxy.host, proxy.port) == ("proxy.corp", 3128)
    assert proxy.headers == {"Proxy-Authorization": AUTHORIZATION}
    assert SECRET not in repr(proxy) and QUOTED not in repr(proxy)
    assert parse_proxy("proxy.corp:8080").headers == {}
    assert (parse_proxy("http://proxy.corp").port, parse_proxy("https://proxy.corp").port) == (
        80,
        443,
    )
    with pytest.raises(ValueError, match=r"user:\*\*\*@") as bad:
        parse_proxy(f"http://user:{QUOTED}@proxy.corp:port")
    assert QUOTED not in str(bad.value)


def test_the_config_command_shows_proxies_without_their_secret() -> None:
    shown = describe_proxies(
        {"https": f"http://{USER}:{QUOTED}@proxy.corp:3128", "no": "internal.example"}
    )
    assert f"http://{USER}:***@proxy.corp:3128" in shown and "internal.example" in shown
    assert QUOTED not in shown
    environ = clean_pip_env(
        HTTPS_PROXY=f"http://{USER}:{QUOTED}@proxy.corp:3128",
        PYTHONPATH=str(ROOT),
        HOME="/nonexistent",
    )
    done = subprocess.run(
        [sys.executable, "-m", "ipydeps", "config"],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"http://{USER}:***@proxy.corp:3128" in done.stdout
    assert QUOTED not in done.stdout + done.stderr
