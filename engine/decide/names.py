"""The name functions of the reference connector (behaviour.md §2).

``ns`` builds an ERP name from a Shopify customer's or address's parts on import; ``split``
turns an ERP name back into first and last name on export.
"""

from __future__ import annotations

FIRST_AND_LAST = "first_and_last_name"
LAST_AND_FIRST = "last_and_first_name"
COMPANY = "company_name"
NONE = "none"


def _clean(text: str | None) -> str:
    return " ".join(text.split()) if text else ""


def ns(source: str, first: str | None, last: str | None, company: str | None) -> str:
    """NS(source): ``first_and_last_name`` -> "first last", ``last_and_first_name`` ->
    "last first" (no comma), ``company_name`` -> company, anything else -> ""."""
    if source == FIRST_AND_LAST:
        return _pair(_clean(first), _clean(last))
    if source == LAST_AND_FIRST:
        return _pair(_clean(last), _clean(first))
    if source == COMPANY:
        return _clean(company)
    return ""


def ns_each(
    sources: tuple[str, ...], first: str | None, last: str | None, company: str | None
) -> list[str]:
    """:func:`ns` of each source for the same parts, each part cleaned once."""
    first, last, company = _clean(first), _clean(last), _clean(company)
    by_source = {
        FIRST_AND_LAST: _pair(first, last),
        LAST_AND_FIRST: _pair(last, first),
        COMPANY: company,
    }
    return [by_source.get(source, "") for source in sources]


def _pair(one: str, two: str) -> str:
    """``one two``, or the one of them that is not empty."""
    if one and two:
        return f"{one} {two}"
    return one or two


def split(text: str | None, source: str) -> tuple[str, str] | None:
    """Split(text, source) -> (first, last), or None when the source does not split.

    ``first_and_last_name``: first = the first word, last = the rest; ``last_and_first_name``:
    first = the last word, last = the rest. Empty text gives None. "Madonna" -> ("Madonna", "").
    """
    words = (text or "").split()
    if not words or source not in (FIRST_AND_LAST, LAST_AND_FIRST):
        return None
    if source == FIRST_AND_LAST:
        return words[0], " ".join(words[1:])
    return words[-1], " ".join(words[:-1])
