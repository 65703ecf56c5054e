"""Writing a plan as it is decided: memory bounded by one record, not by the output.

Decisions are made in apply order (imports, then exports by ERP number) but shown in plan
order (direction, shop, record with numbers compared as numbers), and the summary the output
starts with is known only at the end. So each decision is rendered once, as it is made, into
a temporary spool file per output format (the text block, the JSON item); memory keeps one
short sort key per decision (a string, :func:`~.plan.plan_order_key`), their positions, and
the summary counts. At the end the outputs are written from the spool in plan order (a
sequential read when the decisions came in plan order already, as they mostly do).
"""

from __future__ import annotations

import json
import tempfile
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import IO

from ..model import Decision, Direction
from .plan import plan_order_key
from .render import Block

__all__ = ["DecisionSpool"]

#: what a channel makes of a decision: its text in the output, or None to leave it out
Encoder = Callable[[Decision], str | None]


#: the internal channel holding each decision's sort key
_KEY = "\x00key"


class DecisionSpool:
    """Decisions rendered per channel (``"json"``, ``"text"``) into temporary files.

    The sort keys go to a spool file too: memory holds only the last one while the decisions
    come in plan order; if they do not, the keys are read back and sorted at the end (when
    the World the decisions were made from has been released)."""

    def __init__(self, channels: Mapping[str, Encoder]) -> None:
        self._encoders: dict[str, Encoder] = {_KEY: self._key_of, **channels}
        self._files: dict[str, IO[bytes]] = {
            name: tempfile.TemporaryFile(prefix="custsync-plan-")  # noqa: SIM115 - closed by close()
            for name in self._encoders
        }
        # per channel: where each decision's text ends, and whether it is shown at all
        self._ends: dict[str, array[int]] = {name: array("q") for name in self._encoders}
        self._shown: dict[str, array[int]] = {name: array("b") for name in self._encoders}
        self._last_key = ""
        self._groups: dict[tuple[Direction, str], int] = {}
        self._group_of: array[int] = array("H")
        self._in_order = True
        self._order: array[int] | None = None

    def __len__(self) -> int:
        return len(self._group_of)

    def _key_of(self, decision: Decision) -> str:
        key = plan_order_key(decision.direction, decision.shop, decision.record)
        if key < self._last_key:
            self._in_order = False
        self._last_key = key
        return key

    def add(self, decision: Decision) -> None:
        group = (decision.direction, decision.shop)
        self._group_of.append(self._groups.setdefault(group, len(self._groups)))
        for name, encode in self._encoders.items():
            text = encode(decision)
            ends = self._ends[name]
            end = ends[-1] if ends else 0
            if text is not None:
                data = text.encode("utf-8", "surrogatepass")
                self._files[name].write(data)
                end += len(data)
            ends.append(end)
            self._shown[name].append(text is not None)

    def _plan_order(self) -> array[int]:
        if self._order is None:
            if self._in_order:
                self._order = array("q", range(len(self)))
            else:
                keys = [key for _, key in self._read(_KEY, range(len(self)))]
                self._order = array("q", sorted(range(len(keys)), key=keys.__getitem__))
        return self._order

    def entries(self, channel: str) -> Iterator[tuple[tuple[Direction, str], str]]:
        """The channel's texts in plan order, with their (direction, shop)."""
        order = self._plan_order()
        groups = {index: group for group, index in self._groups.items()}
        shown = self._shown[channel]
        wanted = (index for index in order if shown[index])
        for index, text in self._read(channel, wanted):
            yield groups[self._group_of[index]], text

    def _read(self, channel: str, indexes: Iterable[int]) -> Iterator[tuple[int, str]]:
        handle = self._files[channel]
        handle.flush()
        ends = self._ends[channel]
        position = -1
        for index in indexes:
            start = ends[index - 1] if index else 0
            if position != start:
                handle.seek(start)
            data = handle.read(ends[index] - start)
            position = ends[index]
            yield index, data.decode("utf-8", "surrogatepass")

    def texts(self, channel: str) -> Iterator[str]:
        for _, text in self.entries(channel):
            yield text

    def blocks(self, channel: str = "text") -> Iterator[Block]:
        """A text channel's blocks (encoded by :func:`encode_block`) for the text renderer."""
        for group, text in self.entries(channel):
            yield (
                group,
                [[(segment, style) for segment, style in line] for line in json.loads(text)],
            )

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()

    def __enter__(self) -> DecisionSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def encode_block(block: Block | None) -> str | None:
    """A text block as spooled (its lines of (text, style) segments as JSON)."""
    if block is None:
        return None
    return json.dumps(block[1], ensure_ascii=False)
