"""Alpine apk version strings: validation, ordering, and mapping to and from PEP 440."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum

from packaging.version import InvalidVersion, Version

from .errors import FormatError

__all__ = [
    "ApkDependency",
    "ApkVersionError",
    "apk_to_pep440",
    "apk_version_matches",
    "compare_apk_versions",
    "is_valid_apk_version",
    "pep440_to_apk",
]


class ApkVersionError(FormatError):
    """Not a valid apk version, or a version that cannot be mapped between apk and PEP 440."""


# Token kinds in the order apk-tools (src/version.c) ranks them: when two versions agree
# up to the point where one has a token the other lacks, the one at a *lower* kind is
# newer (1.0.1 > 1.0, 1.0-r1 > 1.0), except that a pre-release suffix makes it older.
class _Kind(IntEnum):
    INITIAL_DIGIT = 0
    DIGIT = 1
    LETTER = 2
    SUFFIX = 3
    SUFFIX_NO = 4
    COMMIT_HASH = 5
    REVISION_NO = 6
    END = 7
    INVALID = 8


# Suffix ranks: alpha < beta < pre < rc < (no suffix) < cvs < svn < git < hg < p.
_SUFFIXES = {
    "alpha": 1,
    "beta": 2,
    "pre": 3,
    "rc": 4,
    "cvs": 6,
    "svn": 7,
    "git": 8,
    "hg": 9,
    "p": 10,
}
_NO_SUFFIX = 5
# apk-tools 2.x rejects numbers of 18 or more digits (they would overflow its int64).
_MAX_DIGITS = 17
_DIGITS = re.compile(r"[0-9]*")
_LOWER = re.compile(r"[a-z]*")
_HEX = re.compile(r"[0-9a-f]*")


@dataclass(frozen=True)
class _Token:
    kind: _Kind
    text: str = ""
    number: int = 0
    suffix: int = 0


def _digits(version: str, pos: int, kind: _Kind) -> tuple[_Token, int]:
    text = _DIGITS.match(version, pos).group()  # type: ignore[union-attr]
    if not text or len(text) > _MAX_DIGITS:
        return _Token(_Kind.INVALID), pos + len(text)
    return _Token(kind, text, int(text)), pos + len(text)


def _next_token(version: str, pos: int, previous: _Kind) -> tuple[_Token, int]:
    """Read the token at ``pos`` like apk-tools' token_next, checking what may follow what."""
    char = version[pos]
    if "a" <= char <= "z" and previous <= _Kind.DIGIT:
        return _Token(_Kind.LETTER, char, ord(char)), pos + 1
    if char == "." and previous <= _Kind.DIGIT:
        return _digits(version, pos + 1, _Kind.DIGIT)
    if char.isdigit() and previous == _Kind.SUFFIX:
        return _digits(version, pos, _Kind.SUFFIX_NO)
    if char == "_" and previous <= _Kind.SUFFIX_NO:
        word = _LOWER.match(version, pos + 1).group()  # type: ignore[union-attr]
        if word in _SUFFIXES:
            return _Token(_Kind.SUFFIX, word, suffix=_SUFFIXES[word]), pos + 1 + len(word)
    elif char == "~" and previous < _Kind.COMMIT_HASH:
        word = _HEX.match(version, pos + 1).group()  # type: ignore[union-attr]
        if word:
            return _Token(_Kind.COMMIT_HASH, word), pos + 1 + len(word)
    elif version.startswith("-r", pos) and previous < _Kind.REVISION_NO:
        return _digits(version, pos + 2, _Kind.REVISION_NO)
    return _Token(_Kind.INVALID), pos


def _tokens(version: str) -> list[_Token]:
    """Split like apk-tools' token_first/token_next; the list ends with END or INVALID."""
    token, pos = _digits(version, 0, _Kind.INITIAL_DIGIT)
    result = [token]
    while result[-1].kind < _Kind.END:
        if pos == len(version):
            token = _Token(_Kind.END)
        else:
            token, pos = _next_token(version, pos, result[-1].kind)
        result.append(token)
    return result


# The same grammar as the tokenizer, as one pattern: fast for whole APKINDEX files.
_VALID = re.compile(
    r"[0-9]{1,17}(?:\.[0-9]{1,17})*[a-z]?"
    r"(?:_(?:alpha|beta|pre|rc|cvs|svn|git|hg|p)[0-9]{0,17})*"
    r"(?:~[0-9a-f]+)?(?:-r[0-9]{1,17})?"
)


