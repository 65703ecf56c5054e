"""Plan model, JSON round trip and the text renderer, on a hand-made plan."""

from __future__ import annotations

import dataclasses
import io
import json
import random
from datetime import UTC, datetime

import pytest
from custsync.engine.errors import ConfigError
from custsync.engine.model import Action, Decision, Direction
from custsync.engine.run.plan import (
    FORMAT_VERSION,
    Plan,
    decision_sort_key,
    plan_from_json,
    plan_to_dict,
    plan_to_json,
)
from custsync.engine.run.render import mask_label, mask_phone, mask_text, print_plan, render_text

from plan_helpers import FIXED_TIME, check_golden, handmade_decisions, handmade_plan, schema_errors


def test_handmade_plan_text_golden() -> None:
    check_golden("handmade.txt", render_text(handmade_plan()))


def test_handmade_plan_json_golden_and_schema() -> None:
    text = plan_to_json(handmade_plan())
    check_golden("handmade.json", text)
    data = json.loads(text)
    assert data["format_version"] == FORMAT_VERSION == "1.0"
    assert schema_errors(data) == []
    assert data["summary"] == {
        "create": 3,
        "update": 1,
        "link": 2,
        "skip": 2,
        "noop": 1,
        "changes": 6,
        "by_direction": {
            "import": {"create": 1, "update": 1, "link": 1, "skip": 1, "noop": 0},
            "export": {"create": 1, "update": 0, "link": 1, "skip": 1, "noop": 1},
            "order": {"create": 1, "update": 0, "link": 0, "skip": 0, "noop": 0},
        },
    }


def test_json_round_trip_restores_the_plan() -> None:
    plan = handmade_plan()
    again = plan_from_json(plan_to_json(plan))
    # the JSON masks contact data in messages (the hand-made one has a phone and an e-mail the
    # engine would have masked already); everything else comes back as it was
    masked = tuple(
        dataclasses.replace(d, message=mask_text(d.message)) if d.message else d
        for d in plan.decisions
    )
    assert masked != plan.decisions
    assert again == dataclasses.replace(plan, decisions=masked)
    order = next(d for d in again.decisions if d.direction is Direction.ORDER)
    nested = order.payload["import"]
    assert isinstance(nested, Decision) and nested.action is Action.CREATE
    export = next(d for d in again.decisions if d.record == "C00040")
    assert export.payload["address"].city == "Berlin"


def test_text_masks_contact_data_and_json_keeps_it_in_changes() -> None:
    text = render_text(handmade_plan())
    data = plan_to_json(handmade_plan())
    for secret in (
        "jane.doe@example.com",
        "hans.mueller@example.de",
        "walkin@example.com",
        "+14155550101",
        "415 555 0199",
        "+49305550404",
        "bob at example",
    ):
        assert secret not in text, secret
    assert "j***@example.com" in text and '"+141******01"' in text
    assert "+1 41* *** **99" in text
    assert "jane.doe@example.com" in data and "+49305550404" in data  # changes: full values
    assert "walkin@example.com" not in data and "415 555 0199" not in data  # messages: masked
    assert "+1 41* *** **99 or write to w***@example.com" in data
    assert "Hauptstraße 4" in text  # addresses are not masked


def test_masking_helpers() -> None:
    assert mask_phone("+1 (415) 555-0199") == "+1 (41*) ***-**99"
    assert mask_phone("12") == "*2"
    assert mask_phone("") == ""
    assert mask_label("Ann <ann@example.com>") == "Ann <a***@example.com>"
    assert mask_label("Ann <not an e-mail>") == "Ann <n***>"
    assert mask_label("#1001") == "#1001"
    # dates, post codes and order numbers are not phones
    assert (
        mask_text("on 2026-03-01, zip 94105, order #1001")
        == "on 2026-03-01, zip 94105, order #1001"
    )
    assert mask_text("call 0049 30 5550404 now") == "call 004* ** *****04 now"


def test_order_is_direction_shop_then_natural_record_key() -> None:
    decisions = handmade_decisions()
    random.Random(7).shuffle(decisions)
    ordered = sorted(decisions, key=decision_sort_key)
    assert [(d.direction.value, d.shop, d.record) for d in ordered] == [
        ("import", "main", "gid://shopify/Customer/10"),
        ("import", "main", "gid://shopify/Customer/1001"),
        ("import", "main", "gid://shopify/Customer/1006"),
        ("import", "second", "gid://shopify/Customer/9"),
        ("export", "main", "C00010"),
        ("export", "main", "C00040"),
        ("export", "main", "C00050"),
        ("export", "main", "C00060"),
        ("order", "main", "gid://shopify/Order/7002"),
    ]
    one = Decision(Direction.IMPORT, Action.SKIP, "main", "gid://shopify/Customer/9")
    two = Decision(Direction.IMPORT, Action.SKIP, "main", "gid://shopify/Customer/10")
    assert sorted([two, one], key=decision_sort_key) == [one, two]


