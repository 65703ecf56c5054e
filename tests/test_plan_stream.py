"""Streaming plans: the spool gives decisions back in plan order, the compact sort key orders
like decision_sort_key, and `custsync plan` writes the same documents as the in-memory path."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path
from types import MappingProxyType

import pytest
from custsync.engine.model import Action, Decision, Direction
from custsync.engine.run import planstream
from custsync.engine.run.plan import (
    PRETTY_DECISIONS,
    Plan,
    decision_sort_key,
    decision_to_json,
    plan_from_json,
    plan_json_frame,
    plan_order_key,
    plan_to_dict,
    plan_to_json,
    write_plan_json,
)
from custsync.engine.run.planpipe import SpoolProcess
from custsync.engine.run.planstream import (
    JSON_SEPARATORS,
    DecisionSpool,
    encode_block,
    write_plan_document,
)
from custsync.engine.run.render import decision_block, render_text, write_text


def _records(rng: random.Random, count: int) -> list[str]:
    parts = ["C", "gid://shopify/Customer/", "A-", "x", "Kunde ", "0", "007", "10", "9", ""]
    records = []
    for _ in range(count):
        text = "".join(
            rng.choice(parts)
            + (str(rng.randint(0, 10 ** rng.randint(0, 12))) if rng.random() < 0.7 else "")
            for _ in range(rng.randint(1, 3))
        )
        records.append(text)
    return records


def test_the_compact_key_orders_like_decision_sort_key() -> None:
    rng = random.Random(11)
    decisions = [
        Decision(
            direction=rng.choice(list(Direction)),
            action=Action.SKIP,
            shop=rng.choice(["main", "ma", "main2", "b"]),
            record=record,
        )
        for record in _records(rng, 3000)
    ]
    by_tuple = sorted(decisions, key=decision_sort_key)
    by_text = sorted(decisions, key=lambda d: plan_order_key(d.direction, d.shop, d.record))
    assert [decision_sort_key(d) for d in by_text] == [decision_sort_key(d) for d in by_tuple]


def _decision(index: int, direction: Direction = Direction.EXPORT) -> Decision:
    action = (Action.CREATE, Action.NOOP, Action.SKIP, Action.UPDATE)[index % 4]
    return Decision(
        direction=direction,
        action=action,
        shop="main",
        record=f"C{index}",
        erp_no=f"C{index}",
        reason_code="no-address" if action is Action.SKIP else None,
        label=f"Name {index} <n{index}@example.com>",
    )


def test_the_spool_gives_decisions_back_in_plan_order_whatever_order_they_came_in() -> None:
    decisions = [_decision(i) for i in range(1, 60)] + [
        _decision(i, Direction.IMPORT) for i in (5, 3)
    ]
    random.Random(3).shuffle(decisions)
    with DecisionSpool(
        {"json": decision_to_json, "text": lambda d: encode_block(decision_block(d))}
    ) as spool:
        for decision in decisions:
            spool.add(decision)
        expected = sorted(decisions, key=decision_sort_key)
        assert len(spool) == len(decisions)
        assert [json.loads(text)["record"] for text in spool.texts("json")] == [
            d.record for d in expected
        ]
        # no-ops are not in the text plan; the blocks carry their group (direction, shop)
        blocks = list(spool.blocks("text"))
        shown = [d for d in expected if d.action is not Action.NOOP]
        assert [group for group, _ in blocks] == [(d.direction, d.shop) for d in shown]
        plan = Plan(
            created_at=_when(),
            shops=("main",),
            directions=(Direction.IMPORT, Direction.EXPORT),
            decisions=tuple(expected),
        )
        streamed = Plan(
            created_at=plan.created_at,
            shops=plan.shops,
            directions=plan.directions,
            decisions=(),
            counts=plan.summary,
        )
        out = _Text()
        write_text(streamed, spool.blocks("text"), out)
        assert out.getvalue() == render_text(plan)
        doc = _Text()
        write_plan_json(streamed, spool.texts("json"), doc, count=len(spool))
        assert doc.getvalue() == plan_to_json(plan)


def test_a_large_plan_is_one_document_with_a_decision_per_line() -> None:
    count = PRETTY_DECISIONS + 1
    decisions = tuple(_decision(i) for i in range(1, count + 1))
    plan = Plan(
        created_at=_when(),
        shops=("main",),
        directions=(Direction.EXPORT,),
        decisions=tuple(sorted(decisions, key=decision_sort_key)),
    )
    text = plan_to_json(plan)
    assert json.loads(text) == plan_to_dict(plan)  # one valid document, the same content
    lines = text.splitlines()
    start = lines.index('  "decisions": [')
    assert json.loads(lines[start + 1].rstrip(","))["record"] == "C1"
    assert len(lines) < count + 60  # one line per decision, not dozens
    assert plan_from_json(text).summary == plan.summary


@pytest.mark.parametrize("count", [3, PRETTY_DECISIONS + 5])
@pytest.mark.parametrize("shuffled", [False, True])
def test_the_document_written_from_the_spool_is_the_plan_json(
    tmp_path: Path, count: int, shuffled: bool
) -> None:
    """In plan order the large plan's items are copied from the spool whole; out of order
    (or small and indented) item by item: the same bytes as plan_to_json either way."""
    decisions = [_decision(i) for i in range(1, count + 1)]
    decisions[0] = dataclasses.replace(decisions[0], label="Jürgen Öztürk <j***@example.de>")
    ordered = sorted(decisions, key=decision_sort_key)
    if shuffled:
        random.Random(5).shuffle(decisions)
    else:
        decisions = ordered
    path = tmp_path / "plan.json"
    plan, first_two = _spooled_document(decisions, path)
    assert path.read_bytes() == plan_to_json(plan).encode("utf-8")
    # the texts come back without their separators
    assert first_two == [d.record for d in ordered[:2]]


def _spooled_document(added: list[Decision], path: Path) -> tuple[Plan, list[str]]:
    """The plan of ``added`` (sorted into plan order) and, from a spool they were added to in
    the order given, its document written to ``path``; also the records of the spool's first
    two texts."""
    plan = Plan(
        created_at=_when(),
        shops=("main",),
        directions=(Direction.EXPORT,),
        decisions=tuple(sorted(added, key=decision_sort_key)),
    )
    streamed = dataclasses.replace(plan, decisions=(), counts=plan.summary)
    with DecisionSpool({"json": decision_to_json}, separators=JSON_SEPARATORS) as spool:
        for decision in added:
            spool.add(decision)
        with path.open("wb") as out:
            out.write(b"")  # the document starts where the file is
            write_plan_document(streamed, spool, out)
        first_two = [json.loads(text)["record"] for text in spool.texts("json")][:2]
    return plan, first_two


@pytest.mark.parametrize("variant", ["as-is", "small runs", "no pread"])
@pytest.mark.parametrize("count", [40, PRETTY_DECISIONS + 5])
def test_a_settled_spool_gives_the_same_outputs(
    tmp_path: Path, count: int, variant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """settle() puts the decisions spooled so far in plan order in the files themselves; the
    ones added after it (before and after the settled ones in plan order, some not shown in
    a channel) still come out in plan order: the same texts, blocks and document (also with
    runs long enough to be copied by the kernel, texts written a few at a time, and where
    the platform has no ``os.pread``)."""
    if variant == "small runs":
        monkeypatch.setattr(planstream, "_COPY_RUN_BYTES", 700)
        monkeypatch.setattr(planstream, "_WRITE_BYTES", 500)
    elif variant == "no pread":
        monkeypatch.delattr(planstream.os, "pread")
    decisions = [_decision(i) for i in range(1, count + 1)] + [
        _decision(i, Direction.IMPORT) for i in (50, 7, 300, 12)
    ]
    random.Random(9).shuffle(decisions)
    later = [_decision(count + 9), _decision(0), _decision(5, Direction.IMPORT)]
    channels = {"json": decision_to_json, "text": lambda d: encode_block(decision_block(d))}

    def outputs(settle_after: int | None) -> tuple[list[str], list[object], bytes]:
        with DecisionSpool(channels, separators=JSON_SEPARATORS) as spool:
            for index, decision in enumerate([*decisions, *later]):
                if index == settle_after:
                    spool.settle()
                    spool.settle()  # in order now: nothing to do
                    assert [json.loads(t)["record"] for t in spool.texts("json")] == [
                        d.record for d in sorted(decisions[:index], key=decision_sort_key)
                    ]
                spool.add(decision)
            plan = Plan(
                created_at=_when(),
                shops=("main",),
                directions=(Direction.IMPORT, Direction.EXPORT),
                decisions=(),
                counts=Plan(
                    created_at=_when(), shops=("main",), directions=(), decisions=tuple(decisions)
                ).summary,
            )
            path = tmp_path / "plan.json"
            with path.open("wb") as out:
                write_plan_document(plan, spool, out)
            return list(spool.texts("json")), list(spool.blocks("text")), path.read_bytes()

    unsettled = outputs(None)
    assert [json.loads(text)["record"] for text in unsettled[0]] == [
        d.record for d in sorted([*decisions, *later], key=decision_sort_key)
    ]
    assert outputs(len(decisions)) == unsettled
    assert outputs(0) == unsettled  # an empty spool: nothing to settle


def _when():  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime(2026, 1, 1, tzinfo=UTC)


class _Text:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    def getvalue(self) -> str:
        return "".join(self.parts)


def _odd_decisions() -> list[Decision]:
    """Decisions holding every kind of value a plan's JSON is written from."""
    from custsync.engine.model import FieldChange, FiredRule, ShopifyAddress

    rules = (
        FiredRule("match-by-email", "rules/import_match.yaml", 19, "import_match"),
        FiredRule('ü-rule "quoted"', "rules/x.yaml", 0),
    )
    return [
        dataclasses.replace(
            _decision(2),
            rules=rules,
            message="Jürgen's e-mail j@example.de\nsecond line",
            changes=(
                FieldChange("name", None, "Jürgen \u2603"),
                FieldChange("tax_liable", "", True),
                FieldChange("credit", 1.5, 2),
                FieldChange("tags", ("a", "b"), ["c"]),
            ),
            payload={
                "address": ShopifyAddress(id="gid://shopify/MailingAddress/1", city="Köln"),
                "import": _decision(7, Direction.IMPORT),
                "when": _when(),
                "template_code": "EU",
            },
            source_version="2026-01-01T00:00:00Z",
        ),
        dataclasses.replace(_decision(3), rules=rules[:1] * 3),
        dataclasses.replace(
            _decision(4, Direction.IMPORT),
            record="gid://shopify/Customer/4",
            erp_no=None,
            shopify_id="gid://shopify/Customer/4",
            new_link=True,
            label='Zoë "Q" \\ \t\x01 <z***@example.com>',
            message="",
            changes=(
                FieldChange("email", None, "z@example.com"),
                FieldChange("credit_limit", 10**20, -3),
                FieldChange("blocked", False, None),
                FieldChange("ratio", float("inf"), 0.1),
                FieldChange("when", None, _when()),
            ),
            payload=MappingProxyType(
                {
                    "address": MappingProxyType({"city": "Zürich", "lines": ("a", None, 2)}),
                    7: "a key that is not a string",
                    "empty": [],
                    "flag": False,
                }
            ),
            target_version="etag-1",
        ),
    ]


