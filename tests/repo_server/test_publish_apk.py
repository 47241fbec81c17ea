"""Publishing apks over the upload API: verified, indexed, signed, and refused when untrusted."""

from __future__ import annotations

import gzip
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ipydeps_repo.apk.keys import SigningKey, generate_key, load_key, load_public_keys
from ipydeps_repo.apk.package import ApkEntry, build_apk
from ipydeps_repo.apk.pkginfo import PkgInfo
from ipydeps_repo.apk.verify import verify_index, verify_repository

from tests.support.server import RunningServer, repo_cli

INDEX = "alpine/v3.22/sci/x86_64/APKINDEX.tar.gz"


def server_key(server: RunningServer) -> SigningKey:
    (path,) = (server.data / "keys").glob("*.rsa")
    return load_key(path)


def make_apk(
    directory: Path, name: str, version: str, key: SigningKey, *, arch: str = "x86_64"
) -> Path:
    info = PkgInfo(
        pkgname=name,
        pkgver=version,
        arch=arch,
        pkgdesc=f"{name} fixture",
        url="https://example.org",
        license="MIT",
        builddate=1700000000,
    )
    data = build_apk([ApkEntry.file(f"usr/share/{name}/VERSION", version.encode())], info, key)
    path = directory / f"{name}-{version}.apk"
    path.write_bytes(data)
    return path


def published_index(server: RunningServer, index: str = INDEX) -> dict[str, str]:
    status, _, body = server.get(index)
    assert status == 200
    trusted = load_public_keys(server.data / "tree" / "keys")
    _, records = verify_index(body, trusted)
    return {record.name: record.version for record in records}


def test_apk_is_published_and_indexed(repo_server: RunningServer, tmp_path: Path) -> None:
    apk = make_apk(tmp_path, "py3-demo", "1.0-r0", server_key(repo_server))
    status, body = repo_server.upload(apk, query="branch=v3.22&repo=sci")
    assert status == 201, body
    assert body["path"] == "alpine/v3.22/sci/x86_64/py3-demo-1.0-r0.apk"
    assert published_index(repo_server) == {"py3-demo": "1.0-r0"}
    assert repo_server.get(body["path"])[2] == apk.read_bytes()
    # apk's own view of the whole directory: every listed package verifies.
    trusted = load_public_keys(repo_server.data / "tree" / "keys")
    verify_repository(repo_server.data / "tree/alpine/v3.22/sci/x86_64", trusted)
    listing = json.loads(repo_server.get("api/v1/packages")[2])
    assert listing["apks"]["v3.22/sci/x86_64"][0]["name"] == "py3-demo"
    assert listing["apks"]["v3.22/sci/x86_64"][0]["version"] == "1.0-r0"


def test_noarch_apk_goes_to_the_requested_arch(repo_server: RunningServer, tmp_path: Path) -> None:
    apk = make_apk(tmp_path, "py3-pure", "2.0-r1", server_key(repo_server), arch="noarch")
    status, body = repo_server.upload(apk, query="branch=edge&repo=sci&arch=aarch64")
    assert status == 201, body
    assert published_index(repo_server, "alpine/edge/sci/aarch64/APKINDEX.tar.gz") == {
        "py3-pure": "2.0-r1"
    }


def test_apk_from_a_trusted_builder_key(repo_server: RunningServer, tmp_path: Path) -> None:
    builder = generate_key("builder", bits=2048)
    apk = make_apk(tmp_path, "py3-demo", "1.0-r0", builder)
    status, body = repo_server.upload(apk)
    assert status == 400
    assert f"signed by untrusted key(s) {builder.public_name}" in body["error"]
    assert "UNTRUSTED" in body["error"]
    assert not (repo_server.data / "tree/alpine/v3.22/sci/x86_64/py3-demo-1.0-r0.apk").exists()
    trusted = repo_server.data / "trusted-keys"
    trusted.mkdir()
    (trusted / builder.public_name).write_bytes(builder.public_pem())
    status, body = repo_server.upload(apk)
    assert status == 201, body
    # The index is still signed with the repository's own key.
    assert published_index(repo_server) == {"py3-demo": "1.0-r0"}