def is_valid_apk_version(version: str) -> bool:
    """Return True if ``version`` is a valid apk version (``1.2.3_rc1-r0``, ``2.0a``...)."""
    return _VALID.fullmatch(version) is not None


def _check(version: str) -> list[_Token]:
    tokens = _tokens(version)
    if tokens[-1].kind != _Kind.END:
        raise ApkVersionError(
            f"{version!r} is not a valid apk version",
            hint="apk versions look like digits{.digits}[letter]{_suffix[digits]}[-rN], "
            "e.g. 1.26.4_rc1-r0",
        )
    return tokens


def _compare_tokens(a: _Token, b: _Token) -> int:
    if a.kind == _Kind.DIGIT and (a.text.startswith("0") or b.text.startswith("0")):
        # A leading zero makes apk compare the digits as text, as Gentoo does.
        left, right = a.text, b.text
    elif a.kind in (_Kind.LETTER, _Kind.COMMIT_HASH):
        left, right = a.text, b.text
    elif a.kind == _Kind.SUFFIX:
        return (a.suffix > b.suffix) - (a.suffix < b.suffix)
    else:
        return (a.number > b.number) - (a.number < b.number)
    return (left > right) - (left < right)


def compare_apk_versions(a: str, b: str) -> int:
    """Compare two apk versions like ``apk version -t``: -1 if a < b, 0 if equal, 1 if a > b.

    Raises:
        ApkVersionError: if either string is not a valid apk version.
    """
    return _compare(_check(a), _check(b), fuzzy=False)


def _compare(left: list[_Token], right: list[_Token], *, fuzzy: bool) -> int:
    for ta, tb in zip(left, right, strict=False):
        if ta.kind != tb.kind or ta.kind == _Kind.END:
            break
        result = _compare_tokens(ta, tb)
        if result:
            return result
    if ta.kind == tb.kind or (fuzzy and tb.kind == _Kind.END):
        return 0
    # Equal so far and one goes on: the longer one is newer unless it goes on with a
    # pre-release suffix (1.0_rc1 < 1.0 < 1.0_p1 < 1.0.1).
    if ta.kind == _Kind.SUFFIX and ta.suffix < _NO_SUFFIX:
        return -1
    if tb.kind == _Kind.SUFFIX and tb.suffix < _NO_SUFFIX:
        return 1
    return -1 if ta.kind > tb.kind else 1


def apk_version_matches(version: str, op: str, constraint: str) -> bool:
    """Return True if ``version`` satisfies ``<op><constraint>`` as in an apk dependency.

    ``op`` is one of ``=``, ``<``, ``>``, ``<=``, ``>=``, ``~`` (prefix match: ``3.12.4``
    matches ``~3.12``), ``<~`` and ``>~``.

    Raises:
        ApkVersionError: for an invalid version or an unknown operator.
    """
    if op not in ("=", "<", ">", "<=", ">=", "~", "<~", ">~"):
        raise ApkVersionError(f"unknown apk version operator {op!r}")
    fuzzy = "~" in op
    result = _compare(_check(version), _check(constraint), fuzzy=fuzzy)
    return (
        (result < 0 and "<" in op)
        or (result > 0 and ">" in op)
        or (result == 0 and ("=" in op or fuzzy))
    )