@pytest.mark.parametrize("decided_at", [None, 2, -1])
@pytest.mark.parametrize("count", [3, PRETTY_DECISIONS + 3])
def test_the_second_process_writes_the_same_document(
    tmp_path: Path, count: int, decided_at: int | None
) -> None:
    """`plan -o json --out`'s SpoolProcess (decisions handed to a second process, rendered and
    spooled there) writes the bytes of the in-process spool, whatever the decisions hold
    (values marshal cannot carry are rendered by the deciding process), small and large;
    told the deciding is over (it settles its spool) before the last decisions or after
    them all."""
    decisions = [*_odd_decisions(), *(_decision(i) for i in range(10, count + 7))][:count]
    random.Random(3).shuffle(decisions)
    plan = Plan(
        created_at=_when(),
        shops=("main",),
        directions=(Direction.IMPORT, Direction.EXPORT),
        decisions=tuple(sorted(decisions, key=decision_sort_key)),
    )
    streamed = dataclasses.replace(plan, decisions=(), counts=plan.summary)
    with DecisionSpool({"json": decision_to_json}, separators=JSON_SEPARATORS) as spool:
        for decision in decisions:
            spool.add(decision)
        expected = tmp_path / "expected.json"
        with expected.open("wb") as out:
            write_plan_document(streamed, spool, out)
    with SpoolProcess() as process:
        for index, decision in enumerate(decisions):
            if index == decided_at:
                process.decided()
            process.add(decision)
        if decided_at == -1:
            process.decided()
        assert len(process) == count
        written = tmp_path / "written.json"
        with written.open("wb") as out:
            process.write_document(plan_json_frame(streamed), out)
    assert written.read_bytes() == expected.read_bytes()
    assert json.loads(written.read_text(encoding="utf-8", errors="surrogatepass"))[
        "summary"
    ] == json.loads(plan_to_json(plan))["summary"]


