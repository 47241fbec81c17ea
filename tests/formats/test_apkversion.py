"""Apk version rules, and the PEP 440 <-> apk mapping keeping the order."""

from __future__ import annotations

import functools
import itertools

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from packaging.version import Version

from ipydeps.formats.apkversion import (
    ApkVersionError,
    apk_to_pep440,
    apk_version_matches,
    compare_apk_versions,
    is_valid_apk_version,
    pep440_to_apk,
)

# Each list is in strictly increasing apk order (written from apk's documented rules).
ASCENDING_APK = [
    "0.9",
    "1.0_alpha",
    "1.0_alpha1",
    "1.0_alpha2",
    "1.0_beta1",
    "1.0_pre1",
    "1.0_rc1",
    "1.0",
    "1.0-r1",
    "1.0-r10",
    "1.0_cvs1",
    "1.0_svn1",
    "1.0_git20240101",
    "1.0_hg1",
    "1.0_p1",
    "1.0_p1-r2",
    "1.0a",
    "1.0b",
    "1.0.1_rc1",
    "1.0.1",
    "1.0.2",
    "1.0.10",
    "1.1",
    "2",
    "10.0",
]


@pytest.mark.parametrize(("lower", "higher"), list(itertools.combinations(ASCENDING_APK, 2)))
def test_apk_order(lower: str, higher: str) -> None:
    assert compare_apk_versions(lower, higher) == -1
    assert compare_apk_versions(higher, lower) == 1


@pytest.mark.parametrize("version", ASCENDING_APK + ["1.2.3~abc123-r4", "0.1_p1_pre2"])
def test_valid_versions_equal_themselves(version: str) -> None:
    assert is_valid_apk_version(version)
    assert compare_apk_versions(version, version) == 0


@pytest.mark.parametrize(
    "version",
    [
        "",
        "1.0rc1",
        "1.0.post1",
        "v1.0",
        "1.0-1",
        "1..0",
        "1.0_",
        "1.0_foo1",
        "1.0ab",
        "1.0-r",
        "1.0-r1-r2",
        "1.0_p1a",
        "1.0.",
        "1" * 18,
        "1.0~",
        "1.0~XYZ",
        "1.0 ",
    ],
)
def test_invalid_versions_are_refused(version: str) -> None:
    assert not is_valid_apk_version(version)
    with pytest.raises(ApkVersionError, match="is not a valid apk version"):
        compare_apk_versions(version, "1.0")


def test_leading_zero_digits_compare_as_text() -> None:
    # apk compares "01" and "1" as text once a leading zero appears (Gentoo rule).
    assert compare_apk_versions("1.01", "1.1") == -1
    assert compare_apk_versions("1.001", "1.01") == -1


@pytest.mark.parametrize(
    ("version", "op", "constraint", "expected"),
    [
        ("3.12.4-r1", "~", "3.12", True),
        ("3.13.0-r0", "~", "3.12", False),
        ("3.12.4", ">=", "3.12", True),
        ("3.12.4", "<", "3.12", False),
        ("1.0-r0", "=", "1.0-r0", True),
        ("1.0-r1", "=", "1.0-r0", False),
        ("1.0-r1", ">", "1.0-r0", True),
        ("1.0_rc1", "<=", "1.0", True),
        ("3.11.9", ">~", "3.12", False),
    ],
)
def test_version_matches(version: str, op: str, constraint: str, expected: bool) -> None:
    assert apk_version_matches(version, op, constraint) is expected


def test_unknown_operator_is_refused() -> None:
    with pytest.raises(ApkVersionError, match="unknown apk version operator '=='"):
        apk_version_matches("1.0", "==", "1.0")


@pytest.mark.parametrize(
    ("pep440", "apk"),
    [
        ("2.0.0rc1", "2.0.0_rc1"),
        ("1.0.post1", "1.0_p1"),
        ("1.0a2", "1.0_alpha2"),
        ("1.0b1", "1.0_beta1"),
        ("1.0c3", "1.0_rc3"),
        ("1.0.dev3", "1.0_alpha_pre3"),
        ("1.0rc1.dev2", "1.0_rc1_pre2"),
        ("1.0.post1.dev2", "1.0_p1_pre2"),
        ("1.0a1.post2.dev3", "1.0_alpha1_p2_pre3"),
        ("2024.01.05", "2024.1.5"),
        ("1.26.4", "1.26.4"),
    ],
)
def test_pep440_to_apk_examples(pep440: str, apk: str) -> None:
    assert pep440_to_apk(pep440) == apk
    assert pep440_to_apk(Version(pep440)) == apk
    assert is_valid_apk_version(apk)
    assert apk_to_pep440(apk) == Version(pep440)
    assert apk_to_pep440(apk + "-r3") == Version(pep440)


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("1!2.0", "apk has no epochs"),
        ("1.0+local.7", r"local versions \(\+local.7\) are not for distribution"),
        ("not a version", "is not a valid PEP 440 version"),
        ("1.0.post123456789012345678", "at most 17 digits"),
    ],
)
def test_pep440_to_apk_refuses(version: str, message: str) -> None:
    with pytest.raises(ApkVersionError, match=message):
        pep440_to_apk(version)


