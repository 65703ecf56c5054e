"""Phone numbers: E.164 via phonenumbers, and the reference connector's digit rule.

* :func:`to_e164` reads a number in the customer's country when it has no ``+`` prefix and
  returns E.164 only for a number that is valid ("callable worldwide"), else None.
* :func:`match_digits` is the reference connector's rule (behaviour.md §3.2): digits only,
  leading zeros stripped; the Shopify digits must appear in order in the ERP digits and the ERP
  digits must end with the last Shopify digit. Extra ERP digits (a country code) are fine,
  extra Shopify digits are not.
* :func:`suffix_key` is the index key both lookups use to find candidates cheaply: the last
  :data:`SUFFIX_DIGITS` digits (extensions removed).

Speed: parsing and validating one number is the largest single cost per exported record.
Every number is parsed once per (text, region) while it stays in a bounded cache
(:func:`reading`), and both answers (possible / valid) come from that one parse.
:func:`could_read_as` rejects most candidates of an index lookup without parsing them. For
the phonenumbers release read against, the texts parse is handed here (``+`` and ASCII
digits) skip the library's steps that return them as they are (:func:`_parse_simple`, and
shortcuts in a few of its functions), and validity walks each calling code's regions from
a per-code list; each tested against the library: about 5 µs per parse and validity
instead of 10.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import phonenumbers
from phonenumbers import (
    COUNTRY_CODE_TO_REGION_CODE,
    REGION_CODE_FOR_NON_GEO_ENTITY,
    CountryCodeSource,
    re_util,
)
from phonenumbers import phonenumberutil as _phonenumberutil
from phonenumbers.phonemetadata import PhoneMetadata, PhoneNumberDesc
from phonenumbers.phonenumberutil import (
    country_code_for_valid_region,
    national_significant_number,
)

# phonenumbers compiles its metadata patterns on every use through re.compile (a lookup in the
# re module's bounded cache, an actual compilation once that cache has been filled by others);
# its own switch keeps them compiled: same patterns, 10-15 % less time per parse and check
_enable_pattern_cache = getattr(re_util, "enable_pattern_cache", None)
if _enable_pattern_cache is not None:
    _enable_pattern_cache()

#: the phonenumbers release the fast paths below were read against
_READ_AGAINST = "9.0.43"


def _digits_fast_path(
    original: Callable[..., str],
) -> Callable[..., str]:
    """phonenumbers' ``normalize_digits_only`` with a shortcut for a text of ASCII digits only.

    The library converts every character through its Unicode digit table and joins the
    results one by one (about a third of a parse); for ``0-9`` alone the result is the text
    itself, whatever ``keep_non_digits`` says. Every other text goes to the library.
    """

    def normalize_digits_only(number: str, keep_non_digits: bool = False) -> str:
        if type(number) is str and number.isascii() and number.isdigit():
            return number
        return original(number, keep_non_digits)

    normalize_digits_only.__wrapped__ = original  # type: ignore[attr-defined]
    return normalize_digits_only


def _extension_fast_path(
    original: Callable[[str], tuple[str, str]],
) -> Callable[[str], tuple[str, str]]:
    """phonenumbers' ``_maybe_strip_extension`` with a shortcut for ``+`` and ASCII digits only.

    Every alternative of the library's extension pattern needs a character that is neither a
    digit nor ``+`` (``;ext=``, a letter of ext/x/int/..., ``#``, ``~``, ``-``, a space, a
    comma or ``;``), so on such a text it finds nothing and the library returns ``("",
    number)``; the pattern search is skipped. Every other text goes to the library.
    """

    def _maybe_strip_extension(number: str) -> tuple[str, str]:
        if type(number) is str and number.isascii() and number.lstrip("+").isdigit():
            return "", number
        return original(number)

    _maybe_strip_extension.__wrapped__ = original  # type: ignore[attr-defined]
    return _maybe_strip_extension


def _is_plus_and_digits(number: object) -> bool:
    """Whether ``number`` is ASCII digits, or ``+`` and ASCII digits (a simple form)."""
    if type(number) is not str or not number.isascii():
        return False
    return number.isdigit() or (number[:1] == "+" and number[1:].isdigit())


def _national_number_fast_path(original: Callable[[str], str]) -> Callable[[str], str]:
    """phonenumbers' ``_build_national_number_for_parsing`` with a shortcut for ``+`` and
    ASCII digits only (the form :func:`_simple_form` hands parse).

    Such a text has no ``;phone-context=`` (so no RFC 3966 handling) and no ``;isub=``, and
    ``_extract_possible_number`` keeps it whole: it starts with a valid start character (``+``
    or a digit), ends with a digit (no unwanted end characters) and holds no second-number
    start (a slash or backslash before ``x``). The library returns it as it is.
    """

    def _build_national_number_for_parsing(number: str) -> str:
        if _is_plus_and_digits(number):
            return number
        return original(number)

    _build_national_number_for_parsing.__wrapped__ = original  # type: ignore[attr-defined]
    return _build_national_number_for_parsing


def _viable_fast_path(original: Callable[[str], bool]) -> Callable[[str], bool]:
    """phonenumbers' ``_is_viable_phone_number`` with a shortcut for ``+`` and ASCII digits.

    The library's pattern takes exactly two digits (without ``+``), or ``+`` signs followed by
    three digits or more (each after optional punctuation); the extension part is optional.
    For ``+`` and digits that is: three digits or more, or two without the ``+``.
    """

    def _is_viable_phone_number(number: str) -> bool:
        if _is_plus_and_digits(number):
            count = len(number) - (number[:1] == "+")
            return count >= 3 or (count == 2 and number[:1] != "+")
        return original(number)

    _is_viable_phone_number.__wrapped__ = original  # type: ignore[attr-defined]
    return _is_viable_phone_number


def _normalize_fast_path(original: Callable[[str], str]) -> Callable[[str], str]:
    """phonenumbers' ``_normalize`` with a shortcut for ASCII digits only.

    The library converts letters only when the text fully matches its pattern of three
    letters or more, else it keeps the digits (``normalize_digits_only``): a text of ASCII
    digits is returned as it is.
    """

    def _normalize(number: str) -> str:
        if type(number) is str and number.isascii() and number.isdigit():
            return number
        return original(number)

    _normalize.__wrapped__ = original  # type: ignore[attr-defined]
    return _normalize


def _plus_fast_path(
    original: Callable[[str, str], tuple[int, str]],
) -> Callable[[str, str], tuple[int, str]]:
    """phonenumbers' ``_maybe_strip_i18n_prefix_and_normalize`` with a shortcut for ``+`` and
    ASCII digits: the library's plus pattern takes the one leading ``+``, and the digits
    after it normalise to themselves; the answer is "country code from a plus sign" and the
    digits (the IDD prefix is not looked at)."""

    def _maybe_strip_i18n_prefix_and_normalize(
        number: str, possible_idd_prefix: str
    ) -> tuple[int, str]:
        if type(number) is str and number[:1] == "+" and number.isascii() and number[1:].isdigit():
            return CountryCodeSource.FROM_NUMBER_WITH_PLUS_SIGN, number[1:]
        return original(number, possible_idd_prefix)

    _maybe_strip_i18n_prefix_and_normalize.__wrapped__ = original  # type: ignore[attr-defined]
    return _maybe_strip_i18n_prefix_and_normalize


def _install_fast_path(name: str, wrap: Callable[[Any], Any]) -> None:
    """Replace phonenumbers' module function ``name`` by ``wrap(original)``, once, and only
    on the release it was read against (any other release keeps the library's code)."""
    original = getattr(_phonenumberutil, name)
    if phonenumbers.__version__ == _READ_AGAINST and not hasattr(original, "__wrapped__"):
        setattr(_phonenumberutil, name, wrap(original))


# parse() calls the module's own globals; the public phonenumbers.normalize_digits_only is
# left as it is.
_install_fast_path("normalize_digits_only", _digits_fast_path)
_install_fast_path("_maybe_strip_extension", _extension_fast_path)
_install_fast_path("_build_national_number_for_parsing", _national_number_fast_path)
_install_fast_path("_is_viable_phone_number", _viable_fast_path)
_install_fast_path("_normalize", _normalize_fast_path)
_install_fast_path("_maybe_strip_i18n_prefix_and_normalize", _plus_fast_path)

#: digits compared by the candidate index; a match must agree on these last digits
SUFFIX_DIGITS = 6
#: the digit rule needs this many Shopify digits (shorter numbers match almost any phone)
MIN_DIGIT_RULE_DIGITS = SUFFIX_DIGITS
#: longest text treated as a phone number at all
MAX_PHONE_LENGTH = 40
#: parsed numbers kept (text and region -> result, ~0.5 KB each); a number parsed for a lookup
#: is usually needed again for the same record, rarely much later
READING_CACHE_SIZE = 32_768

_EXTENSION = re.compile(r"(?i)\s*(?:ext\.?|extension|x|#)\s*\d+\s*$")
_NON_DIGITS = re.compile(r"\D+")
#: a number already in E.164 (no national prefix after the country code)
_CANONICAL = re.compile(r"^\+[1-9]\d{6,14}$")
#: a "simple" phone text: ASCII digits, spaces, - ( ) . and at most one + before the digits
_SIMPLE = re.compile(r"[ ().\-]*(\+?)[0-9 ().\-]*\Z")
_NOT_ASCII_DIGITS = re.compile(r"[^0-9]+")


def strip_extension(text: str) -> str:
    return _EXTENSION.sub("", text)


def digits(text: str | None) -> str:
    """Digits only, leading zeros stripped (the digit rule's normal form)."""
    value = text or ""
    if value.isascii():  # E.164 and plain digits, the usual texts, without the pattern
        if value.isdigit():
            return value.lstrip("0")
        if value[:1] == "+" and value[1:].isdigit():
            return value[1:].lstrip("0")
    return _NON_DIGITS.sub("", value).lstrip("0")


def suffix_key(text: str | None) -> str:
    """The candidate-index key of a phone: the last :data:`SUFFIX_DIGITS` of its digits
    ("" for shorter numbers)."""
    only = digits(text)
    return only[-SUFFIX_DIGITS:] if len(only) >= SUFFIX_DIGITS else ""


def suffix_keys(text: str | None) -> set[str]:
    """The keys an ERP phone is indexed under: with and without a trailing extension."""
    value = text or ""
    key = suffix_key(value)
    keys = {key}
    if "x" in value or "X" in value or "#" in value:  # an extension needs one of these
        keys.add(suffix_key(strip_extension(value)))
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


# ---------------------------------------------------------------------------------------------
# parsing (phonenumbers), once per text and region
# ---------------------------------------------------------------------------------------------


def _region(region: str | None) -> str | None:
    return (region or "").upper() or None


def _simple_form(raw: str) -> str:
    """The text phonenumbers reads a number from, shortened where that cannot change the result.

    A simple text (ASCII digits, spaces, ``- ( ) .``, at most one ``+`` before the first digit,
    at least three digits) parses exactly like ``+``/nothing followed by its digits: phonenumbers
    drops those separators, and with three digits or more they never make a text unviable.
    Anything else is returned as it is.
    """
    if raw.isascii():  # the usual texts, without the patterns: digits, blanks, one leading +
        compact = raw.replace(" ", "") if " " in raw else raw
        body = compact[1:] if compact[:1] == "+" else compact
        if body.isdigit():
            return compact if len(body) >= 3 else raw
    simple = _SIMPLE.match(raw)
    if simple is None:
        return raw
    only = _NOT_ASCII_DIGITS.sub("", raw)
    if len(only) < 3:
        return raw
    return simple.group(1) + only


class Reading:
    """One parse of a phone text in a region: its E.164 form, and whether it has a possible
    length (matching) and is valid (export), each checked on first use."""

    __slots__ = ("_nsn", "_number", "_possible", "_valid", "e164")

    def __init__(self, number: phonenumbers.PhoneNumber | None) -> None:
        self._number = number
        self._possible: bool | None = None if number is not None else False
        self._valid: bool | None = None if number is not None else False
        self.e164: str | None = None
        self._nsn: str | None = None
        if number is not None:
            self._nsn = national_significant_number(number)
            self.e164 = _format_e164(number, self._nsn)

    @property
    def possible(self) -> bool:
        if self._possible is None:
            number = self._number
            self._possible = number is not None and phonenumbers.is_possible_number(number)
        return self._possible

    @property
    def valid(self) -> bool:
        if self._valid is None:
            number = self._number
            self._valid = number is not None and is_valid_number(number, self._nsn)
        return self._valid


def _format_e164(number: phonenumbers.PhoneNumber, nsn: str | None = None) -> str:
    """``format_number(number, E164)`` of a parsed number: ``+``, the calling code and the
    national significant number (``nsn``, when known). (The library formats a national
    number 0 from the raw input only when it kept one, which :func:`_read` never asks for;
    parse always sets the calling code.) Any other phonenumbers release: the library."""
    code = number.country_code
    if code is None or number.raw_input is not None or phonenumbers.__version__ != _READ_AGAINST:
        return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    return f"+{code}{nsn if nsn is not None else national_significant_number(number)}"


_NOTHING = Reading(None)

#: the phonenumbers release whose is_valid_number :func:`is_valid_number` was read against
_VALIDITY_READ_AGAINST = _READ_AGAINST


def is_valid_number(number: phonenumbers.PhoneNumber, nsn: str | None = None) -> bool:
    """``phonenumbers.is_valid_number`` without its second look at the same region (``nsn``:
    the number's national significant number, when known).

    For a calling code shared by several regions (1: US, CA and the NANPA islands; 44; 7;
    ...), phonenumbers first finds the region (``_region_code_for_number_from_list``: the
    first whose leading digits match, or whose number type for the number is not UNKNOWN),
    then ``is_valid_number_for_region`` checks that region's calling code and computes the
    *same* number type again. Found by its type, the number is valid exactly when that region
    has the number's calling code; found by leading digits, the library's own check decides.
    Same answer, one type computation less. A calling code of one region is checked as
    ``is_valid_number_for_region`` does. Whether a number has a type at all is answered by
    :func:`_has_known_type` (the likeliest types first). Any other phonenumbers release goes
    to the library itself.
    """
    code = number.country_code
    regions = COUNTRY_CODE_TO_REGION_CODE.get(code) if code is not None else None
    if code is None or regions is None or phonenumbers.__version__ != _VALIDITY_READ_AGAINST:
        return bool(phonenumbers.is_valid_number(number))
    if nsn is None:
        nsn = national_significant_number(number)
    if len(regions) == 1:  # is_valid_number_for_region of the one region, as the library
        metadata = _metadata_of_one_region(code)
        return metadata is not None and _has_known_type(nsn, metadata)
    for region, metadata, leading_digits in _regions_of(code):
        if leading_digits is not None:
            if leading_digits.match(nsn):
                return bool(phonenumbers.is_valid_number_for_region(number, region))
        elif _has_known_type(nsn, metadata):
            return bool(metadata.country_code == number.country_code)
    return False


@lru_cache(maxsize=512)
def _metadata_of_one_region(code: int) -> PhoneMetadata | None:
    """The metadata :func:`is_valid_number` checks a number of a one-region calling code
    against, None when ``is_valid_number_for_region`` says no whatever the number (no
    metadata, or a region that does not have this calling code); looked up once per code."""
    region = COUNTRY_CODE_TO_REGION_CODE[code][0]
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(code, region.upper())
    if metadata is None or (
        region != REGION_CODE_FOR_NON_GEO_ENTITY and code != country_code_for_valid_region(region)
    ):
        return None
    return metadata


@lru_cache(maxsize=512)
def _regions_of(code: int) -> tuple[tuple[str, PhoneMetadata, re.Pattern[str] | None], ...]:
    """The regions of a calling code as :func:`is_valid_number` walks them: those with
    metadata, each with its compiled leading-digits pattern (looked up once per code, not
    once per number: a number of the 1 code's other regions walks several before its own)."""
    found = []
    for region in COUNTRY_CODE_TO_REGION_CODE.get(code, ()):
        metadata = PhoneMetadata.metadata_for_region(region.upper(), None)
        if metadata is not None:
            leading = metadata.leading_digits
            found.append(
                (region, metadata, re_util.re_compile(leading) if leading is not None else None)
            )
    return tuple(found)


def _matches_desc(nsn: str, desc: PhoneNumberDesc | None) -> bool:
    """phonenumbers' ``_is_number_matching_desc`` in one call instead of four.

    The library checks the possible lengths, then ``_match_national_number`` (no pattern: no
    match) and ``_match`` without prefix matches: ``pattern.match`` and then
    ``pattern.fullmatch``. A full match is a match at the start, so the answer is whether the
    pattern (compiled through the library's own cache) matches the whole number.
    """
    if desc is None:
        return False
    lengths = desc.possible_length
    if len(lengths) > 0 and len(nsn) not in lengths:
        return False
    pattern = desc.national_number_pattern
    if not pattern:
        return False
    compiled = _DESC_PATTERNS.get(pattern)
    if compiled is None:
        compiled = _DESC_PATTERNS[pattern] = re_util.re_compile(pattern)
    return compiled.fullmatch(nsn) is not None


#: number description patterns, compiled (the metadata holds a bounded set of them)
_DESC_PATTERNS: dict[str, re.Pattern[str]] = {}


def _has_known_type(nsn: str, metadata: PhoneMetadata) -> bool:
    """``_number_type_helper(nsn, metadata) != UNKNOWN``, with the likeliest types first.

    The library returns the first of its types whose description matches (after the general
    description), and UNKNOWN only when none does; mobile counts only when its pattern
    differs from the fixed line's. Whether *some* type matches does not depend on the order
    of the checks, so fixed line and mobile (most numbers) are tried first.
    """
    if not _matches_desc(nsn, metadata.general_desc):
        return False
    if _matches_desc(nsn, metadata.fixed_line):
        return True
    if not metadata.same_mobile_and_fixed_line_pattern and _matches_desc(nsn, metadata.mobile):
        return True
    return any(
        _matches_desc(nsn, desc)
        for desc in (
            metadata.premium_rate,
            metadata.toll_free,
            metadata.shared_cost,
            metadata.voip,
            metadata.personal_number,
            metadata.pager,
            metadata.uan,
            metadata.voicemail,
        )
    )


#: what parse keeps of a national number when stripping its prefix would leave one of these
_PREFIX_KEPT_WHEN = (
    _phonenumberutil.ValidationResult.TOO_SHORT,
    _phonenumberutil.ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
    _phonenumberutil.ValidationResult.INVALID_LENGTH,
)


def _parse_simple(form: str, region: str | None) -> phonenumbers.PhoneNumber:
    """``phonenumbers.parse(form, region)`` for a simple form (see :func:`_simple_form`): ``+``
    or nothing, then three ASCII digits or more, ``region`` upper case or None.

    parse() without the steps that return such a text as it is (RFC 3966 and extension
    handling, extracting the number out of other text, the viability pattern, normalising,
    and, after a ``+``, stripping it), nor those that change nothing for the number at hand
    (the national prefix when its pattern does not start the number, the length check of a
    number nothing was stripped from, leading zeros when there is none); the steps that
    decide something call the library's own functions, in the library's order: the country
    calling code, the national prefix, the length checks, leading zeros. A ``+`` not followed by a known calling code takes the
    library's own way (it retries without the ``+``). Any other text: parse() itself. Tested
    against parse() on every region.
    """
    body = form[1:] if form[:1] == "+" else form
    if (
        len(body) < 3
        or not form.isascii()
        or not body.isdigit()
        or (region is not None and region.upper() != region)
    ):
        return phonenumbers.parse(form, region)
    utils = _phonenumberutil
    metadata = None if region is None else PhoneMetadata.metadata_for_region(region, None)
    number = phonenumbers.PhoneNumber()
    if body is not form:  # + and a calling code
        code, national = utils._extract_country_code(body)
        if code == 0:
            return phonenumbers.parse(form, region)
        number.country_code = code
    else:
        if region is None or region not in utils.SUPPORTED_REGIONS:
            raise phonenumbers.NumberParseException(
                phonenumbers.NumberParseException.INVALID_COUNTRY_CODE,
                "Missing or invalid default region.",
            )
        extract = utils._maybe_extract_country_code  # (its stubs leave out a None metadata)
        code, national = extract(form, metadata, False, number)  # type: ignore[arg-type]
    if code != 0:
        regions = COUNTRY_CODE_TO_REGION_CODE.get(code)  # region_code_for_country_code
        number_region = regions[0] if regions is not None else utils.UNKNOWN_REGION
        if number_region != region:
            metadata = PhoneMetadata.metadata_for_region_or_calling_code(code, number_region)
    else:  # no calling code in the text: the region's (which was checked above)
        national = form  # ASCII digits normalise to themselves
        if region is not None and metadata is not None:
            number.country_code = metadata.country_code
    if len(national) < utils._MIN_LENGTH_FOR_NSN:
        raise phonenumbers.NumberParseException(
            phonenumbers.NumberParseException.TOO_SHORT_NSN,
            "The string supplied is too short to be a phone number.",
        )
    prefix = metadata.national_prefix_for_parsing if metadata is not None else None
    if metadata is not None and prefix and re_util.re_compile(prefix).match(national):
        # (a number the prefix pattern does not start is returned as it is: nothing to do)
        _, stripped, _ = utils._maybe_strip_national_prefix_carrier_code(national, metadata)
        if stripped != national and utils._test_number_length(stripped, metadata) not in (
            _PREFIX_KEPT_WHEN
        ):
            national = stripped
    if len(national) < utils._MIN_LENGTH_FOR_NSN:
        raise phonenumbers.NumberParseException(
            phonenumbers.NumberParseException.TOO_SHORT_NSN,
            "The string supplied is too short to be a phone number.",
        )
    if len(national) > utils._MAX_LENGTH_FOR_NSN:
        raise phonenumbers.NumberParseException(
            phonenumbers.NumberParseException.TOO_LONG,
            "The string supplied is too long to be a phone number.",
        )
    if len(national) > 1 and national[0] == "0":  # (else the library sets nothing)
        utils._set_italian_leading_zeros_for_phone_number(national, number)
    number.national_number = int(national)
    return number


#: parse as :func:`_read` calls it: the shortcut for the release read against
_parse = _parse_simple if phonenumbers.__version__ == _READ_AGAINST else phonenumbers.parse


@lru_cache(maxsize=READING_CACHE_SIZE)
def _read(form: str, region: str | None) -> Reading:
    try:
        return Reading(_parse(form, region))
    except phonenumbers.NumberParseException:
        return _NOTHING


def reading(text: str | None, region: str | None = None) -> Reading:
    """The parse of ``text`` read in ``region`` (cached); a reading without ``e164`` when the
    text is empty, too long or not a number."""
    raw = (text or "").strip()
    if not raw or len(raw) > MAX_PHONE_LENGTH:
        return _NOTHING
    return _read(_simple_form(raw), _region(region))


def to_e164(text: str | None, region: str | None = None) -> str | None:
    """The number in E.164 when it parses and is valid ("callable worldwide"), else None.

    A number without ``+`` is read in ``region`` (ISO 3166-1 alpha-2); without a region such a
    number cannot be read and gives None. Used for export, where Shopify gets this value.
    """
    found = reading(text, region)
    return found.e164 if found.e164 is not None and found.valid else None


def match_e164(text: str | None, region: str | None = None) -> str | None:
    """The number in E.164 when it parses and has a possible length, else None.

    For matching (behaviour.md §3.2: "E.164 equality when both numbers parse"): cheaper than
    :func:`to_e164` (no validity check against the numbering plan), and lenient on purpose.
    """
    raw = (text or "").strip()
    if _CANONICAL.match(raw):
        return raw  # already E.164, as Shopify stores phones: no need to parse
    found = reading(raw, region)
    return found.e164 if found.possible else None


def normal_e164(text: str | None) -> str:
    """A phone Shopify stores (E.164) as ``+`` and digits, for equality lookups."""
    raw = (text or "").strip()
    if not raw:
        return ""
    only = _NON_DIGITS.sub("", raw)
    return f"+{only}" if only else ""


# ---------------------------------------------------------------------------------------------
# rejecting lookup candidates without parsing them
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=512)
def _rewrites_prefix(region: str | None) -> bool:
    """Whether phonenumbers may rewrite (not only remove) the national prefix of numbers read
    with this region's metadata (``national_prefix_transform_rule``, e.g. AR, BR, JP)."""
    metadata = PhoneMetadata.metadata_for_region(region, None) if region else None
    return metadata is not None and bool(metadata.national_prefix_transform_rule)