def pep440_to_apk(version: str | Version) -> str:
    """Map a PEP 440 version to an apk version (without ``-rN``) that sorts the same way.

    ``2.0.0rc1 -> 2.0.0_rc1``, ``1.0a2 -> 1.0_alpha2``, ``1.0b1 -> 1.0_beta1``,
    ``1.0.post1 -> 1.0_p1``, ``1.0rc1.dev2 -> 1.0_rc1_pre2``, ``1.0.post1.dev2 -> 1.0_p1_pre2``
    and ``1.0.dev3 -> 1.0_alpha_pre3`` (below every alpha of 1.0). The release is kept as
    written, so ``1.0`` and ``1.0.0`` (equal in PEP 440) stay distinct in apk.

    Raises:
        ApkVersionError: for an invalid version, an epoch, a local version, or a number
            too large for apk.
    """
    try:
        parsed = version if isinstance(version, Version) else Version(version)
    except InvalidVersion:
        raise ApkVersionError(
            f"{version!r} is not a valid PEP 440 version", hint="use a version like 1.2.3"
        ) from None
    if parsed.epoch:
        raise ApkVersionError(
            f"cannot map {str(parsed)!r} to an apk version: apk has no epochs",
            hint="publish this release as a wheel only",
        )
    if parsed.local is not None:
        raise ApkVersionError(
            f"cannot map {str(parsed)!r} to an apk version: local versions (+{parsed.local}) "
            "are not for distribution",
            hint="build from a tagged release",
        )
    text = ".".join(str(part) for part in parsed.release)
    if parsed.pre is not None:
        stage, number = parsed.pre
        text += {"a": "_alpha", "b": "_beta", "rc": "_rc"}[stage] + str(number)
    if parsed.post is not None:
        text += f"_p{parsed.post}"
    if parsed.dev is not None:
        # A dev release precedes its pre/post release: "_pre" is below every other suffix
        # but alpha; a plain X.devN precedes even X.a0, hence "_alpha" with no number.
        no_other = parsed.pre is None and parsed.post is None
        text += ("_alpha" if no_other else "") + f"_pre{parsed.dev}"
    if not is_valid_apk_version(text):
        raise ApkVersionError(
            f"cannot map {str(parsed)!r} to an apk version: {text!r} is not valid "
            f"(apk allows at most {_MAX_DIGITS} digits per number)"
        )
    return text


_MAPPED = re.compile(
    r"(?P<release>[0-9]+(?:\.[0-9]+)*)"
    r"(?:(?P<devonly>_alpha_pre)(?P<devonly_n>[0-9]+)"
    r"|(?:_(?P<pre>alpha|beta|rc|pre)(?P<pre_n>[0-9]+))?"
    r"(?:_(?:p|git|svn|cvs|hg)(?P<post>[0-9]+))?"
    r"(?:_pre(?P<dev>[0-9]+))?)"
    r"(?:-r[0-9]+)?"
)
_PEP440_STAGE = {"alpha": "a", "beta": "b", "rc": "rc", "pre": "rc"}


def apk_to_pep440(apk_version: str) -> Version:
    """Map an apk version (``-rN`` allowed and dropped) back to a PEP 440 ``Version``.

    Inverse of :func:`pep440_to_apk`; also reads Alpine's ``_git``/``_svn``/``_cvs``/``_hg``
    snapshots as post releases and a lone ``_preN`` as ``rcN``.

    Raises:
        ApkVersionError: for an invalid apk version or one with no PEP 440 equivalent
            (letters such as ``1.2a``, commit hashes, unusual suffix chains).
    """
    _check(apk_version)
    match = _MAPPED.fullmatch(apk_version)
    if match is None:
        raise ApkVersionError(
            f"apk version {apk_version!r} has no PEP 440 equivalent",
            hint="only digits with _alpha/_beta/_rc/_pre/_p/_git suffixes map to PEP 440",
        )
    text = match["release"]
    if match["devonly"]:
        text += f".dev{match['devonly_n']}"
    else:
        if match["pre"]:
            text += _PEP440_STAGE[match["pre"]] + match["pre_n"]
        if match["post"]:
            text += f".post{match['post']}"
        if match["dev"]:
            text += f".dev{match['dev']}"
    return Version(text)


# [!]name[@tag][op version]; the tag (a pinned repository) does not change the package.
_DEPEND = re.compile(
    r"(?P<neg>!)?(?P<name>[^<>=~!@\s]+)(?:@[^<>=~\s]*)?(?:(?P<op>[<>=~]{1,2})(?P<ver>\S+))?"
)


@dataclass(frozen=True)
class ApkDependency:
    """One ``D:``/``i:`` token: ``name``, optional ``op`` and ``version``; ``!`` is a conflict."""

    name: str
    op: str = ""
    version: str = ""
    conflict: bool = False

    @classmethod
    def parse(cls, token: str) -> ApkDependency | None:
        """Parse ``[!]name[@tag][op version]``; None for a token apk would not understand."""
        match = _DEPEND.fullmatch(token)
        if match is None:
            return None
        return cls(match["name"], match["op"] or "", match["ver"] or "", bool(match["neg"]))

    def matches(self, version: str) -> bool:
        """Whether ``version`` (of a package or a versioned provide) satisfies the constraint."""
        if not self.op:
            return True
        if not version:
            return False
        try:
            return apk_version_matches(version, self.op, self.version)
        except ApkVersionError:
            return False

    def __str__(self) -> str:
        """Return the token as apk writes it."""
        return f"{'!' if self.conflict else ''}{self.name}{self.op}{self.version}"
