"""The name functions (behaviour.md §2)."""

from __future__ import annotations

import pytest
from custsync.engine.decide.names import ns, ns_each, split


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("first_and_last_name", "Jane Doe"),
        ("last_and_first_name", "Doe Jane"),
        ("company_name", "Adatum Corp"),
        ("none", ""),
        ("something-else", ""),
    ],
)
def test_ns_by_source(source: str, expected: str) -> None:
    assert ns(source, "  Jane ", " Doe  ", " Adatum   Corp ") == expected


def test_ns_each_answers_as_ns_per_source() -> None:
    sources = ("company_name", "first_and_last_name", "last_and_first_name", "none", "x")
    for parts in [("  Jane ", " Doe  ", " Adatum   Corp "), ("", "Doe", None), (None, None, None)]:
        assert ns_each(sources, *parts) == [ns(source, *parts) for source in sources]


def test_ns_joins_with_one_space_and_skips_empty_parts() -> None:
    assert ns("first_and_last_name", "", "Doe", "") == "Doe"
    assert ns("last_and_first_name", "Jane", "  ", "") == "Jane"
    assert ns("first_and_last_name", None, None, None) == ""


@pytest.mark.parametrize(
    ("text", "source", "expected"),
    [
        ("John Ronald Smith", "first_and_last_name", ("John", "Ronald Smith")),
        ("Smith John Ronald", "last_and_first_name", ("Ronald", "Smith John")),
        ("Madonna", "first_and_last_name", ("Madonna", "")),
        ("Madonna", "last_and_first_name", ("Madonna", "")),
        ("  Jane   Doe  ", "first_and_last_name", ("Jane", "Doe")),
        ("", "first_and_last_name", None),
        ("   ", "last_and_first_name", None),
        ("Adatum Corp", "company_name", None),
        ("Adatum Corp", "none", None),
    ],
)
def test_split(text: str, source: str, expected: tuple[str, str] | None) -> None:
    assert split(text, source) == expected
