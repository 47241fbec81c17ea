"""The farm's musl builds of NumPy, pandas and scikit-learn, used on the musl harness (slow).

``ipydeps-repo farm build --target musl-cp311-x86_64`` builds OpenBLAS (C LAPACK), NumPy,
pandas and scikit-learn from source with zig (hours the first time; the farm cache under
``.cache/farm`` makes later runs skip) and publishes them to a fresh server. SciPy and the pure
dependencies come from upstream musllinux wheels, wrapped. Then apk's view: the planner's
resolver installs py3-numpy, py3-pandas and py3-scikit-learn with ONE ``openblas`` apk; the
apks are laid out under a system prefix and used: numpy.linalg through the shared library,
a pandas groupby, and a scikit-learn fit/predict compared with a glibc scikit-learn from PyPI.
The sizes (shared OpenBLAS vs each upstream wheel's bundled copy) go to
``.cache/farm-out/musl-sizes.json``. And ipydeps in a musl kernel installs the farm's
scikit-learn wheel from the repository (upstream has no musl scikit-learn to fall back on).
"""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from ipydeps.apkclosure import InstalledApks, resolve_apks
from ipydeps.formats.apkindex import parse_apkindex, read_apkindex_archive
from tests.support.kernels import Kernel
from tests.support.musl import CACHE, PLATFORM, link_copy, python_version
from tests.support.pipenv import clean_pip_env
from tests.support.server import RunningServer, repo_cli
from tests.support.venvs import site_packages

pytestmark = [pytest.mark.musl, pytest.mark.slow, pytest.mark.e2e, pytest.mark.network,
              pytest.mark.timeout(6 * 3600)]  # fmt: skip

ROOT = Path(__file__).resolve().parents[2]
FARM_CACHE = ROOT / ".cache" / "farm"
TARGET = "musl-cp311-x86_64"
BUILT = ("py3-numpy", "py3-pandas", "py3-scikit-learn")
UPSTREAM = ("numpy", "scipy", "joblib", "threadpoolctl", "narwhals", "python-dateutil", "six")

# Run on both sides (musl apks, glibc PyPI wheels): the same numbers must come out.
EXERCISE = r"""
import json, sys
import numpy as np, pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.ensemble import RandomForestClassifier
rng = np.random.default_rng(7)
a = rng.standard_normal((60, 60)) + 60 * np.eye(60)
x = np.linalg.solve(a, np.ones(60))
w = np.linalg.eigvalsh(a @ a.T)
frame = pd.DataFrame({"k": list("abcab"), "v": [1.0, 2.0, 3.0, 4.0, 5.0]})
data = rng.standard_normal((200, 4))
labels = (data[:, 0] + 0.5 * data[:, 1] > 0).astype(int)
logistic = LogisticRegression().fit(data[:150], labels[:150])
forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(data[:150], labels[:150])
maps = open("/proc/self/maps").read() if sys.platform == "linux" else ""
blas = [line.split()[-1] for line in maps.splitlines() if "openblas" in line.lower()]
print(json.dumps({
    "residual": float(np.abs(a @ x - 1).max()), "eig_min": float(w.min()),
    "groupby": frame.groupby("k")["v"].sum().to_dict(),
    "logistic_predict": logistic.predict(data[150:]).tolist(),
    "logistic_coef": logistic.coef_.ravel().tolist(),
    "forest_predict": forest.predict(data[150:]).tolist(),
    "blas_files": sorted(set(blas)),
    "numpy": np.__version__, "pandas": pd.__version__,
}))
"""


