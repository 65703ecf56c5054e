"""Phone rules: E.164 via phonenumbers and the reference connector's digit rule."""

from __future__ import annotations

import pytest
from custsync.engine import phones


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+1 415 555 1234", None, "+14155551234"),
        ("415 555 1234", "US", "+14155551234"),
        ("4155551234", "US", "+14155551234"),
        ("(415)555-1234", "US", "+14155551234"),
        ("+1 415-555-1234", "DE", "+14155551234"),
        ("030 1234567", "DE", "+49301234567"),
        ("12", "US", None),
        ("030 1234567", None, None),  # no prefix and no country: cannot be read
        ("not a phone", "US", None),
        ("", "US", None),
        ("1" * 60, "US", None),
    ],
)
def test_to_e164(raw: str, region: str | None, expected: str | None) -> None:
    assert phones.to_e164(raw, region) == expected


def test_us_national_number_equals_international_form() -> None:
    # the case the reference connector misses
    assert phones.match_e164("+1 415 555 1234", "US") == phones.match_e164("415 555 1234", "US")


def test_match_e164_takes_canonical_numbers_as_they_are() -> None:
    assert phones.match_e164("+14155551234", "DE") == "+14155551234"
    assert phones.match_e164("12", "US") is None


def test_digits_strip_everything_but_digits_and_leading_zeros() -> None:
    assert phones.digits("+49 (0)30 123-4567") == "490301234567"
    assert phones.digits("0030 1234") == "301234"
    assert phones.digits(None) == ""


@pytest.mark.parametrize(
    ("shopify", "erp", "matches"),
    [
        ("4155551234", "14155551234", True),  # extra ERP digit (country code) is fine
        ("5550123", "4155550123", True),
        ("301234567", "490301234567", True),  # extra digits inside the ERP number
        ("415555012345", "4155550123", False),  # extra Shopify digits are not
        ("4155550124", "4155550123", False),  # must end with the last Shopify digit
        ("4155550123", "41555501239", False),
        ("", "123", False),
    ],
)
def test_digit_rule(shopify: str, erp: str, matches: bool) -> None:
    assert phones.match_digits(shopify, erp) is matches


def test_suffix_keys_cover_extensions() -> None:
    assert phones.suffix_keys("415 555 1234 ext. 12") == {"551234", "123412"}
    assert phones.suffix_keys("12") == set()
