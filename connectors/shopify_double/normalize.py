"""Shopify's write-side normalisation and validation of customer fields, as captured live.

Each function returns the normalised value and a list of ``(field, message)`` problems with
Shopify's exact wording (see ``../shared/shopify/captures/customer-*-normalization.json``).
"""

from __future__ import annotations

import functools
import re
from typing import Any

import phonenumbers
import pycountry

MAX_TEXT = 255
MAX_NOTE = 5000
MAX_TAGS = 250

Problem = tuple[str, str]  # (input field name, message)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
_PHONE_CHARS = re.compile(r"^[0-9+()\-.\s/]*$")
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def blank_to_none(value: Any) -> str | None:
    """Names: surrounding blanks trimmed, an all-blank value stored as ``null``."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def email(value: str | None) -> tuple[str | None, list[Problem]]:
    """Spaces inside and around the address are removed; case is kept (compared without)."""
    if value is None:
        return None, []
    cleaned = re.sub(r"\s+", "", value)
    if not cleaned:
        return None, []
    problems: list[Problem] = []
    if len(cleaned) > MAX_TEXT:
        problems.append(("email", "Email is too long (maximum is 255 characters)"))
    if len(cleaned) > MAX_TEXT or not _EMAIL.match(cleaned):
        problems.append(("email", "Email is invalid"))
    return cleaned, problems


def email_key(value: str | None) -> str:
    """The form Shopify compares e-mail addresses in: no spaces, lower case."""
    return re.sub(r"\s+", "", value or "").lower()


def phone(value: str | None, default_region: str = "US") -> tuple[str | None, list[Problem]]:
    """Stored as E.164 (``+`` and digits); ``""`` means no phone."""
    if value is None:
        return None, []
    text = value.strip()
    if not text:
        return None, []
    problems: list[Problem] = []
    if len(text) > MAX_TEXT:
        problems.append(("phone", "Phone is too long (maximum is 255 characters)"))
        problems.append(("phone", "Phone is invalid"))
        return text, problems
    normalised = e164(text, default_region)
    if normalised is None:
        return text, [("phone", "Phone is invalid")]
    return normalised, []


@functools.lru_cache(maxsize=8192)  # a write checks the same phone twice (value, uniqueness)
def e164(text: str, default_region: str = "US") -> str | None:
    """``"+1 (613) 450-5293"`` -> ``"+16134505293"``; ``None`` when it is no phone number."""
    if not _PHONE_CHARS.match(text) or not any(ch.isdigit() for ch in text):
        return None
    try:
        parsed = phonenumbers.parse(text, None if text.startswith("+") else default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def national(value: str) -> str:
    """A phone in international format for ``displayName`` (``"+1 415-810-3301"``)."""
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return value
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def tags(value: list[str] | None) -> tuple[list[str] | None, list[Problem]]:
    """Split on commas, trim, drop blanks, de-duplicate ignoring case, sort ignoring case."""
    if value is None:
        return None, []
    seen: dict[str, str] = {}
    for raw in value:
        for part in str(raw).split(","):
            tag = part.strip()
            if tag and tag.lower() not in seen:
                seen[tag.lower()] = tag
    result = sorted(seen.values(), key=str.lower)
    problems: list[Problem] = []
    if any(len(tag) > MAX_TEXT for tag in result):
        problems.append(("tags", "Tags is too long (maximum is 255 characters)"))
    if len(result) > MAX_TAGS:
        problems.append(("tags", f"Tags cannot be more than {MAX_TAGS}"))
    return result, problems


def name_problems(first: str | None, last: str | None, note: str | None) -> list[Problem]:
    problems: list[Problem] = []
    if first and len(first) > MAX_TEXT:
        problems.append(("firstName", "First name is too long (maximum is 255 characters)"))
    if last and len(last) > MAX_TEXT:
        problems.append(("lastName", "Last name is too long (maximum is 255 characters)"))
    if note and len(note) > MAX_NOTE:
        problems.append(("note", "Note is too long (maximum is 5000 characters)"))
    return problems


def locale_ok(value: str) -> bool:
    return bool(_LOCALE.match(value))


#: Shopify country codes that are not ISO 3166-1 countries (pycountry does not know them)
_SHOPIFY_ONLY_COUNTRIES = {
    "AC": "Ascension Island",
    "AN": "Netherlands Antilles",
    "TA": "Tristan da Cunha",
    "XK": "Kosovo",
    "ZZ": "Unknown Region",
}


@functools.lru_cache(maxsize=1)
def shopify_country_codes() -> frozenset[str]:
    """The values of the Admin API's ``CountryCode`` enum in the double's schema. ISO codes
    outside it (AQ, and US territories such as PR or GU, which Shopify keeps as US provinces)
    cannot be stored: a query returning one would fail for every reader."""
    from importlib import resources

    text = resources.files(__package__).joinpath("schema.graphql").read_text(encoding="utf-8")
    found = re.search(r"enum CountryCode \{([^}]*)\}", text)
    return frozenset(found.group(1).split()) if found else frozenset()


@functools.lru_cache(maxsize=1024)  # pycountry lookups are slow; stores repeat a few countries
def country(code_or_name: str | None) -> tuple[str, str] | None:
    """``(ISO code, English name)`` for a code or name Shopify accepts; ``None`` when unknown."""
    if not code_or_name:
        return None
    text = code_or_name.strip()
    if text.upper() in _SHOPIFY_ONLY_COUNTRIES:
        return text.upper(), _SHOPIFY_ONLY_COUNTRIES[text.upper()]
    found = pycountry.countries.get(alpha_2=text.upper()) if len(text) == 2 else None
    if found is None:
        try:
            found = pycountry.countries.lookup(text)
        except LookupError:
            return None
    known = shopify_country_codes()
    if known and found.alpha_2 not in known:
        return None
    name = getattr(found, "common_name", None) or found.name
    return found.alpha_2, name


@functools.lru_cache(maxsize=4096)
def province(country_code: str, code_or_name: str | None) -> tuple[str, str] | bool | None:
    """``(code, name)`` of a subdivision; ``None`` when none was given or the country has no
    provinces in Shopify (it then drops the value, as captured); ``False`` if unknown.
    """
    if not code_or_name:
        return None
    text = code_or_name.strip()
    if country_code not in _PROVINCE_COUNTRIES:
        return None
    subdivisions = pycountry.subdivisions.get(country_code=country_code) or []
    for sub in subdivisions:
        short = sub.code.split("-", 1)[1]
        if text.upper() == short or text.lower() == sub.name.lower():
            return short, sub.name
    return False


#: countries for which Shopify's address form has a required province/state list
_PROVINCE_COUNTRIES = frozenset({"US", "CA", "AU", "MX", "BR", "IN", "JP", "IT", "ES", "AR"})
#: countries whose Shopify provinces are the lowest ISO level (Italian and Spanish provinces,
#: not their regions)
_LEAF_LEVEL = frozenset({"IT", "ES"})


@functools.lru_cache(maxsize=256)
def provinces(country_code: str) -> tuple[tuple[str, str], ...]:
    """``(code, name)`` of every province a shipping zone lists for the country, in code
    order: the subdivisions :func:`province` accepts, at the level Shopify lists them; empty
    for countries without provinces."""
    if country_code not in _PROVINCE_COUNTRIES:
        return ()
    subdivisions = list(pycountry.subdivisions.get(country_code=country_code) or [])
    if country_code in _LEAF_LEVEL:
        parents = {sub.parent_code for sub in subdivisions if sub.parent_code}
        chosen = [sub for sub in subdivisions if sub.code not in parents]
    else:
        chosen = [sub for sub in subdivisions if sub.parent_code is None]
    return tuple(sorted((sub.code.split("-", 1)[1], str(sub.name)) for sub in chosen))
