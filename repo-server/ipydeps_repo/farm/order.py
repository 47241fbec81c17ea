"""Build order: a topological sort of recipes by the packages they need from each other."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..errors import ValidationError
from .recipe import Recipe


def build_order(recipes: Mapping[str, Recipe], only: Iterable[str] = ()) -> list[str]:
    """Return recipe names so that every recipe comes after the recipes it needs.

    A recipe needs another when any of its depends/makedepends/checkdepends names a package
    the other builds (its pkgname or a subpackage such as ``py3-numpy-dev``). Ties are
    broken by name, so the order is stable. With ``only``, the result is those recipes plus
    everything they need, still in order.

    Raises:
        ValidationError: a recipe in ``only`` is unknown, or the recipes form a cycle.
    """
    producer = {package: recipe.name for recipe in recipes.values() for package in recipe.provides}
    needs: dict[str, set[str]] = {
        recipe.name: {
            producer[package]
            for package in recipe.build_requires
            if package in producer and producer[package] != recipe.name
        }
        for recipe in recipes.values()
    }
    wanted = set(recipes)
    requested = list(only)
    if requested:
        unknown = [name for name in requested if name not in recipes]
        if unknown:
            raise ValidationError("recipe selection", [f"no recipe named {n}" for n in unknown])
        wanted = set()
        stack = list(requested)
        while stack:
            name = stack.pop()
            if name not in wanted:
                wanted.add(name)
                stack.extend(needs[name])
    order: list[str] = []
    done: set[str] = set()
    pending = sorted(wanted)
    while pending:
        ready = [name for name in pending if needs[name] <= done]
        if not ready:
            cycle = ", ".join(f"{n} needs {sorted(needs[n] - done)}" for n in pending)
            raise ValidationError("recipes", [f"dependency cycle: {cycle}"])
        order.extend(ready)
        done.update(ready)
        pending = [name for name in pending if name not in done]
    return order


def dependencies_of(recipes: Mapping[str, Recipe], name: str) -> list[str]:
    """Return the recipes that ``name`` needs directly (sorted)."""
    producer = {package: recipe.name for recipe in recipes.values() for package in recipe.provides}
    return sorted(
        {producer[p] for p in recipes[name].build_requires if p in producer and producer[p] != name}
    )
