"""One apk name per Python project, for every route: Alpine's aports naming.

Alpine calls the apk of a Python project ``py3-<canonical name>``, except for a few
projects whose apk was named after the import or a shorter name long ago
(``python-dateutil`` is ``py3-dateutil``, ``PyYAML`` is ``py3-yaml``). The farm's
APKBUILDs, ``ipydeps-repo wrap`` and the client's reading of an APKINDEX all take names
from here, so a recipe's ``depends`` and a wrapped wheel's ``depend`` name the same
package, and the client maps both back to the same project.

- ``ALPINE_NAMES``: canonical project -> apk name, only where it differs from the rule.
- ``apk_name_for(project, overrides=None) -> str``
- ``project_for_apk(apk_name, overrides=None) -> NormalizedName | None``

``overrides`` (the client's ``apk_map`` setting, wrap's ``name_map``) win over the table.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from packaging.utils import NormalizedName, canonicalize_name

__all__ = ["ALPINE_NAMES", "SUBPACKAGE_SUFFIXES", "apk_name_for", "project_for_apk"]

# Checked against aports (main/ and community/): each is the directory name there.
ALPINE_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "prompt-toolkit": "py3-prompt_toolkit",
        "pyasn1": "py3-asn1",
        "pycparser": "py3-cparser",
        "pyjwt": "py3-jwt",
        "pyopenssl": "py3-openssl",
        "pyparsing": "py3-parsing",
        "python-dateutil": "py3-dateutil",
        "pytz": "py3-tz",
        "pyyaml": "py3-yaml",
    }
)
_PROJECT_OF_APK = {apk: NormalizedName(project) for project, apk in ALPINE_NAMES.items()}
# abuild's split packages of a Python apk carry no project of their own.
SUBPACKAGE_SUFFIXES = ("-pyc", "-tests", "-doc", "-dev", "-dbg")


def apk_name_for(project: str, overrides: Mapping[str, str] | None = None) -> str:
    """Return the apk carrying ``project``: an override, else Alpine's name, else ``py3-<name>``."""
    canonical = canonicalize_name(project)
    mapped = {canonicalize_name(key): value for key, value in (overrides or {}).items()}
    return mapped.get(canonical) or ALPINE_NAMES.get(canonical, f"py3-{canonical}")


def project_for_apk(
    apk_name: str, overrides: Mapping[str, str] | None = None
) -> NormalizedName | None:
    """Return the Python project an apk carries, or None when it carries none (``openblas``)."""
    for project, mapped in (overrides or {}).items():
        if mapped == apk_name:
            return canonicalize_name(project)
    if apk_name in _PROJECT_OF_APK:
        return _PROJECT_OF_APK[apk_name]
    if apk_name.startswith("py3-") and not apk_name.endswith(SUBPACKAGE_SUFFIXES):
        return canonicalize_name(apk_name[len("py3-") :])
    return None
