"""A skip's reason is printed once: the ``reasons`` list only when it says more."""

from __future__ import annotations

from datetime import UTC, datetime

from custsync.engine.model import Action, Decision, Direction
from custsync.engine.run.plan import Plan
from custsync.engine.run.render import render_text


def _skip(*reasons: str) -> str:
    decision = Decision(
        direction=Direction.EXPORT,
        action=Action.SKIP,
        shop="main",
        record="C00007",
        reason_code=reasons[0],
        message="the e-mail is not valid",
        payload={"reasons": list(reasons)},
        label="Bad Mail <bad@example.com>",
    )
    plan = Plan(
        created_at=datetime(2026, 3, 1, tzinfo=UTC),
        shops=("main",),
        directions=(Direction.EXPORT,),
        decisions=(decision,),
    )
    return render_text(plan)


def test_a_single_reason_is_not_repeated_as_a_list() -> None:
    text = _skip("email-invalid")
    assert "reasons:" not in text
    assert "    reason: email-invalid: the e-mail is not valid\n" in text


def test_several_reasons_are_all_listed() -> None:
    text = _skip("email-invalid", "phone-invalid")
    assert 'reasons: ["email-invalid", "phone-invalid"]' in text
    assert "    reason: email-invalid: " in text