def test_the_second_process_failing_fails_the_plan(tmp_path: Path) -> None:
    """A second process that cannot write the document is an error of the plan, not a
    short file."""
    with SpoolProcess() as process:
        process.add(_decision(1))
        process._process.kill()
        process._process.join()
        with (tmp_path / "x.json").open("wb") as out, pytest.raises((RuntimeError, OSError)):
            process.write_document(("{", "}"), out)


def test_a_decision_s_json_is_json_dumps_of_its_object() -> None:
    """decision_to_json writes each decision field by field, its rules encoded once: the
    same text as json.dumps of the whole object, whatever the decision holds."""
    from custsync.engine.run.plan import _decision_to_dict

    odd = _odd_decisions()
    decisions = [
        _decision(1),
        *odd,
        dataclasses.replace(odd[-1], label="a lone surrogate \ud800"),
    ]
    for decision in decisions:
        assert decision_to_json(decision) == json.dumps(
            _decision_to_dict(decision), ensure_ascii=False
        )


def test_a_record_with_a_lone_surrogate_keeps_its_place_and_its_value(tmp_path: Path) -> None:
    """A record id holding a lone surrogate (a "\\ud800" escape in a files world) sorts by its
    own value in the spool, as in a plan held in memory (its sort key is kept as it is), and
    the document escapes it: valid UTF-8 that reads back as the same record."""
    records = ["C\ud800", "C]", "C\ue000", "C1", "B"]
    decisions = [
        Decision(direction=Direction.EXPORT, action=Action.SKIP, shop="main", record=record)
        for record in records
    ]
    path = tmp_path / "plan.json"
    plan, _ = _spooled_document(decisions, path)
    document = json.loads(path.read_bytes().decode("utf-8"))
    assert [d["record"] for d in document["decisions"]] == [d.record for d in plan.decisions]
    assert [d.record for d in plan.decisions] == ["B", "C1", "C]", "C\ud800", "C\ue000"]
    assert path.read_bytes() == plan_to_json(plan).encode("utf-8")
