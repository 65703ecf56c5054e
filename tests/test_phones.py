"""Phone rules: E.164 via phonenumbers and the reference connector's digit rule."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from custsync.engine.decide import phones


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


def test_separators_do_not_change_the_reading() -> None:
    # a simple text is parsed as "+"/nothing and its digits: the same number either way
    for raw, region in [
        ("(415) 555-1234", "US"),
        ("+1 (415) 555.1234", "DE"),
        (" - 030 123 4567 ", "DE"),
        ("011 15 2345-6789", "AR"),
        ("1 2", "US"),  # fewer than three digits: read as it is
    ]:
        try:
            expected = phonenumbers.parse(raw.strip(), region)
        except phonenumbers.NumberParseException:
            expected = None
        found = phones.reading(raw, region)
        if expected is None:
            assert found.e164 is None
        else:
            assert found.e164 == phonenumbers.format_number(
                expected, phonenumbers.PhoneNumberFormat.E164
            )
            assert found.valid is phonenumbers.is_valid_number(expected)


def test_one_parse_serves_matching_and_export() -> None:
    before = phones._read.cache_info()
    assert phones.match_e164("+1 212 555 0143", "US") == "+12125550143"
    assert phones.to_e164("+1 (212) 555-0143", "US") == "+12125550143"
    after = phones._read.cache_info()
    assert after.misses - before.misses <= 1 and after.hits - before.hits >= 1


@pytest.mark.parametrize(
    ("text", "region", "e164", "possible"),
    [
        ("415 555 1234", "US", "+14155559999", False),  # other digits: no parse needed
        ("415 555 1234", "US", "+14155551234", True),
        ("+1 415 555 1234", "DE", "+14155551234", True),
        ("415 555 1234", "US", "+4415551234", False),
        ("415 555 1234 ext. 5", "US", "+14155559999", True),  # not a simple text: parse it
        ("011 15 2345-6789", "AR", "+5491123456789", True),  # AR rewrites its prefix
        ("", "US", "+14155551234", False),
        ("415 555 1234", "US", "not e164", True),
    ],
)
def test_could_read_as(text: str, region: str, e164: str, possible: bool) -> None:
    assert phones.could_read_as(text, region, e164) is possible


def _random_text(rng: random.Random) -> str:
    if rng.random() < 0.5:
        region = rng.choice(["US", "CA", "DE", "GR", "AR", "BR", "JP", "GB", "AG", "IT", "MX"])
        number = phonenumbers.example_number(region)
        assert number is not None
        text = phonenumbers.format_number(
            number,
            rng.choice(
                [
                    phonenumbers.PhoneNumberFormat.E164,
                    phonenumbers.PhoneNumberFormat.INTERNATIONAL,
                    phonenumbers.PhoneNumberFormat.NATIONAL,
                ]
            ),
        )
        return "".join(
            c if not c.isdigit() or rng.random() > 0.2 else str(rng.randint(0, 9)) for c in text
        )
    parts = ["+"] if rng.random() < 0.4 else []
    for _ in range(rng.randint(0, 14)):
        parts.append(str(rng.randint(0, 9)))
        parts.append(rng.choice([" ", "-", ".", "(", ")", "", "", ""]))
    return "".join(parts)


def test_could_read_as_never_rejects_a_real_reading() -> None:
    """The rejection filter against phonenumbers itself, on simple texts of many regions
    (including those whose national prefix is rewritten, AR, BR, JP, AG)."""
    rng = random.Random(20260701)
    regions = ["US", "CA", "DE", "GR", "AR", "BR", "JP", "GB", "GG", "AG", "IT", "MX", "XX", None]
    for _ in range(3000):
        text, region = _random_text(rng), rng.choice(regions)
        for e164 in (phones.to_e164(text, region), phones.match_e164(text, region)):
            if e164:
                assert phones.could_read_as(text, region, e164), (text, region, e164)


def test_is_valid_number_answers_as_phonenumbers_does() -> None:
    """Every region of every calling code shared by several regions (NANPA, 44, 7, ...):
    example numbers of each type, and the same numbers with digits changed."""
    rng = random.Random(7)
    shared = [
        r for rs in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.values() if len(rs) > 1 for r in rs
    ]
    checked = 0
    for region in shared:
        for kind in range(11):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            text = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            checked += _validity_agrees_on_mutations(text, rng, 6)
    assert checked > 1000


def test_is_valid_number_answers_as_phonenumbers_does_for_one_region_codes() -> None:
    """Calling codes of one region and non-geographic ones: example numbers of each type, the
    same numbers with digits changed, and random national numbers."""
    rng = random.Random(3)
    checked = 0
    for code, regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items():
        if len(regions) != 1:
            continue
        texts: list[str] = []
        for kind in range(11):
            example = (
                phonenumbers.example_number_for_non_geo_entity(code)
                if regions[0] == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY
                else phonenumbers.example_number_for_type(regions[0], kind)
            )
            if example is not None:
                texts.append(
                    phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
                )
        texts += [f"+{code}{rng.randint(10**5, 10**11)}" for _ in range(4)]
        for text in texts:
            checked += _validity_agrees_on_mutations(text, rng, 4)
    assert checked > 3000


def _validity_agrees_on_mutations(text: str, rng: random.Random, tries: int) -> int:
    """``tries`` copies of the E.164 ``text`` with digits after the calling code changed at
    random: phones.is_valid_number must answer as phonenumbers does. How many parsed."""
    checked = 0
    for _ in range(tries):
        mutated = text[:3] + "".join(
            c if rng.random() > 0.3 else str(rng.randint(0, 9)) for c in text[3:]
        )
        try:
            number = phonenumbers.parse(mutated, None)
        except phonenumbers.NumberParseException:
            continue
        assert phones.is_valid_number(number) is phonenumbers.is_valid_number(number), mutated
        checked += 1
    return checked


def test_digits_fast_path_answers_as_the_library_does() -> None:
    from phonenumbers import phonenumberutil

    patched = phonenumberutil.normalize_digits_only
    original = getattr(patched, "__wrapped__", patched)
    rng = random.Random(5)
    alphabet = "0123456789 +-().x#\uff10\uff19\u0663a"  # ASCII, full-width and Arabic digits
    texts = ["", "0", "0123456789", "\uff11\uff12", "12\u06633", "+123", "12 34"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 16))) for _ in range(500)]
    texts += [str(rng.randint(0, 10**15)) for _ in range(200)]
    for text in texts:
        for keep in (False, True):
            assert patched(text, keep) == original(text, keep), (text, keep)


def test_parse_is_unchanged_by_the_digits_fast_path() -> None:
    from phonenumbers import phonenumberutil

    patched = phonenumberutil.normalize_digits_only
    original = getattr(patched, "__wrapped__", patched)
    rng = random.Random(11)
    samples = [
        (
            f"{rng.choice(['+1', '', '0', '+49', '00 49 ', '+44 '])}{rng.randint(10**5, 10**11)}",
            rng.choice(["US", "DE", "GB", "NL", "GR", "CA"]),
        )
        for _ in range(300)
    ]

    def readings() -> list[object]:
        found: list[object] = []
        for text, region in samples:
            try:
                found.append(phonenumbers.parse(text, region))
            except phonenumbers.NumberParseException as exc:
                found.append(exc.error_type)
        return found

    fast = readings()
    phonenumberutil.normalize_digits_only = original
    try:
        slow = readings()
    finally:
        phonenumberutil.normalize_digits_only = patched
    assert fast == slow


def test_extension_fast_path_answers_as_the_library_does() -> None:
    from phonenumbers import phonenumberutil

    patched = phonenumberutil._maybe_strip_extension
    original = getattr(patched, "__wrapped__", patched)
    assert original is not patched or phonenumbers.__version__ != "9.0.43"
    rng = random.Random(9)
    alphabet = "0123456789++ -#x;,~e\uff10\u0663"
    texts = ["", "+", "++1", "+14155551234", "4155551234", "1+2", "555-1234 #12", "12 x 3"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20))) for _ in range(2000)]
    texts += [rng.choice(["+", ""]) + str(rng.randint(0, 10**15)) for _ in range(300)]
    for text in texts:
        assert patched(text) == original(text), text


def _plus_and_digit_texts(rng: random.Random) -> list[str]:
    alphabet = "0123456789+ -().;/\\x#\uff10\u0663a:"
    texts = ["", "+", "++1", "1", "12", "+12", "123", "+123", "1+2", "+1 415", "tel:+1415"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20))) for _ in range(2000)]
    texts += [rng.choice(["+", "", "00"]) + str(rng.randint(0, 10**16)) for _ in range(500)]
    return texts


def test_parse_step_fast_paths_answer_as_the_library_does() -> None:
    from phonenumbers import phonenumberutil

    rng = random.Random(13)
    idd = ["011", "00", "NonMatch", "0(?:0|1[0-2])", "8~10"]
    for name in (
        "_build_national_number_for_parsing",
        "_is_viable_phone_number",
        "_normalize",
        "_maybe_strip_i18n_prefix_and_normalize",
    ):
        patched = getattr(phonenumberutil, name)
        original = getattr(patched, "__wrapped__", patched)
        assert original is not patched or phonenumbers.__version__ != "9.0.43"
        for text in _plus_and_digit_texts(rng):
            args = (text, rng.choice(idd)) if name.startswith("_maybe") else (text,)
            try:
                expected: object = original(*args)
            except phonenumbers.NumberParseException as exc:
                expected = exc.error_type
            try:
                found: object = patched(*args)
            except phonenumbers.NumberParseException as exc:
                found = exc.error_type
            assert found == expected, (name, text)


def test_parse_is_unchanged_by_the_fast_paths() -> None:
    """Every shortcut taken out at once: the same numbers (or errors) for the simple forms
    parse is handed and for texts of every kind, in regions of every kind."""
    from phonenumbers import phonenumberutil

    names = (
        "normalize_digits_only",
        "_maybe_strip_extension",
        "_build_national_number_for_parsing",
        "_is_viable_phone_number",
        "_normalize",
        "_maybe_strip_i18n_prefix_and_normalize",
    )
    patched = {name: getattr(phonenumberutil, name) for name in names}
    rng = random.Random(17)
    regions = ["US", "CA", "DE", "GR", "AR", "BR", "JP", "GB", "IT", "MX", "AG", "XX", None]
    samples = [(text, rng.choice(regions)) for text in _plus_and_digit_texts(rng)]
    samples += [(phones._simple_form(_random_text(rng)), rng.choice(regions)) for _ in range(2000)]

    def readings() -> list[object]:
        found: list[object] = []
        for text, region in samples:
            try:
                found.append(phonenumbers.parse(text, region))
            except phonenumbers.NumberParseException as exc:
                found.append(exc.error_type)
        return found

    fast = readings()
    for name, function in patched.items():
        setattr(phonenumberutil, name, getattr(function, "__wrapped__", function))
    try:
        slow = readings()
    finally:
        for name, function in patched.items():
            setattr(phonenumberutil, name, function)
    assert fast == slow
    assert sum(isinstance(found, phonenumbers.PhoneNumber) for found in fast) > 1000


def test_desc_matching_and_e164_formatting_answer_as_the_library_does() -> None:
    """phones' one-call description match against the library's, on every description of
    every region with its example numbers and random numbers of its lengths; the E.164 text
    of parsed numbers against format_number."""
    from phonenumbers.phonemetadata import PhoneMetadata
    from phonenumbers.phonenumberutil import _is_number_matching_desc

    rng = random.Random(19)
    checked = matched = 0
    for region in sorted(phonenumbers.SUPPORTED_REGIONS)[::3]:
        metadata = PhoneMetadata.metadata_for_region(region)
        descs = [
            metadata.general_desc,
            metadata.fixed_line,
            metadata.mobile,
            metadata.toll_free,
            metadata.premium_rate,
            metadata.voip,
            metadata.uan,
            None,
        ]
        for desc in descs:
            numbers = [desc.example_number] if desc is not None and desc.example_number else []
            numbers += [str(rng.randint(0, 10**12))[: rng.randint(1, 12)] for _ in range(20)]
            for nsn in numbers:
                expected = _is_number_matching_desc(nsn, desc)
                assert phones._matches_desc(nsn, desc) is expected, (region, nsn)
                checked += 1
                matched += expected
    assert checked > 3000 and matched > 100
    for text in (
        "+14155551234",
        "0301234567",
        "+390612345678",
        "+44 7911 123456",
        "+800 1234 5678",
    ):
        number = phonenumbers.parse(text, "DE")
        assert phones._format_e164(number) == phonenumbers.format_number(
            number, phonenumbers.PhoneNumberFormat.E164
        )


def test_simple_form_shortcut_answers_as_the_pattern() -> None:
    rng = random.Random(23)
    texts = ["+1 415", "+ 415", "12", "1 2", "+12", "+", "1+23", "++123", "4155551234", "+1\t415"]
    texts += [_random_text(rng).strip() for _ in range(3000)]
    for text in texts:
        simple = phones._SIMPLE.match(text)
        only = phones._NOT_ASCII_DIGITS.sub("", text)
        expected = text if simple is None or len(only) < 3 else simple.group(1) + only
        assert phones._simple_form(text) == expected, text


def test_digits_shortcut_answers_as_the_pattern() -> None:
    rng = random.Random(29)
    texts = ["", "0", "+", "+0", "007", "+0049", "+14155551234", "١٢٣", "+١٢", "12a", "+1+2"]
    texts += [_random_text(rng) for _ in range(2000)]
    for text in texts:
        assert phones.digits(text) == phones._NON_DIGITS.sub("", text).lstrip("0"), text


def test_simple_form_parse_answers_as_the_library_does() -> None:
    """phones' parse of simple forms against phonenumbers.parse: example numbers of every
    region in E.164 and national form (digits changed, prefixes added: trunk 0, IDD 00/011,
    the calling code without +, + and an unknown code), read in their own region, another
    one, an unknown one and none; the same number (all fields) or the same error."""
    rng = random.Random(31)
    regions = sorted(phonenumbers.SUPPORTED_REGIONS)
    prefixes = ["", "", "0", "00", "011", "1", "8", "+", "+0", "+999", "+1", "+44"]
    checked = parsed = 0
    for region in regions:
        for kind in (0, 1, 2):  # fixed line, mobile, toll free
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            nsn = phonenumbers.national_significant_number(example)
            for _ in range(8):
                digits = "".join(c if rng.random() > 0.25 else str(rng.randint(0, 9)) for c in nsn)
                prefix = rng.choice(prefixes)
                if prefix == "+":
                    prefix = f"+{example.country_code}"
                form = prefix + digits[: rng.randint(1, len(digits) + 2)]
                for read_in in (region, rng.choice(regions), "ZZ", None):
                    try:
                        expected = repr(phonenumbers.parse(form, read_in))
                    except phonenumbers.NumberParseException as exc:
                        expected = f"error {exc.error_type}"
                    try:
                        found = repr(phones._parse_simple(form, read_in))
                    except phonenumbers.NumberParseException as exc:
                        found = f"error {exc.error_type}"
                    assert found == expected, (form, read_in)
                    checked += 1
                    parsed += not found.startswith("error")
    assert checked > 5000 and parsed > 2000