def _farm_build(server: RunningServer, musl_python: Path) -> list[dict[str, object]]:
    out = ROOT / ".cache" / "farm-out"
    done = subprocess.run(
        [sys.executable, "-m", "ipydeps_repo", "farm", "build", "--target", TARGET,
         *[arg for recipe in BUILT for arg in ("--recipe", recipe)],
         "--musl-python", str(musl_python), "--key", str(_key(server)),
         "--cache", str(FARM_CACHE), "--out", str(out),
         "--publish-url", server.url, "--token", server.token],
        capture_output=True, text=True, env=clean_pip_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    results: list[dict[str, object]] = json.loads((out / "summary.json").read_text())["results"]
    return results


def _key(server: RunningServer) -> Path:
    """The farm's own signing key (the cached apks carry its signature), trusted by the server."""
    farm_data = ROOT / ".cache" / "farm-data"
    if not any((farm_data / "keys").glob("*.rsa")):
        repo_cli("keygen", "--name", "farm", "--bits", "2048", data=farm_data)
    key = next((farm_data / "keys").glob("*.rsa"))
    trusted = server.data / "trusted-keys"
    trusted.mkdir(exist_ok=True)
    (trusted / f"{key.name}.pub").write_bytes(Path(f"{key}.pub").read_bytes())
    return key


def _upstream_apks(server: RunningServer, version: str, tmp_path: Path) -> None:
    """Mirror the upstream musllinux wheels of SciPy and the pure dependencies; wrap, upload."""
    mirror = CACHE / f"repo-upstream-{version}"
    if not (mirror / ".mirrored").is_file():
        repo_cli("mirror", *UPSTREAM, "--platform", PLATFORM, "--python-version", version,
                 data=mirror)  # fmt: skip
        (mirror / ".mirrored").write_text(" ".join(UPSTREAM))
    wrapped = tmp_path / "wrapped"
    for wheel in sorted((mirror / "tree" / "files").glob("*/*.whl")):
        if wheel.name.split("-")[0].lower() in ("numpy", "pandas", "scikit_learn"):
            continue  # those are the farm's own builds
        repo_cli("wrap", str(wheel), "--python", version, "--output", str(wrapped),
                 data=server.data)  # fmt: skip
    for apk in sorted(wrapped.glob("*.apk")):
        status, body = server.upload(apk, query="branch=v3.22&repo=sci")
        assert status == 201, body


def _lay_out(apk: bytes, prefix: Path) -> int:
    """Extract an apk under ``prefix`` (standing for /usr); return its installed bytes."""
    size = 0
    with (
        gzip.GzipFile(fileobj=io.BytesIO(apk)) as stream,
        tarfile.open(fileobj=stream, mode="r|", ignore_zeros=True) as archive,
    ):
        for member in archive:
            if member.name.startswith(".") or member.name == "usr":
                continue
            member.name = member.name.removeprefix("usr/")
            size += member.size if member.isfile() else 0
            archive.extract(member, prefix, filter="data")
    return size


def _glibc_result(versions: dict[str, str]) -> dict[str, object]:
    venv = ROOT / ".cache" / "glibc-sklearn"
    python = venv / "bin" / "python"
    pins = [f"numpy=={versions['numpy']}", f"pandas=={versions['pandas']}",
            f"scikit-learn=={versions['sklearn']}"]  # fmt: skip
    stamp = venv / ".stamp"
    if not (stamp.is_file() and stamp.read_text() == " ".join(pins)):
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--only-binary", ":all:",
                        *pins], check=True, env=clean_pip_env())  # fmt: skip
        stamp.write_text(" ".join(pins))
    done = subprocess.run([str(python), "-c", EXERCISE], capture_output=True, text=True,
                          check=True, env=clean_pip_env())  # fmt: skip
    result: dict[str, object] = json.loads(done.stdout)
    return result


def _bundled_openblas_bytes(wheel: Path) -> tuple[int, int]:
    """(installed bytes of the OpenBLAS copies a wheel bundles, the wheel's size)."""
    with zipfile.ZipFile(wheel) as archive:
        bundled = sum(i.file_size for i in archive.infolist() if "openblas" in i.filename.lower()
                      and ".libs/" in i.filename)  # fmt: skip
    return bundled, wheel.stat().st_size


def test_numpy_pandas_sklearn_built_for_musl_share_one_openblas(
    musl_python: Path, repo_server: RunningServer, tmp_path: Path
) -> None:
    version = python_version(musl_python)
    results = _farm_build(repo_server, musl_python)
    statuses = {result["recipe"]: result["status"] for result in results}
    assert statuses == {"openblas": statuses["openblas"], "py3-numpy": statuses["py3-numpy"],
                        "py3-pandas": statuses["py3-pandas"], "py3-scipy": "excluded",
                        "py3-scikit-learn": statuses["py3-scikit-learn"]}  # fmt: skip
    assert set(statuses.values()) <= {"built", "skipped", "excluded"}
    _upstream_apks(repo_server, version, tmp_path)

    status, _, index = repo_server.get("alpine/v3.22/sci/x86_64/APKINDEX.tar.gz")
    assert status == 200
    records = parse_apkindex(read_apkindex_archive(index)[1])
    resolution = resolve_apks([(name, "") for name in BUILT], records, InstalledApks())
    assert resolution.conflicts == ()
    chosen = {a.record.name: a.record for a in resolution.additions if a.record}
    chosen.update({r.name: r for r in records if r.name in BUILT})
    external = {a.dependency for a in resolution.additions if a.record is None}
    assert external <= {f"python3~{version}", "so:libc.musl-x86_64.so.1"}
    # One OpenBLAS for everything the farm built: the numpy apk needs it and bundles none.
    assert "openblas" in chosen
    assert "so:libopenblas.so.0" in chosen["py3-numpy"].depends
    assert "so:libopenblas.so.0=0" in chosen["openblas"].provides

    system = link_copy(musl_python.parent.parent, tmp_path / "usr")
    installed = {}
    for name, record in chosen.items():
        status, _, apk = repo_server.get(f"alpine/v3.22/sci/x86_64/{record.filename}")
        assert status == 200, record.filename
        installed[name] = _lay_out(apk, system)
    venv = tmp_path / "venv"
    subprocess.run([str(system / "bin" / "python3"), "-m", "venv", "--system-site-packages",
                    "--without-pip", str(venv)], check=True, env=clean_pip_env())  # fmt: skip
    # On Alpine /usr/lib is the loader's default path; here the copy stands for /usr.
    env = {**clean_pip_env(), "LD_LIBRARY_PATH": str(system / "lib")}
    ran = subprocess.run([str(venv / "bin" / "python"), "-c", EXERCISE], capture_output=True,
                         text=True, env=env)  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-4000:]
    musl = json.loads(ran.stdout)
    # NumPy runs on the shared library; the only other copy is the one upstream's SciPy wheel
    # (wrapped, not built here: Fortran) still bundles.
    shared = str(system / "lib" / "libopenblas.so.0")
    assert shared in musl["blas_files"]
    others = [path for path in musl["blas_files"] if path != shared]
    assert all("/site-packages/scipy.libs/" in path for path in others), others
    assert musl["residual"] < 1e-12 and musl["groupby"] == {"a": 5.0, "b": 7.0, "c": 3.0}

    sklearn_version = chosen["py3-scikit-learn"].version.split("-r")[0]
    glibc = _glibc_result({"numpy": musl["numpy"], "pandas": musl["pandas"],
                           "sklearn": sklearn_version})  # fmt: skip
    assert musl["logistic_predict"] == glibc["logistic_predict"]
    assert musl["forest_predict"] == glibc["forest_predict"]
    # lbfgs stops at its tolerance (1e-4); two BLAS builds may stop a hair apart.
    assert musl["logistic_coef"] == pytest.approx(glibc["logistic_coef"], rel=1e-4, abs=1e-6)
    assert musl["eig_min"] == pytest.approx(glibc["eig_min"], rel=1e-9)

    upstream = CACHE / f"repo-{version}" / "tree" / "files"
    sizes: dict[str, object] = {"installed_bytes": installed}
    for project in ("numpy", "scipy"):
        for wheel in sorted(upstream.glob(f"*/{project}-*musllinux*.whl")):
            sizes[wheel.name] = dict(zip(("bundled_openblas", "wheel"),
                                         _bundled_openblas_bytes(wheel), strict=True))  # fmt: skip
    (ROOT / ".cache" / "farm-out" / "musl-sizes.json").write_text(json.dumps(sizes, indent=1))
    print(json.dumps(sizes, indent=1))


