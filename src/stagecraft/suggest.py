"""Did-you-mean: the known names closest to a misspelt one, for every message that needs it.

Config keys, provider ids, compose services, command names, environments and
hosts given on the command line all suggest through :func:`suggestion`, so a
typo reads the same wherever it is made::

    >>> suggestion("stagign", ["production", "staging"])
    " (did you mean 'staging'?)"
    >>> suggestion("web", ["web-1", "web-2", "data-1"], n=3)
    " (did you mean 'web-1' or 'web-2'?)"
    >>> suggestion("qa", ["production", "staging"])
    ''

Only the standard library is imported: a mistyped command is answered
without loading the config machinery.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

DEFAULT_CUTOFF = 0.6
"""difflib's similarity ratio a candidate needs to be suggested."""


def closest(
    word: str, candidates: Iterable[str], *, n: int = 1, cutoff: float = DEFAULT_CUTOFF
) -> list[str]:
    """Up to ``n`` candidates close enough to ``word``, closest first, ties in given order.

    The score is difflib's ratio, as in :func:`difflib.get_close_matches`
    (which would order ties backwards: ``web-2`` before ``web-1``).
    """
    matcher = difflib.SequenceMatcher()
    matcher.set_seq2(word)
    scored = []
    for index, candidate in enumerate(str(c) for c in candidates):
        matcher.set_seq1(candidate)
        if matcher.real_quick_ratio() >= cutoff and matcher.quick_ratio() >= cutoff:
            ratio = matcher.ratio()
            if ratio >= cutoff:
                scored.append((-ratio, index, candidate))
    return [candidate for _, _, candidate in sorted(scored)[:n]]


def suggestion(
    word: str, candidates: Iterable[str], cutoff: float = DEFAULT_CUTOFF, *, n: int = 1
) -> str:
    """`` (did you mean 'x'?)`` naming up to ``n`` close candidates, or an empty string.

    Keys come from a small fixed vocabulary; names the user chose (services,
    roles) deserve a stricter ``cutoff`` to avoid silly suggestions.
    """
    matches = closest(word, candidates, n=n, cutoff=cutoff)
    if not matches:
        return ""
    named = [f"'{m}'" for m in matches]
    listed = named[0] if len(named) == 1 else ", ".join(named[:-1]) + f" or {named[-1]}"
    return f" (did you mean {listed}?)"