@lru_cache(maxsize=512)
def _code_rewrites_prefix(code: int) -> bool:
    """:func:`_rewrites_prefix` for the metadata of a calling code's main region."""
    main = phonenumbers.region_code_for_country_code(code)
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(code, main)
    return metadata is not None and bool(metadata.national_prefix_transform_rule)


@lru_cache(maxsize=4096)
def _split_e164(e164: str) -> tuple[int, str] | None:
    """(country calling code, national significant number) of ``+<digits>``, else None."""
    if len(e164) < 3 or e164[0] != "+" or not e164[1:].isascii() or not e164[1:].isdigit():
        return None
    body = e164[1:]
    if body[0] == "0":
        return None
    for length in range(1, 4):  # calling codes are prefix-free (E.164), as phonenumbers reads
        code = int(body[:length])
        if code in COUNTRY_CODE_TO_REGION_CODE:
            return code, body[length:]
    return None


def could_read_as(text: str | None, region: str | None, e164: str) -> bool:
    """False only when ``text`` read in ``region`` can be neither :func:`to_e164` nor
    :func:`match_e164` equal to ``e164``; True means "parse it to know".

    Why this holds: for a simple text (see :func:`_simple_form`) phonenumbers reads the
    national significant number by *removing* a leading part of the text's digits (``+`` or
    international prefix, country code, national prefix, carrier code). Only a region's
    ``national_prefix_transform_rule`` can *rewrite* that part, and the metadata phonenumbers
    uses is the region's or that of the main region of the number's calling code, so with
    neither having such a rule, a result ``+<code><nsn>`` needs the text's digits to end with
    ``<nsn>``. (A text already in E.164 is returned as it is by :func:`match_e164`, which
    needs the same.) Anything else is never rejected.
    """
    raw = (text or "").strip()
    if not raw or len(raw) > MAX_PHONE_LENGTH:
        return False  # both readings are None, and e164 is a text
    split = _split_e164(e164)
    if split is None:
        return True
    only = None
    if raw.isascii():  # the usual texts, without the patterns: digits, blanks, one leading +
        compact = raw.replace(" ", "") if " " in raw else raw
        body = compact[1:] if compact[:1] == "+" else compact
        if body.isdigit():
            only = body
    if only is None:
        if _SIMPLE.match(raw) is None:
            return True
        only = _NOT_ASCII_DIGITS.sub("", raw)
    code, nsn = split
    if _rewrites_prefix(_region(region)) or _code_rewrites_prefix(code):
        return True
    if len(only) < 3:
        return True
    return only.endswith(nsn)