def test_tampered_apk_is_refused(repo_server: RunningServer, tmp_path: Path) -> None:
    apk = make_apk(tmp_path, "py3-demo", "1.0-r0", server_key(repo_server))
    other = make_apk(tmp_path, "py3-demo2", "1.0-r0", server_key(repo_server))
    # Keep the signed control part, swap in another package's data member: the signature
    # still matches, but the datahash in .PKGINFO no longer does.
    data, other_data = apk.read_bytes(), other.read_bytes()
    tampered = tmp_path / "tampered" / apk.name
    tampered.parent.mkdir()
    tampered.write_bytes(
        data[: data.rfind(b"\x1f\x8b\x08")] + other_data[other_data.rfind(b"\x1f\x8b\x08") :]
    )
    status, body = repo_server.upload(tampered)
    assert status == 400
    assert "datahash mismatch" in body["error"]
    assert repo_server.get(INDEX)[0] == 404


def test_apk_name_must_match_its_content(repo_server: RunningServer, tmp_path: Path) -> None:
    apk = make_apk(tmp_path, "py3-demo", "1.0-r0", server_key(repo_server))
    renamed = apk.rename(tmp_path / "py3-other-1.0-r0.apk")
    status, body = repo_server.upload(renamed)
    assert status == 400
    assert body["problems"] == [
        "the package inside is py3-demo-1.0-r0.apk (name-version from .PKGINFO)"
    ]


def test_bad_branch_is_refused(repo_server: RunningServer, tmp_path: Path) -> None:
    apk = make_apk(tmp_path, "py3-demo", "1.0-r0", server_key(repo_server))
    status, body = repo_server.upload(apk, query="branch=..%2F..&repo=sci")
    assert status == 400
    assert "branch '../..' is not like 'v3.22' or 'edge'" in body["problems"]


def test_concurrent_apk_publishes_all_land_in_a_valid_index(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    key = server_key(repo_server)
    apks = [make_apk(tmp_path, f"py3-pkg{n}", "1.0-r0", key) for n in range(20)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lambda path: repo_server.upload(path), apks))
    assert [status for status, _ in results] == [201] * 20
    assert published_index(repo_server) == {f"py3-pkg{n}": "1.0-r0" for n in range(20)}


def test_index_command_resigns_after_key_rotation(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    repo_server.upload(make_apk(tmp_path, "py3-demo", "1.0-r0", server_key(repo_server)))
    old_index = (repo_server.data / "tree" / INDEX).read_bytes()
    repo_cli("keygen", "--name", "rotated", "--bits", "2048", "--force", data=repo_server.data)
    result = repo_cli("index", data=repo_server.data)
    assert "[1/1] alpine/v3.22/sci/x86_64/" in result.stderr
    new_index = (repo_server.data / "tree" / INDEX).read_bytes()
    assert new_index != old_index
    new_key = server_key(repo_server)
    _, records = verify_index(new_index, {new_key.public_name: new_key.public_key()})
    assert [record.name for record in records] == ["py3-demo"]
    assert gzip.decompress(new_index)  # one readable gzip stream chain


def test_index_leaves_out_files_dropped_into_the_tree_by_hand(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    repo_server.upload(make_apk(tmp_path, "py3-good", "1.0-r0", server_key(repo_server)))
    stranger = generate_key("stranger", bits=2048)
    folder = repo_server.data / "tree/alpine/v3.22/sci/x86_64"
    make_apk(folder, "py3-evil", "6.6-r6", stranger)
    (repo_server.data / "tree/files/junk").mkdir(parents=True)
    (repo_server.data / "tree/files/junk/junk-1.0-py3-none-any.whl").write_bytes(b"not a zip")
    result = repo_cli("index", data=repo_server.data, check=False)
    assert result.returncode == 1
    assert (
        "skipped: alpine/v3.22/sci/x86_64/py3-evil-6.6-r6.apk: py3-evil-6.6-r6.apk is invalid: "
        "signed by untrusted key(s)" in result.stderr
    )
    assert (
        "skipped: files/junk/junk-1.0-py3-none-any.whl: wheel 'junk-1.0-py3-none-any.whl' "
        "is invalid: the file is not a zip archive" in result.stderr
    )
    assert "error: 2 invalid file(s) in the tree were left out of the indexes" in result.stderr
    assert published_index(repo_server) == {"py3-good": "1.0-r0"}
    assert repo_server.get("simple/junk/")[0] == 404