def _plan(*decisions: Decision) -> Plan:
    return Plan(
        created_at=FIXED_TIME,
        shops=("main",),
        directions=(Direction.IMPORT,),
        decisions=tuple(decisions),
    )


def test_empty_plan_says_no_changes() -> None:
    text = render_text(_plan())
    assert text.splitlines()[-1] == "No changes."
    assert "Symbols" not in text
    noop = Decision(Direction.IMPORT, Action.NOOP, "main", "gid://shopify/Customer/1")
    plan = _plan(noop, noop)
    assert render_text(plan).splitlines()[-1] == "No changes. 2 records already in sync."
    assert not plan.has_changes and plan.summary.counts["noop"] == 2


def test_legend_lists_only_the_symbols_in_use_and_noop_is_hidden() -> None:
    skip = Decision(
        Direction.IMPORT, Action.SKIP, "main", "gid://shopify/Customer/1", reason_code="x"
    )
    noop = Decision(Direction.IMPORT, Action.NOOP, "main", "gid://shopify/Customer/2")
    text = render_text(_plan(skip, noop))
    assert "Symbols:  ! skip\n" in text
    assert "Customer/2" not in text
    assert (
        text.splitlines()[-1]
        == "Plan: 0 to create, 0 to update, 0 to link, 1 skipped (1 unchanged)."
    )
    assert not _plan(skip).has_changes  # skips are not changes


def test_rule_paths_are_shown_relative_to_base_dir(tmp_path: pytest.TempPathFactory) -> None:
    decision = Decision(
        Direction.IMPORT,
        Action.SKIP,
        "main",
        "gid://shopify/Customer/1",
        reason_code="x",
        rules=(
            handmade_decisions()[1]
            .rules[0]
            .__class__("r1", f"{tmp_path}/rules/import_match.yaml", 3, "import_match"),
        ),
    )
    text = render_text(_plan(decision), base_dir=str(tmp_path))
    assert "# rules: import_match/r1 (rules/import_match.yaml:3)" in text


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colours_only_on_a_terminal_and_never_with_no_color(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    plan = handmade_plan()
    plain = io.StringIO()
    print_plan(plan, plain)
    assert "\x1b[" not in plain.getvalue()
    assert plain.getvalue() == render_text(plan)
    tty = _Tty()
    print_plan(plan, tty)
    assert "\x1b[" in tty.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    tty = _Tty()
    print_plan(plan, tty)
    assert "\x1b[" not in tty.getvalue()
    out = io.StringIO()
    print_plan(plan, out, output="json")
    assert json.loads(out.getvalue())["format_version"] == "1.0"


def test_plan_from_json_errors_say_what_and_where() -> None:
    good = plan_to_dict(handmade_plan())
    with pytest.raises(ConfigError, match=r"plan.json:1:2: not valid JSON"):
        plan_from_json("{,", source="plan.json")
    newer = dict(good, format_version="2.0")
    with pytest.raises(ConfigError, match=r"format_version 2.0 is not supported"):
        plan_from_json(json.dumps(newer))
    broken = json.loads(json.dumps(good))
    broken["decisions"][0]["action"] = "explode"
    with pytest.raises(
        ConfigError, match=r"saved.json: /decisions/0/action: 'explode' is not one of"
    ):
        plan_from_json(json.dumps(broken), source="saved.json")


def test_summary_counts_are_computed_from_decisions() -> None:
    plan = handmade_plan()
    assert plan.summary.changes == 6 and plan.has_changes
    assert plan.created_at == datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_text_plan_escapes_control_and_bidi_characters_from_data() -> None:
    """A name or message from a store must not reverse the line (U+202E) or send a terminal
    escape sequence (ESC); other non-ASCII text is shown as it is."""
    hostile = Decision(
        Direction.EXPORT,
        Action.SKIP,
        "main",
        "C00666",
        label="Zoë \u202eevil\u202c \x1b[2J <z***@example.com>",
        reason_code="email-invalid",
        message="name Zoë \u202eevil and a bell\x07",
    )
    plan = dataclasses.replace(handmade_plan(), decisions=(hostile,))
    for render in (render_text(plan), _rendered_on_a_terminal(plan)):
        assert "\u202e" not in render and "\x1b[2J" not in render and "\x07" not in render
        assert "\\u202e" in render and "\\u0007" in render and "Zoë" in render


def _rendered_on_a_terminal(plan: Plan) -> str:
    tty = _Tty()
    print_plan(plan, tty)
    return tty.getvalue()
