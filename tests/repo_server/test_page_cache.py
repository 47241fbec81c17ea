"""The page cache and the caching rules, on real files: bounded, never stale, RFC validators."""

from __future__ import annotations

import os
from pathlib import Path

from ipydeps_repo.web.cache_policy import (
    IMMUTABLE,
    REVALIDATE,
    cache_control,
    etag_matches,
    etag_of,
    http_date,
    not_modified_since,
)
from ipydeps_repo.web.page_cache import PageCache


def write(path: Path, text: str) -> Path:
    staged = path.with_name("." + path.name)
    staged.write_text(text)
    os.replace(staged, path)  # as the store writes pages: a new file renamed over the old
    return path


def body(cache: PageCache, path: Path) -> bytes:
    page = cache.read(str(path))
    assert page is not None, path
    return page.body


def test_pages_stay_within_the_memory_bound_and_are_always_the_files(tmp_path: Path) -> None:
    cache = PageCache(max_bytes=100, max_page_bytes=80)
    first = write(tmp_path / "first", "a" * 60)
    second = write(tmp_path / "second", "b" * 60)
    assert body(cache, first) == b"a" * 60
    assert body(cache, second) == b"b" * 60
    assert cache.held_bytes == 60  # the first page was dropped to make room
    assert body(cache, first) == b"a" * 60
    large = write(tmp_path / "large", "c" * 90)
    assert body(cache, large) == b"c" * 90
    assert cache.held_bytes == 60  # served, not kept: larger than max_page_bytes
    write(first, "d" * 60)
    page = cache.read(str(first))
    assert page is not None and page.body == b"d" * 60
    assert page.etag == etag_of(first.stat())
    assert page.last_modified == http_date(first.stat().st_mtime)


def test_a_missing_page_or_a_folder_is_none(tmp_path: Path) -> None:
    cache = PageCache()
    page = write(tmp_path / "page", "x")
    assert cache.read(str(page)) is not None
    page.unlink()
    assert cache.read(str(page)) is None
    assert cache.read(str(tmp_path)) is None
    assert cache.read(str(tmp_path / "page" / "below")) is None


def test_what_caches_may_keep_follows_the_shipped_nginx_config() -> None:
    assert cache_control("files/demo/demo-1.0-py3-none-any.whl") == IMMUTABLE
    assert cache_control("files/demo/demo-1.0-py3-none-any.whl.metadata") == IMMUTABLE
    assert cache_control("alpine/v3.22/sci/x86_64/py3-demo-1.0-r0.apk") == IMMUTABLE
    assert cache_control("alpine/v3.22/sci/x86_64/APKINDEX.tar.gz") == REVALIDATE
    assert cache_control("keys/test.rsa.pub") == REVALIDATE
    assert cache_control("simple/demo/index.json") == REVALIDATE


def test_if_none_match_follows_rfc_9110() -> None:
    etag = '"18eed-473"'
    assert etag_matches(etag, etag)
    assert etag_matches(f'"other", W/{etag}', etag)  # a list, and weak comparison
    assert etag_matches("*", etag)
    assert not etag_matches('"other"', etag)
    assert not etag_matches("garbage", etag)


def test_if_modified_since_compares_whole_seconds() -> None:
    assert not_modified_since(http_date(1_700_000_000), 1_700_000_000.7)
    assert not not_modified_since(http_date(1_699_999_999), 1_700_000_000.0)
    assert not not_modified_since("not a date", 1_700_000_000.0)
    assert not not_modified_since(None, 1_700_000_000.0)