def test_ipydeps_installs_the_farms_scikit_learn_wheel_on_musl(
    musl_python: Path, musl_runtime: Path, repo_server: RunningServer, tmp_path: Path
) -> None:
    """``ipydeps.pip(['scikit-learn'])`` in a musl kernel takes the farm's musllinux wheel.

    Upstream publishes no musllinux scikit-learn at all, so the only one the repository can
    serve is the farm's; its dependencies are upstream's musllinux wheels, mirrored.
    """
    version = python_version(musl_python)
    results = _farm_build(repo_server, musl_python)
    (sklearn,) = [r for r in results if r["recipe"] == "py3-scikit-learn"]
    wheels = [a for a in sklearn["artifacts"] if a["kind"] == "wheel"]  # type: ignore[union-attr]
    assert [w["platform_tag"] for w in wheels] == ["musllinux_1_2_x86_64"]
    _upstream_apks(repo_server, version, tmp_path)  # also mirrors the wheels
    for wheel in sorted((CACHE / f"repo-upstream-{version}" / "tree" / "files").glob("*/*.whl")):
        if not wheel.name.startswith(("pandas-", "scikit_learn-")):
            status, body = repo_server.upload(wheel)
            assert status in (200, 201), body
    venv = tmp_path / "env"
    subprocess.run([str(musl_python), "-m", "venv", "--without-pip", str(venv)], check=True,
                   env=clean_pip_env())  # fmt: skip
    (site_packages(venv) / "zz-runtime.pth").write_text(f"{site_packages(musl_runtime)}\n")
    kernel = Kernel(venv / "bin" / "python", tmp_path, {
        "IPYDEPS_REPOSITORY_URL": repo_server.url, "IPYDEPS_UPSTREAM": "deny",
        "IPYDEPS_APK": "never", "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    })  # fmt: skip
    try:
        installed = kernel.run("import ipydeps\nipydeps.pip(['scikit-learn'])", timeout=900)
        assert installed.error is None, installed.text
        assert "scikit-learn" in installed.text and "wheel from 127.0.0.1" in installed.text
        fitted = kernel.run(
            "import numpy as np\nfrom sklearn.linear_model import LogisticRegression\n"
            "x = np.array([[0.0, 0.1], [0.2, 0.0], [1.0, 0.9], [0.9, 1.1]])\n"
            "model = LogisticRegression().fit(x, [0, 0, 1, 1])\n"
            "print(model.predict([[0.1, 0.0], [1.0, 1.0]]).tolist())"
        )
        assert fitted.error is None, fitted.text
        assert fitted.stdout.strip() == "[0, 1]"
        dist_info = next(site_packages(venv).glob("scikit_learn-*.dist-info"))
        assert "musllinux_1_2_x86_64" in (dist_info / "WHEEL").read_text()
    finally:
        kernel.stop()
