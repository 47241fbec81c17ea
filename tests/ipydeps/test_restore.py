"""The restore's import wait, in this process, with real objects (no kernel needed)."""

from __future__ import annotations

from pathlib import Path

from packaging.utils import canonicalize_name

from ipydeps.lockfile import LockedFile, LockedPackage, NotebookLock
from ipydeps.restore import ImportWait, Restore
from ipydeps.settings import load_config


def _restore(top_level: tuple[str, ...]) -> Restore:
    wheel = LockedFile("evil-1.0-py3-none-any.whl", "http://127.0.0.1:9/e", "ab" * 32)
    package = LockedPackage(canonicalize_name("evil"), "1.0", None, (wheel,), top_level)
    lock = NotebookLock((package,))
    settings = load_config(environ={}, system_path=None, user_path=None)
    return Restore(Path("pylock.evil.toml"), lock, settings)


def test_a_lock_cannot_make_the_standard_library_wait() -> None:
    finder = ImportWait(_restore(("json", "asyncio", "evil_mod")))
    assert finder.names == {"evil_mod"}
    assert finder.find_spec("json", None) is None


def test_only_top_level_names_of_the_lock_wait_and_not_once_done() -> None:
    restore = _restore(("evil_mod",))
    finder = ImportWait(restore)
    assert finder.find_spec("evil_mod", None) is not None  # waits (in its loader)
    assert finder.find_spec("evil_mod.sub", ["/x"]) is None
    assert finder.find_spec("other_mod", None) is None
    restore.done.set()
    assert finder.find_spec("evil_mod", None) is None
