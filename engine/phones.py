"""Phone numbers: E.164 via phonenumbers, and the reference connector's digit rule.

* :func:`to_e164` reads a number in the customer's country when it has no ``+`` prefix and
  returns E.164 only for a number that is valid ("callable worldwide"), else None.
* :func:`match_digits` is the reference connector's rule (behaviour.md §3.2): digits only,
  leading zeros stripped; the Shopify digits must appear in order in the ERP digits and the ERP
  digits must end with the last Shopify digit. Extra ERP digits (a country code) are fine,
  extra Shopify digits are not.
* :func:`suffix_key` is the index key both lookups use to find candidates cheaply: the last
  :data:`SUFFIX_DIGITS` digits (extensions removed).
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

#: digits compared by the candidate index; a match must agree on these last digits
SUFFIX_DIGITS = 6
#: the digit rule needs this many Shopify digits (shorter numbers match almost any phone)
MIN_DIGIT_RULE_DIGITS = SUFFIX_DIGITS
#: longest text treated as a phone number at all
MAX_PHONE_LENGTH = 40

_EXTENSION = re.compile(r"(?i)\s*(?:ext\.?|extension|x|#)\s*\d+\s*$")
_NON_DIGITS = re.compile(r"\D+")
#: a number already in E.164 (no national prefix after the country code)
_CANONICAL = re.compile(r"^\+[1-9]\d{6,14}$")


def strip_extension(text: str) -> str:
    return _EXTENSION.sub("", text)


def digits(text: str | None) -> str:
    """Digits only, leading zeros stripped (the digit rule's normal form)."""
    return _NON_DIGITS.sub("", text or "").lstrip("0")


def suffix_key(text: str | None) -> str:
    """The candidate-index key of a phone: the last :data:`SUFFIX_DIGITS` of its digits
    ("" for shorter numbers)."""
    only = digits(text)
    return only[-SUFFIX_DIGITS:] if len(only) >= SUFFIX_DIGITS else ""


def suffix_keys(text: str | None) -> set[str]:
    """The keys an ERP phone is indexed under: with and without a trailing extension."""
    keys = {suffix_key(text), suffix_key(strip_extension(text or ""))}
    keys.discard("")
    return keys


def match_digits(shopify_digits: str, erp_digits: str) -> bool:
    """The digit rule on normal forms (see :func:`digits`)."""
    if not shopify_digits or not erp_digits or erp_digits[-1] != shopify_digits[-1]:
        return False
    position = 0
    for digit in shopify_digits[:-1]:
        position = erp_digits.find(digit, position, len(erp_digits) - 1)
        if position < 0:
            return False
        position += 1
    return True


def _parse(text: str | None, region: str | None) -> phonenumbers.PhoneNumber | None:
    raw = (text or "").strip()
    if not raw or len(raw) > MAX_PHONE_LENGTH:
        return None
    try:
        return phonenumbers.parse(raw, (region or "").upper() or None)
    except phonenumbers.NumberParseException:
        return None


@lru_cache(maxsize=65_536)
def to_e164(text: str | None, region: str | None = None) -> str | None:
    """The number in E.164 when it parses and is valid ("callable worldwide"), else None.

    A number without ``+`` is read in ``region`` (ISO 3166-1 alpha-2); without a region such a
    number cannot be read and gives None. Used for export, where Shopify gets this value.
    """
    number = _parse(text, region)
    if number is None or not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=65_536)
def match_e164(text: str | None, region: str | None = None) -> str | None:
    """The number in E.164 when it parses and has a possible length, else None.

    For matching (behaviour.md §3.2: "E.164 equality when both numbers parse"): cheaper than
    :func:`to_e164` (no validity check against the numbering plan), and lenient on purpose.
    """
    raw = (text or "").strip()
    if _CANONICAL.match(raw):
        return raw  # already E.164, as Shopify stores phones: no need to parse
    number = _parse(raw, region)
    if number is None or not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normal_e164(text: str | None) -> str:
    """A phone Shopify stores (E.164) as ``+`` and digits, for equality lookups."""
    raw = (text or "").strip()
    if not raw:
        return ""
    only = _NON_DIGITS.sub("", raw)
    return f"+{only}" if only else ""
