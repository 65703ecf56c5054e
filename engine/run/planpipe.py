"""A saved plan's JSON made on the machine's second core.

Deciding a million records takes one core; rendering each decision as JSON, spooling it and
writing the document in plan order took about as long again on the same core. With
:class:`SpoolProcess` the deciding process only hands each decision over, as a tuple of its
fields (``marshal``: strings, numbers and containers, copied by C code), in batches through a
pipe; a process forked before the sources are read (so it holds none of the World) rebuilds
the decision, renders it with :func:`~.plan.decision_to_json` and keeps it in its own
:class:`~.planstream.DecisionSpool`, then writes the document to the file it is given. The
bytes are the same as :func:`~.planstream.write_plan_document` of an in-process spool: the
same functions render them. A decision holding a value ``marshal`` cannot carry (a datetime,
a record, a nested decision) is rendered by the deciding process and handed over as text.
"""

from __future__ import annotations

import contextlib
import marshal
import multiprocessing
import traceback
from multiprocessing import reduction
from multiprocessing.connection import Connection
from types import MappingProxyType
from typing import IO, Any

from ..model import Action, Decision, Direction, FieldChange, FiredRule
from .plan import decision_to_json
from .planstream import JSON_CHANNEL, JSON_SEPARATORS, DecisionSpool, write_json_document

__all__ = ["SpoolProcess"]

#: decisions handed over at a time (a batch of tens of kilobytes: fewer caches disturbed)
_BATCH = 32

#: the end of the decisions (a batch is never empty)
_END = b""

#: the deciding is over (what may still come: the few decisions of bad records); not what
#: ``marshal`` makes of a batch
_DECIDED = b"\x00decided"


#: fired rules the processes number instead of handing them over (an engine fires the same
#: few hundred rule objects); any further ones go as their fields
_NUMBERED_RULES = 10_000


class _Wire:
    """Decisions as plain values: the deciding process's half."""

    def __init__(self) -> None:
        self._rule_numbers: dict[int, int] = {}  # id() of a rule object -> its number
        self._rules: list[FiredRule] = []  # the objects numbered (kept: ids stay theirs)
        self._new_rules: list[tuple[str, str, int, str]] = []  # numbered since the last batch

    def _rule(self, rule: FiredRule) -> int | tuple[str, str, int, str]:
        number = self._rule_numbers.get(id(rule))
        if number is not None:
            return number
        fields = (rule.id, rule.file, rule.line, rule.decision)
        if len(self._rules) >= _NUMBERED_RULES:
            return fields
        number = self._rule_numbers[id(rule)] = len(self._rules)
        self._rules.append(rule)
        self._new_rules.append(fields)
        return number

    def wired(self, decision: Decision) -> tuple[Any, ...]:
        """The decision's fields (payload mappings as dicts, rules by number)."""
        payload = decision.payload
        if not payload and type(payload) is MappingProxyType:
            payload = {}
        elif type(payload) is MappingProxyType:
            payload = {
                key: dict(value) if type(value) is MappingProxyType else value
                for key, value in payload.items()
            }
        numbers, number_of = self._rule_numbers, self._rule
        return (
            decision.direction._value_,
            decision.action._value_,
            decision.shop,
            decision.record,
            decision.erp_no,
            decision.shopify_id,
            [(change.field, change.old, change.new) for change in decision.changes],
            decision.reason_code,
            decision.message,
            [numbers[id(rule)] if id(rule) in numbers else number_of(rule) for rule in decision.rules],
            decision.new_link,
            payload,
            decision.source_version,
            decision.target_version,
            decision.label,
        )

    def encoded(self, decisions: list[Decision]) -> bytes:
        """A batch: the rules numbered since the last one, and the decisions."""
        items = [self.wired(decision) for decision in decisions]
        try:
            data = marshal.dumps((self._new_rules, items))
        except ValueError:  # some value marshal cannot carry: those decisions go as text
            carried = []
            for item, decision in zip(items, decisions, strict=True):
                try:
                    marshal.dumps(item)
                except ValueError:
                    carried.append(_rendered(decision))
                else:
                    carried.append(item)
            data = marshal.dumps((self._new_rules, carried))
        self._new_rules = []
        return data


def _rendered(decision: Decision) -> tuple[str, str, str, str]:
    """A decision ``marshal`` cannot carry: its key fields and its JSON, rendered here."""
    return (decision.direction.value, decision.shop, decision.record, decision_to_json(decision))


