"""Parse JSON from outside: bad or too deeply nested text is a value error, not a crash."""

from __future__ import annotations

import json
from typing import Any


class JsonInputError(ValueError):
    """The text is not JSON, or nests deeper than the parser can follow."""


def loads(raw: bytes | str) -> Any:
    """Return the parsed JSON document.

    ``json`` recurses once per nesting level, so ``[[[[...`` a hundred thousand deep
    raises RecursionError; that is reported like any other malformed document.

    Raises:
        JsonInputError: the text is not valid JSON (its message says why).
    """
    try:
        return json.loads(raw)
    except RecursionError:
        raise JsonInputError("the JSON document nests too deeply") from None
    except ValueError as error:
        raise JsonInputError(f"not valid JSON: {error}") from None
