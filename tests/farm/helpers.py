"""Farm test fixtures made in code: a tiny C-extension sdist, its recipe, a file-based PyPI API."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

DEMO_C = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* Sum of squares of a sequence of floats: compiled code the test can check the answer of. */
static PyObject *sumsq(PyObject *self, PyObject *args) {
    PyObject *seq;
    if (!PyArg_ParseTuple(args, "O", &seq)) return NULL;
    PyObject *fast = PySequence_Fast(seq, "expected a sequence");
    if (!fast) return NULL;
    double total = 0.0;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    for (Py_ssize_t i = 0; i < n; i++) {
        double x = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(fast, i));
        if (x == -1.0 && PyErr_Occurred()) { Py_DECREF(fast); return NULL; }
        total += x * x;
    }
    Py_DECREF(fast);
    return PyFloat_FromDouble(total);
}

static PyMethodDef methods[] = {{"sumsq", sumsq, METH_VARARGS, "sum of squares"}, {NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native", NULL, -1, methods};
PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&module); }
"""

APKBUILD = """\
# Maintainer: farm tests <farm@ipydeps.invalid>
pkgname={pkgname}
_pyname={project}
pkgver={version}
pkgrel=0
pkgdesc="A tiny compiled package for farm tests"
url="https://example.invalid/"
arch="all"
license="MIT"
depends="{depends}"
makedepends="python3-dev py3-gpep517 py3-setuptools"
subpackages="$pkgname-pyc"
source="https://files.pythonhosted.org/packages/source/{initial}/{project}/{project}-$pkgver.tar.gz"
builddir="$srcdir/$_pyname-$pkgver"
options="!check" # the farm tests check the built wheel themselves

build() {{
	gpep517 build-wheel --wheel-dir .dist --output-fd 3 3>&1 >&2
}}

package() {{
	python3 -m installer -d "$pkgdir" .dist/*.whl
}}

sha512sums="
{sha512}  {project}-{version}.tar.gz
"
"""


def make_sdist(directory: Path, project: str, version: str, *, c_source: str = DEMO_C) -> Path:
    """Write ``<project>-<version>.tar.gz``: a setuptools package with one C extension."""
    module = project.replace("-", "_")
    root = f"{project}-{version}"
    files = {
        "pyproject.toml": (
            '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n'
            f'[project]\nname = "{project}"\nversion = "{version}"\nrequires-python = ">=3.8"\n'
        ),
        "setup.py": (
            "from setuptools import Extension, setup\n\n"
            f'setup(packages=["{module}"], '
            f'ext_modules=[Extension("{module}._native", ["src/native.c"])])\n'
        ),
        f"{module}/__init__.py": "from ._native import sumsq\n",
        "src/native.c": c_source,
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n",
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{root}.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{root}/{name}")
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    return path


def write_json_api(
    api: Path, project: str, sdists: dict[str, Path], requires_python: str = ">=3.8"
) -> None:
    """Write ``api/<project>/json`` shaped like PyPI's JSON API, with file:// sdist URLs."""
    releases = {
        version: [
            {
                "packagetype": "sdist",
                "filename": path.name,
                "url": path.resolve().as_uri(),
                "digests": {"sha256": hashlib.sha256(path.read_bytes()).hexdigest()},
                "requires_python": requires_python,
                "yanked": False,
            }
        ]
        for version, path in sdists.items()
    }
    newest = list(sdists)[-1]
    (api / project).mkdir(parents=True, exist_ok=True)
    (api / project / "json").write_text(
        json.dumps({"info": {"name": project, "version": newest}, "releases": releases})
    )


def write_recipes(apkbuilds: Path, recipes: dict[str, tuple[str, Path, str]]) -> None:
    """Write recipes (pkgname -> (project, sdist, depends)) and a manifest with the host target."""
    manifest = ['[farm]\nbuilder_version = "test"\napk_repo = "sci"\n']
    manifest.append('[[targets]]\nname = "host"\nkind = "host"\n')
    manifest.append(
        '[[targets]]\nname = "alpine-3.22-x86_64"\nkind = "alpine"\nbranch = "v3.22"\n'
        'alpine_version = "3.22"\npython = "3.12"\narch = "x86_64"\n'
    )
    for pkgname, (project, sdist, depends) in recipes.items():
        version = sdist.name[len(project) + 1 : -len(".tar.gz")]
        folder = apkbuilds / pkgname
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "APKBUILD").write_text(
            APKBUILD.format(
                pkgname=pkgname,
                project=project,
                version=version,
                depends=depends,
                initial=project[0],
                sha512=hashlib.sha512(sdist.read_bytes()).hexdigest(),
            )
        )
        manifest.append(f'[recipes.{pkgname}]\npypi = "{project}"\nimport_name = "{project}"\n')
    (apkbuilds / "manifest.toml").write_text("\n".join(manifest))