class _Unwire:
    """Decisions from plain values: the second process's half."""

    def __init__(self) -> None:
        self._rules: list[FiredRule] = []

    def batch(self, data: bytes) -> list[tuple[Any, ...]]:
        new_rules, items = marshal.loads(data)
        self._rules.extend(
            FiredRule(id=rule_id, file=file, line=line, decision=decision)
            for rule_id, file, line, decision in new_rules
        )
        return items

    def decision(self, item: tuple[Any, ...]) -> Decision:
        rules = self._rules
        return Decision(
            direction=Direction(item[0]),
            action=Action(item[1]),
            shop=item[2],
            record=item[3],
            erp_no=item[4],
            shopify_id=item[5],
            changes=tuple(FieldChange(field, old, new) for field, old, new in item[6]),
            reason_code=item[7],
            message=item[8],
            rules=tuple(
                rules[rule] if type(rule) is int else FiredRule(*rule) for rule in item[9]
            ),
            new_link=item[10],
            payload=item[11],
            source_version=item[12],
            target_version=item[13],
            label=item[14],
        )


def _serve(connection: Connection) -> None:
    """The second process: spool what comes, then write the document where it is told."""
    try:
        with DecisionSpool({JSON_CHANNEL: decision_to_json}, separators=JSON_SEPARATORS) as spool:
            unwire = _Unwire()
            while (data := connection.recv_bytes()) != _END:
                if data == _DECIDED:  # the other process computes the digests meanwhile
                    spool.settle()
                    continue
                for item in unwire.batch(data):
                    if len(item) == 4:  # rendered by the deciding process
                        direction, shop, record, text = item
                        key = Decision(Direction(direction), Action.SKIP, shop, record)
                        spool.add(key, {JSON_CHANNEL: text})
                    else:
                        spool.add(unwire.decision(item))
            frame = connection.recv()
            target = reduction.recv_handle(connection)
            with open(target, "wb") as out:  # a file descriptor: not truncated
                write_json_document(frame, spool, out)
            connection.send(("written", len(spool)))
    except EOFError:  # the deciding process gave up (it reports why)
        return
    except BaseException:  # reported to the deciding process
        with contextlib.suppress(OSError):
            connection.send(("failed", traceback.format_exc()))


class SpoolProcess:
    """A sink for decisions whose JSON a second process renders and spools
    (:meth:`add`), then writes as the plan document (:meth:`write_document`)."""

    @staticmethod
    def available() -> bool:
        """Whether this platform can fork (the second process must not read the sources)."""
        return "fork" in multiprocessing.get_all_start_methods()

    def __init__(self) -> None:
        context = multiprocessing.get_context("fork")
        self._connection, theirs = context.Pipe(duplex=True)
        self._process = context.Process(
            target=_serve, args=(theirs,), name="custsync-plan-json", daemon=True
        )
        self._process.start()
        theirs.close()
        self._batch: list[Decision] = []
        self._count = 0
        self._wire = _Wire()

    def __len__(self) -> int:
        return self._count

    def add(self, decision: Decision) -> None:
        self._batch.append(decision)
        self._count += 1
        if len(self._batch) >= _BATCH:
            self._send()

    def _send(self) -> None:
        if self._batch:
            self._connection.send_bytes(self._wire.encoded(self._batch))
            self._batch.clear()

    def decided(self) -> None:
        """The decisions are (nearly) all made: the second process puts those it has in plan
        order while this one computes the plan's digests (:meth:`DecisionSpool.settle`)."""
        self._send()
        self._connection.send_bytes(_DECIDED)

    def write_document(self, frame: tuple[str, str], out: IO[bytes]) -> None:
        """The plan document (the text before and after its decisions, ``frame``) written to
        ``out`` (a file) by the second process."""
        self._send()
        out.flush()
        self._connection.send_bytes(_END)
        self._connection.send(frame)
        reduction.send_handle(self._connection, out.fileno(), self._process.pid)
        try:
            outcome, detail = self._connection.recv()
        except EOFError:
            outcome, detail = "failed", f"it ended with exit code {self._process.exitcode}"
        if outcome != "written" or detail != self._count:
            raise RuntimeError(f"the process writing the plan's JSON failed: {detail}")

    def close(self) -> None:
        self._connection.close()
        self._process.join(timeout=30)
        if self._process.is_alive():  # pragma: no cover - stuck: it holds only temporary files
            self._process.kill()
            self._process.join()

    def __enter__(self) -> SpoolProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
