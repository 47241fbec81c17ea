"""Names ipydeps never takes from someone else: its own, and the project sharing its import name.

This project ships two distributions, ``ipydeps-client`` (the ``ipydeps`` package itself)
and ``ipydeps-repo`` (the server). The name ``ipydeps`` on PyPI belongs to an unrelated
project whose wheels carry an ``ipydeps`` package: installing it would overwrite this
installer inside the running kernel. So:

- ``ipydeps`` is never installed, from any source, by name or as a dependency;
- our own distributions come only from our repository, never from the upstream index, where
  anyone could register those names.
"""

from __future__ import annotations

from packaging.utils import NormalizedName, canonicalize_name

OUR_DISTRIBUTIONS: frozenset[NormalizedName] = frozenset(
    {canonicalize_name("ipydeps-client"), canonicalize_name("ipydeps-repo")}
)
SHADOWING_PROJECTS: frozenset[NormalizedName] = frozenset({canonicalize_name("ipydeps")})


def shadowing_problem(name: str) -> str | None:
    """Why installing project ``name`` would replace this installer, or None."""
    if canonicalize_name(name) in SHADOWING_PROJECTS:
        return (
            f"'{name}' on PyPI is an unrelated project whose files would replace this installer "
            "(ipydeps itself is the distribution 'ipydeps-client', already installed here)"
        )
    return None


def upstream_forbidden(name: str) -> bool:
    """Whether project ``name`` may only come from our repository, never from upstream."""
    return canonicalize_name(name) in OUR_DISTRIBUTIONS
