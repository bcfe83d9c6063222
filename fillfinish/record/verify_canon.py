"""A cheap sufficient test that stored entry data is its canonical JSON text, learned per entry kind (decision 0024).

`chain.canonical_text(t) == t` (parse with the C scanner, re-encode with the C encoder) is the exact test; it is about
half of verify's cost per entry. Most entries of a kind share their keys, so for each flat key set seen (a text that
passed the exact test, an object of strings, numbers, booleans and nulls) a regular expression is compiled that accepts
only canonical texts of that shape: the keys verbatim in sorted order, no spaces, strings without any character the
encoder escapes, integers without a sign on 0 or leading zeros, and floats whose `repr` is their text. A text the
patterns do not accept goes to the exact test, so the answer is always the exact test's (only faster).
"""

from __future__ import annotations

import re
from typing import Any

from fillfinish.record.chain import canonical_text, json_string

_STR = r'"[^"\\\x00-\x1f]*"'  # the encoder (ensure_ascii=False) escapes exactly '"', '\' and U+0000..U+001F
_INT = r"(?:0|-?[1-9][0-9]{0,15})"  # "-0" parses as int 0 and is written "0": not canonical, not accepted here
_FLOAT = r"(-?(?:0|[1-9][0-9]{0,15})(?:\.[0-9]{1,17})?(?:e[-+][0-9]{1,3})?)"  # checked: repr(float(text)) == text
_VALUE = f"(?:{_STR}|true|false|null|{_INT}|{_FLOAT})"
_MAX_SHAPES = 16
"""Patterns kept per kind (the most recently learned win)."""
_MAX_FLOATS = 1 << 16
"""Float texts remembered as canonical before the memo is emptied (bounded memory)."""


class CanonicalShapes:
    """Per kind, the compiled patterns of the flat key sets seen so far, and a memo of float texts known canonical."""

    def __init__(self) -> None:
        """Start with no patterns."""
        self._patterns: dict[Any, list[Any]] = {}
        self._floats: set[str] = set()

    def is_canonical(self, kind: Any, text: Any) -> bool:
        """True exactly when `text` is its canonical JSON text (chain.canonical_text(text) == text)."""
        for pattern in self._patterns.get(kind, ()):
            match = pattern(text)
            if match is not None:
                floats = self._floats
                for number in match.groups():
                    if number is not None and number not in floats and not self._float_ok(number):
                        return canonical_text(text) == text
                return True
        if not isinstance(text, str) or canonical_text(text) != text:
            return False
        self._learn(kind, text)
        return True

    def _float_ok(self, number: str) -> bool:
        """True when `number` is the text the encoder writes for the float it parses to (remembered)."""
        if repr(float(number)) != number:
            return False
        if len(self._floats) >= _MAX_FLOATS:
            self._floats.clear()
        self._floats.add(number)
        return True

    def _learn(self, kind: Any, text: str) -> None:
        """Compile the pattern of a canonical `text` when it is a flat object (nested values keep the exact test)."""
        import json

        value = json.loads(text)
        if not isinstance(value, dict) or any(isinstance(item, (dict, list)) for item in value.values()):
            return
        keys = list(value)  # canonical text: the keys are in sorted order, once each
        body = ",".join(re.escape(json_string(key)) + ":" + _VALUE for key in keys)
        patterns = self._patterns.setdefault(kind, [])
        patterns.insert(0, re.compile(r"\{" + body + r"\}", re.DOTALL).fullmatch)
        del patterns[_MAX_SHAPES:]