@pytest.mark.parametrize(
    ("apk", "pep440"),
    [("1.2.3-r0", "1.2.3"), ("1.0_git20240101-r1", "1.0.post20240101"), ("2.0_pre2", "2.0rc2")],
)
def test_apk_to_pep440_reads_alpine_versions(apk: str, pep440: str) -> None:
    assert apk_to_pep440(apk) == Version(pep440)


@pytest.mark.parametrize("version", ["1.0a", "1.0~abc", "1.0_beta1_alpha2", "nonsense"])
def test_apk_to_pep440_refuses_unmappable(version: str) -> None:
    with pytest.raises(ApkVersionError):
        apk_to_pep440(version)


PEP440_ASCENDING = [
    "0.1.dev0",
    "0.1a0.dev1",
    "0.1a0",
    "0.1a0.post1.dev1",
    "0.1a0.post1",
    "0.1b2.dev4",
    "0.1b2",
    "0.1rc1.dev1",
    "0.1rc1",
    "0.1rc1.post1",
    "0.1",
    "0.1.post1.dev1",
    "0.1.post1",
    "0.1.post2",
    "0.1.1.dev1",
    "0.1.1",
    "0.2.dev1",
    "0.2",
    "1.0.0.dev5",
    "1.0.0a1",
    "1.0.0",
    "1.0.0.post1",
    "1.0.1rc1",
    "1.0.1",
    "1.0.10",
    "1.1",
    "2.0.0rc1",
    "2.0.0",
    "10.0",
]


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


def _pep440_compare(a: Version, b: Version) -> int:
    return (a > b) - (a < b)


def test_mapping_keeps_the_order_of_a_listed_history() -> None:
    mapped = [pep440_to_apk(v) for v in PEP440_ASCENDING]
    ordered = sorted(mapped, key=functools.cmp_to_key(compare_apk_versions))
    assert ordered == mapped


_versions = st.builds(
    lambda release, pre, post, dev: Version(
        ".".join(map(str, release))
        + (f"{pre[0]}{pre[1]}" if pre else "")
        + (f".post{post}" if post is not None else "")
        + (f".dev{dev}" if dev is not None else "")
    ),
    st.lists(st.integers(0, 12), min_size=1, max_size=4),
    st.none() | st.tuples(st.sampled_from(["a", "b", "rc"]), st.integers(0, 3)),
    st.none() | st.integers(0, 3),
    st.none() | st.integers(0, 3),
)


def _same_release_spelled_differently(a: Version, b: Version) -> bool:
    # 1.0 == 1.0.0 in PEP 440 but not in apk (documented limit of the mapping).
    def strip(release: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(reversed(list(itertools.dropwhile(lambda x: x == 0, reversed(release)))))

    return a.release != b.release and strip(a.release) == strip(b.release)


# No deadline: the shared CI machine may be slow, and timing is not what is tested.
@settings(deadline=None, max_examples=300)
@given(_versions, _versions)
def test_mapping_preserves_pep440_order(a: Version, b: Version) -> None:
    assume(not _same_release_spelled_differently(a, b))
    assert compare_apk_versions(pep440_to_apk(a), pep440_to_apk(b)) == _pep440_compare(a, b)


@settings(deadline=None)
@given(_versions)
def test_mapping_round_trips(version: Version) -> None:
    assert apk_to_pep440(pep440_to_apk(version)) == version


@settings(deadline=None, max_examples=500)
@given(
    st.text(alphabet="0123456789abcdefghilnoprstuvx._~-", max_size=16)
    | st.from_regex(
        r"[0-9.]{1,6}[a-z]?(_(alpha|beta|pre|rc|p|git|x)[0-9]{0,3}){0,3}(~[0-9a-f]{0,3})?(-r[0-9]{0,2})?",
        fullmatch=True,
    )
)
def test_fast_validity_check_agrees_with_the_tokenizer(text: str) -> None:
    # is_valid_apk_version uses one regular expression; compare uses apk's tokenizer.
    tokenizer_says_valid = True
    try:
        compare_apk_versions(text, text)
    except ApkVersionError:
        tokenizer_says_valid = False
    assert is_valid_apk_version(text) is tokenizer_says_valid
