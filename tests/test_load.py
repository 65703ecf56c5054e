"""YAML loading with positions (engine/rules/load.py)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml
from custsync.engine.rules.load import (
    LoadedDocument,
    Position,
    SafeLoader,
    YamlSyntaxError,
    load_yaml,
    load_yaml_text,
)

TEXT = """\
decision: import_match
rules:
  - id: a
    when:
      link.exists: true
    then: {action: match, customer_no: {fact: link.customer_no}}
  - id: "b/c~d"
"""


def test_positions_of_values_and_keys() -> None:
    doc = load_yaml_text(TEXT, "f.yaml")
    assert doc.data["rules"][0]["id"] == "a"
    assert doc.position("") == Position(1, 1)
    assert doc.position("/decision") == Position(1, 11)
    assert doc.position("/rules/0") == Position(3, 5)
    assert doc.position("/rules/0/when/link.exists") == Position(5, 20)
    assert doc.key_position("/rules/0/when/link.exists") == Position(5, 7)
    assert doc.position("/rules/0/then/customer_no/fact") == Position(6, 47)
    assert doc.position("/rules/1/id") == Position(7, 9)


def test_missing_pointer_falls_back_to_the_nearest_parent() -> None:
    doc = load_yaml_text(TEXT, "f.yaml")
    assert doc.position("/rules/0/then/method") == doc.position("/rules/0/then")
    assert doc.position("/rules/9/when") == doc.position("/rules")
    assert doc.key_position("/nothing/here") == Position(1, 1)


def test_pointer_tokens_are_escaped() -> None:
    doc = load_yaml_text("a/b: {c~d: 1}\n", "f.yaml")
    assert doc.position("/a~1b/c~0d") == Position(1, 12)


def test_duplicate_keys_are_problems_and_the_last_wins() -> None:
    doc = load_yaml_text("a: 1\nb: 2\na: 3\n", "f.yaml")
    assert doc.data == {"a": 3, "b": 2}
    assert doc.problems == [("/a", Position(3, 1), "duplicate key 'a' (the first is ignored)")]
    assert doc.key_position("/a") == Position(3, 1)


def test_empty_document_has_no_data() -> None:
    doc = load_yaml_text("# only a comment\n", "f.yaml")
    assert doc.data is None
    assert doc.position("/anything") == Position(1, 1)


def test_anchors_and_merge_keys_work() -> None:
    doc = load_yaml_text("base: &b {x: 1}\nthing:\n  <<: *b\n  y: 2\n", "f.yaml")
    assert doc.data["thing"] == {"x": 1, "y": 2}


@pytest.mark.parametrize(
    ("text", "line", "column", "hint"),
    [
        ("a: [1, 2\n", 2, 1, ""),
        ("a:\n  b: 1\n c: 2\n", 3, 2, ""),
        ("cron: */5 * * * *\n", 1, 8, "must be quoted"),
        ("a:\n\tb: 1\n", 2, 1, "spaces, not tabs"),
        ("a: b: c\n", 1, 5, "contains ': '"),
    ],
)
def test_syntax_errors_carry_position_and_hint(
    text: str, line: int, column: int, hint: str
) -> None:
    with pytest.raises(YamlSyntaxError) as caught:
        load_yaml_text(text, "f.yaml")
    assert caught.value.code == "yaml"
    assert (caught.value.position.line, caught.value.position.column) == (line, column)
    assert hint in caught.value.message
    assert str(caught.value).startswith(f"f.yaml:{line}:{column}: YAML syntax")


def test_several_documents_are_an_error() -> None:
    with pytest.raises(YamlSyntaxError):
        load_yaml_text("a: 1\n---\nb: 2\n", "f.yaml")


def test_python_tags_are_refused() -> None:
    with pytest.raises(YamlSyntaxError) as caught:
        load_yaml_text("a: !!python/object:os.system {}\n", "f.yaml")
    assert caught.value.position == Position(1, 4)
    assert "unsupported YAML tag" in caught.value.message


def test_file_not_utf8_has_the_offset_of_the_bad_byte(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"a: 1\nb: caf\xe9\n")
    with pytest.raises(YamlSyntaxError) as caught:
        load_yaml(path)
    assert caught.value.code == "encoding"
    assert caught.value.position == Position(2, 7)
    assert "0xe9" in caught.value.message


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfa: \xc3\xa9\n")
    doc = load_yaml(path)
    assert isinstance(doc, LoadedDocument)
    assert doc.data == {"a": "é"}
    assert doc.path == str(path)


def test_plain_scalars_follow_yaml_1_2_so_codes_and_post_codes_stay_text() -> None:
    doc = load_yaml_text(
        "countries: [NO, 'SE', ON, yes, off, Y, n]\n"
        "post_codes: [01067, 08001, 94105, 0]\n"
        "times: [2:30, 1:20:00]\n"
        "flags: [true, False, TRUE]\n"
        "numbers: [12, -3, +4, 1_000, 1.5, -0.25, 6.02e+23]\n"
        "other: [0x1F, 0o17, 010, ~, null]\n",
        "f.yaml",
    )
    assert doc.data == {
        "countries": ["NO", "SE", "ON", "yes", "off", "Y", "n"],
        "post_codes": ["01067", "08001", 94105, 0],
        "times": ["2:30", "1:20:00"],
        "flags": [True, False, True],
        "numbers": [12, -3, 4, 1000, 1.5, -0.25, 6.02e23],
        "other": ["0x1F", "0o17", "010", None, None],
    }


def test_a_norwegian_country_key_is_the_code_not_false() -> None:
    doc = load_yaml_text("NO: {template: EU}\nON: 1\n", "f.yaml")
    assert doc.data == {"NO": {"template": "EU"}, "ON": 1}
    assert doc.key_position("/NO") == Position(1, 1)


def test_a_date_that_does_not_exist_stays_text_instead_of_a_traceback() -> None:
    """``updated_at: 2026-13-45`` raised PyYAML's ValueError (a traceback from every command
    reading a YAML file); the reader of the field now says which field is wrong."""
    doc = load_yaml_text(
        "bad: 2026-13-45\nalso: 2026-02-30T10:00:00Z\n2026-13-01: key\ngood: 2026-03-01\n",
        "f.yaml",
    )
    assert doc.data["bad"] == "2026-13-45"
    assert doc.data["also"] == "2026-02-30T10:00:00Z"
    assert doc.data["2026-13-01"] == "key"
    assert doc.data["good"] == date(2026, 3, 1)
    # the sandbox's seed files read with the same loader class
    assert yaml.load("bad: 2026-13-45\n", Loader=SafeLoader) == {"bad": "2026-13-45"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: !!int abc\n", "1:4: YAML: 'abc' is not a valid int (invalid literal"),
        ("a: 1\nb: !!float x\n", "2:4: YAML: 'x' is not a valid float ("),
        ("a: !!bool maybe\n", "1:4: YAML: 'maybe' is not a valid bool; remove the !!bool tag"),
    ],
)
def test_a_value_its_explicit_tag_cannot_hold_is_a_located_error(text: str, message: str) -> None:
    with pytest.raises(YamlSyntaxError) as raised:
        load_yaml_text(text, "f.yaml")
    assert str(raised.value).startswith(f"f.yaml:{message}")


def _laughs(levels: int) -> str:
    """A "billion laughs" document: each level lists the one before nine times."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_aliases_that_expand_past_the_limit_are_refused_at_the_alias() -> None:
    """Nine levels took 1.2 GB and minutes (or a MemoryError) before the limit."""
    with pytest.raises(YamlSyntaxError) as caught:
        load_yaml_text(_laughs(9), "f.yaml")
    # l1..l3 add 90 + 819 + 7,380 nodes; l4's first alias (7,381 more) crosses 10,000
    assert caught.value.position == Position(5, 10)
    assert "aliases expand to more than 10000 nodes at *l3" in caught.value.message
    assert str(caught.value).startswith("f.yaml:5:10: YAML: ")
    # a few levels stay within the limit and load as before
    assert len(load_yaml_text(_laughs(3), "f.yaml").data["l2"]) == 9


@pytest.mark.parametrize(
    ("text", "position"),
    [("x: &a [*a]\n", Position(1, 8)), ("x: &a\n  k: {j: *a}\n", Position(2, 10))],
)
def test_an_alias_inside_the_node_it_names_is_refused(text: str, position: Position) -> None:
    """It was a RecursionError traceback of 3,000 lines."""
    with pytest.raises(YamlSyntaxError) as caught:
        load_yaml_text(text, "f.yaml")
    assert caught.value.position == position
    assert "alias *a is used inside the node it names" in caught.value.message


def test_nesting_deeper_than_the_limit_is_a_located_error() -> None:
    with pytest.raises(YamlSyntaxError) as caught:
        load_yaml_text("a: " + "[" * 400 + "]" * 400 + "\n", "f.yaml")
    assert caught.value.position == Position(1, 103)
    assert "nested deeper than 100 levels" in caught.value.message
