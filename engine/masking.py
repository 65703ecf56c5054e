"""Masking customer contact data (e-mail addresses, phone numbers) in text meant for people:
decision messages, the text plan, log lines; and :func:`terminal_safe` for any data shown on
a terminal.

Two ways, used together where a message is built (decide.py):

* **by value** - a value known to be an e-mail or a phone (a contact fact filled into a
  message template, the record's own raw e-mail and phone) is masked whatever it looks like,
  valid or garbage: :func:`mask_contact`, :func:`mask_values`;
* **by pattern** - :func:`mask_text` finds what looks like an e-mail (anything around an
  ``@``) or a phone (a leading ``+``, or nine and more digits) in free text: the safety net
  for text whose origin is unknown (exception texts, load problems, hand-made decisions).

Masked forms: ``j***@example.com`` (first character kept), ``+1 41* *** **34`` (first three
and last two digits kept, formatting kept), ``j***`` for an e-mail without ``@`` or a phone
that is not made of digits and phone punctuation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from .errors import mask_email

__all__ = [
    "EMAIL",
    "PHONE",
    "mask_contact",
    "mask_emails",
    "mask_phone",
    "mask_text",
    "mask_values",
    "terminal_safe",
]

#: the kinds of contact value :func:`mask_contact` knows
EMAIL = "email"
PHONE = "phone"

#: e-mail-like: text around an "@" up to blanks, brackets, quotes and separators (a quote may
#: stand inside the local part, as in o'brien@example.com)
_EMAIL = re.compile(r"[^\s<>()\[\]\"',;:][^\s<>()\[\]\",;:]*@[^\s<>()\[\]\"',;:]+")
#: phone-like: a leading "+", or nine and more digits (dates have eight)
_PHONE = re.compile(r"(?<![\w/])\+?\d[\d ().-]{5,}\d(?![\w/])")
_DIGIT = re.compile(r"\d")
#: what a phone number is written with besides digits
_PHONE_PUNCTUATION = frozenset(" +-()./")
_EMAIL_SEPARATORS = re.compile(r"([;,])")


def mask_phone(value: str) -> str:
    """Keep the first three and the last two digits, and the formatting; star the rest."""
    digits = sum(ch.isdigit() for ch in value)
    if digits == 0:
        return value
    keep_head, keep_tail = (3, 2) if digits > 6 else (0, 1)
    out, seen = [], 0
    for ch in value:
        if ch.isdigit():
            seen += 1
            out.append(ch if seen <= keep_head or seen > digits - keep_tail else "*")
        else:
            out.append(ch)
    return "".join(out)


def _mask_phone_match(match: re.Match[str]) -> str:
    text = match.group(0)
    if text.startswith("+") or sum(ch.isdigit() for ch in text) >= 9:
        return mask_phone(text)
    return text


def mask_emails(text: str) -> str:
    """Mask every e-mail-like part of ``text`` (``j***@example.com``)."""
    if "@" not in text:  # the pattern needs an @: most texts have none
        return text
    return _EMAIL.sub(lambda m: mask_email(m.group(0)), text)


def mask_text(text: str) -> str:
    """Mask e-mail addresses and phone numbers inside free text (labels, messages)."""
    text = mask_emails(text)
    if _DIGIT.search(text) is None:  # a quick scan: the phone pattern's look-behind is slow
        return text
    return _PHONE.sub(_mask_phone_match, text)


def _masked_core(value: str, mask: Callable[[str], str]) -> str:
    """``mask`` applied to ``value`` without its surrounding blanks, which stay."""
    core = value.strip()
    if not core:
        return value
    start = value.index(core)
    return value[:start] + mask(core) + value[start + len(core) :]


def _first_and_stars(value: str) -> str:
    return value[:1] + "***"


def _mask_one_email(value: str) -> str:
    return mask_email(value) if "@" in value else _first_and_stars(value)


def mask_contact(value: str, kind: str) -> str:
    """A customer's e-mail (``kind`` EMAIL) or phone (PHONE) masked, valid or not.

    E-mail: each address of a field holding several (``;`` or ``,``) as ``j***@domain``, or
    ``j***`` without ``@``. Phone: :func:`mask_phone` when it is digits and phone punctuation,
    else ``j***``. Never the value itself unless it is empty or a phone of a single digit.
    """
    if kind == EMAIL:
        if "@" in value and "," not in value and ";" not in value and value.strip() == value:
            return mask_email(value)  # the usual case: one address
        parts = _EMAIL_SEPARATORS.split(value)  # separators at the odd indexes
        return "".join(
            part if index % 2 else _masked_core(part, _mask_one_email)
            for index, part in enumerate(parts)
        )
    if any(ch.isdigit() for ch in value) and all(
        ch.isdigit() or ch in _PHONE_PUNCTUATION for ch in value
    ):
        return mask_phone(value)
    return _masked_core(value, _first_and_stars)


def mask_values(text: str, values: Iterable[tuple[str, str]]) -> str:
    """Replace each ``(value, kind)`` where it stands in ``text`` as a whole - not inside a
    longer word or number - by :func:`mask_contact`; longer values first."""
    found = [(value, kind) for value, kind in values if value and value in text]
    if len(found) > 1:
        found = sorted(set(found), key=lambda item: -len(item[0]))
    for value, kind in found:
        text = _replace_whole(text, value, mask_contact(value, kind))
    return text


def _replace_whole(text: str, value: str, masked: str) -> str:
    """``text`` with ``value`` replaced where it is not part of a longer word, number, id or
    path (a phone ``12`` is masked in "phone 12." but not in "C00120", "Order/12" or "12.5")."""
    check_start, check_end = value[0].isalnum(), value[-1].isalnum()
    out: list[str] = []
    done = 0
    at = text.find(value)
    while at >= 0:
        end = at + len(value)
        if not (check_start and _joined_before(text, at)) and not (
            check_end and _joined_after(text, end)
        ):
            out.append(text[done:at])
            out.append(masked)
            done = end
            at = text.find(value, end)
        else:
            at = text.find(value, at + 1)
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)


def _joined_before(text: str, at: int) -> bool:
    return at > 0 and (text[at - 1].isalnum() or text[at - 1] in "/#_.-+@")


def _joined_after(text: str, end: int) -> bool:
    if end >= len(text):
        return False
    after = text[end]
    if after.isalnum() or after in "/_@":
        return True
    return after in ".-" and end + 1 < len(text) and text[end + 1].isalnum()


#: control characters (C0, DEL, C1: line breaks, ESC starting a terminal escape sequence),
#: bidirectional formatting characters (U+202E shows the rest of the line reversed) and lone
#: UTF-16 surrogates (a "\\ud800" escape in a JSON or YAML source: no UTF-8 output can carry one)
_UNSAFE = {
    code: f"\\u{code:04x}"
    for code in (
        *range(0x00, 0x20), *range(0x7F, 0xA0), 0x061C, 0x200E, 0x200F,
        *range(0x202A, 0x202F), *range(0x2066, 0x206A), *range(0xD800, 0xE000),
    )
}

_SURROGATE = re.compile("[\\ud800-\\udfff]")


def terminal_safe(text: str) -> str:
    """``text`` with control and bidi formatting characters and lone surrogates escaped
    (``\\u202e``): data from a store or an ERP must not move the cursor, recolour the
    terminal, reverse a line or stop the output (UTF-8 cannot encode a lone surrogate)."""
    return text.translate(_UNSAFE) if not text.isprintable() else text


def json_surrogates_escaped(text: str) -> str:
    """JSON text (``ensure_ascii=False``) with each lone surrogate written as its ``\\udxxx``
    escape: still the same JSON value, and now encodable as UTF-8. Surrogates only occur
    inside JSON strings (the rest of a document is ASCII), where the escape is valid."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
