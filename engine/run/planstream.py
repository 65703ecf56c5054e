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

import errno
import io
import itertools
import json
import os
import tempfile
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO

from ..masking import json_surrogates_escaped
from ..model import Decision, Direction
from .plan import (
    JSON_ITEM_SEPARATOR,
    PRETTY_DECISIONS,
    Plan,
    plan_json_frame,
    plan_order_key,
    write_plan_json,
)
from .render import Block

__all__ = [
    "JSON_CHANNEL",
    "JSON_SEPARATORS",
    "DecisionSpool",
    "copy_bytes",
    "write_json_document",
    "write_plan_document",
]

#: what a channel makes of a decision: its text in the output, or None to leave it out
Encoder = Callable[[Decision], str | None]


#: runs of the spool at least this long are copied by :func:`copy_bytes` (smaller ones are
#: read and written: a system call or two per run either way)
_COPY_RUN_BYTES = 1 << 20

#: a channel's texts are written to its file this many bytes at a time (a decision's JSON is
#: kilobytes; the file's own buffer stays small, for reading single decisions back)
_WRITE_BYTES = 1 << 20

#: the internal channel holding each decision's sort key
_KEY = "\x00key"


@dataclass(slots=True)
class _Channel:
    """What :meth:`DecisionSpool.add` works with per channel and decision."""

    name: str
    encode: Encoder
    file: IO[bytes]
    ends: array[int]  # where each decision's text ends in the file
    shown: array[int]  # whether the decision is in the channel at all
    separator: str
    size: int = 0
    pending: list[bytes] = field(default_factory=list)  # not yet written to the file
    pending_size: int = 0

    def write_pending(self) -> None:
        self.file.write(b"".join(self.pending))
        self.pending.clear()
        self.pending_size = 0


class DecisionSpool:
    """Decisions rendered per channel (``"json"``, ``"text"``) into temporary files.

    The sort keys go to a spool file too: memory holds only the last one while the decisions
    come in plan order; if they do not, the keys are read back and sorted at the end (when
    the World the decisions were made from has been released).

    A channel given a ``separators`` entry stores each text behind its separator, so that the
    texts in plan order, joined by it, can be copied out whole (:meth:`write_joined`) when
    the decisions came in plan order: the JSON items of a large plan are copied into the
    document by the operating system, not read and written back one by one."""

    def __init__(
        self, channels: Mapping[str, Encoder], *, separators: Mapping[str, str] | None = None
    ) -> None:
        self._encoders: dict[str, Encoder] = {_KEY: self._key_of, **channels}
        self._files: dict[str, IO[bytes]] = {
            name: tempfile.TemporaryFile(prefix="custsync-plan-")  # noqa: SIM115 - closed by close()
            for name in self._encoders
        }
        # per channel: where each decision's text ends, and whether it is shown at all
        self._ends: dict[str, array[int]] = {name: array("q") for name in self._encoders}
        self._shown: dict[str, array[int]] = {name: array("b") for name in self._encoders}
        self._separators = {name: (separators or {}).get(name, "") for name in self._encoders}
        self._channels = [
            _Channel(
                name,
                self._encoders[name],
                self._files[name],
                self._ends[name],
                self._shown[name],
                self._separators[name],
            )
            for name in self._encoders
        ]
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

    def add(self, decision: Decision, texts: Mapping[str, str | None] | None = None) -> None:
        """Spool ``decision``; ``texts`` gives channels' texts made already (the rest are
        encoded here)."""
        group = (decision.direction, decision.shop)
        index = self._groups.get(group)
        if index is None:
            index = self._groups[group] = len(self._groups)
        self._group_of.append(index)
        for channel in self._channels:
            text = (
                texts[channel.name]
                if texts is not None and channel.name in texts
                else channel.encode(decision)
            )
            if text is None:
                channel.ends.append(channel.size)
                channel.shown.append(False)
                continue
            if channel.separator:
                text = channel.separator + text
            try:
                data = text.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate read from a JSON or YAML source
                # the sort keys are read back as they were (they order, never show); what
                # is shown gets its JSON escape (valid UTF-8, read back as the same value)
                data = (
                    text.encode("utf-8", "surrogatepass")
                    if channel.name == _KEY
                    else json_surrogates_escaped(text).encode("utf-8")
                )
            channel.pending.append(data)
            channel.pending_size += len(data)
            if channel.pending_size >= _WRITE_BYTES:
                channel.write_pending()
            channel.size += len(data)
            channel.ends.append(channel.size)
            channel.shown.append(True)

    def _plan_order(self) -> array[int]:
        if self._order is None or len(self._order) != len(self):  # none, or decisions added
            if self._in_order:
                self._order = array("q", range(len(self)))
            else:
                self._order = self._sorted(self._keys())
        return self._order

    def _keys(self) -> list[str]:
        """Every decision's sort key (read at once: a few dozen bytes a decision)."""
        ends = self._ends[_KEY]
        handle = self._written(_KEY)
        handle.seek(0)
        data = handle.read(ends[-1]) if ends else b""
        return [
            data[start:end].decode("utf-8", "surrogatepass")
            for start, end in itertools.pairwise(itertools.chain((0,), ends))
        ]

    @staticmethod
    def _sorted(keys: list[str]) -> array[int]:
        return array("q", sorted(range(len(keys)), key=keys.__getitem__))

    def settle(self) -> None:
        """Put what was added so far in plan order in the spool files themselves (a copy of
        each channel, runs copied whole), so that writing the outputs later is a sequential
        copy. For a process with time to spare before it writes (while the plan's digests are
        computed elsewhere, :class:`~.planpipe.SpoolProcess`); decisions may still be added
        after it (out of order ones are sorted at the end, as ever)."""
        if self._in_order:
            return
        keys = self._keys()
        order = self._sorted(keys)
        self._last_key = keys[order[-1]]
        for channel in self._channels:
            if channel.pending:
                channel.write_pending()
            settled = tempfile.TemporaryFile(prefix="custsync-plan-")  # noqa: SIM115 - closed by close()
            try:
                if channel.name == _KEY:  # known already: written, not copied
                    ends = _write_in_order(keys, order, settled)
                else:
                    ends = _copy_in_order(channel.file, channel.ends, order, settled)
            except BaseException:
                settled.close()
                raise
            channel.file.close()
            channel.file = self._files[channel.name] = settled
            channel.ends[:] = ends
            channel.shown[:] = array("b", (channel.shown[index] for index in order))
        self._group_of[:] = array("H", (self._group_of[index] for index in order))
        self._order = None
        self._in_order = True

    def entries(self, channel: str) -> Iterator[tuple[tuple[Direction, str], str]]:
        """The channel's texts in plan order, with their (direction, shop)."""
        order = self._plan_order()
        groups = {index: group for group, index in self._groups.items()}
        shown = self._shown[channel]
        wanted = (index for index in order if shown[index])
        for index, text in self._read(channel, wanted):
            yield groups[self._group_of[index]], text

    def _read(self, channel: str, indexes: Iterable[int]) -> Iterator[tuple[int, str]]:
        """The texts (without their separator) of ``indexes``."""
        for index, data in self._read_bytes(channel, indexes):
            yield index, data.decode("utf-8", "surrogatepass")

    def _written(self, channel: str) -> IO[bytes]:
        """The channel's file, everything added so far in it."""
        for spooled in self._channels:
            if spooled.name == channel and spooled.pending:
                spooled.write_pending()
        handle = self._files[channel]
        handle.flush()
        return handle

    def _read_bytes(self, channel: str, indexes: Iterable[int]) -> Iterator[tuple[int, bytes]]:
        handle = self._written(channel)
        ends = self._ends[channel]
        skip = len(self._separators[channel].encode("utf-8"))
        position = -1
        for index in indexes:
            start = ends[index - 1] if index else 0
            if position != start + skip:
                handle.seek(start + skip)
            data = handle.read(ends[index] - start - skip)
            position = ends[index]
            yield index, data

    def write_joined(self, channel: str, out: IO[bytes]) -> int:
        """Write the channel's texts in plan order joined by its separator (UTF-8) to
        ``out``; returns how many. Decisions that came in plan order are copied as runs of
        the spool (a range copy in the kernel where the platform has one): all of them when
        they all did, e.g. the exports of a plan whose imports came in another order."""
        separator = len(self._separators[channel].encode("utf-8"))
        order = self._plan_order()
        handle = self._written(channel)
        ends = self._ends[channel]
        shown = self._shown[channel]
        written = 0
        for start, end in _runs(index for index in order if shown[index]):
            self._write_run(handle, ends, start, end, separator if not written else 0, out)
            written += end - start + 1
        return written

    @staticmethod
    def _write_run(
        handle: IO[bytes], ends: array[int], start: int, end: int, skip: int, out: IO[bytes]
    ) -> None:
        """The spool's bytes of decisions ``start..end``, the first ``skip`` bytes left out."""
        offset = (ends[start - 1] if start else 0) + skip
        length = ends[end] - offset
        if length >= _COPY_RUN_BYTES:
            copy_bytes(handle, offset, length, out)
        else:
            handle.seek(offset)
            out.write(handle.read(length))

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


#: the spool channel :func:`write_plan_document` reads, and how to declare it
JSON_CHANNEL = "json"
JSON_SEPARATORS = {JSON_CHANNEL: JSON_ITEM_SEPARATOR}


def write_plan_document(plan: Plan, spool: DecisionSpool, out: IO[bytes]) -> None:
    """:func:`~.plan.write_plan_json` of the spool's ``"json"`` channel (made with
    ``separators=JSON_SEPARATORS``) as UTF-8 to ``out``: the same document, byte for byte.
    A large plan's decisions, one per line, are copied from the spool whole."""
    write_json_document(plan_json_frame(plan), spool, out)


def write_json_document(frame: tuple[str, str], spool: DecisionSpool, out: IO[bytes]) -> None:
    """:func:`write_plan_document` of the plan whose :func:`~.plan.plan_json_frame` is
    ``frame``."""
    count = len(spool)
    if count <= PRETTY_DECISIONS:  # indented item by item
        text = io.TextIOWrapper(out, encoding="utf-8", newline="")
        write_plan_json(None, spool.texts(JSON_CHANNEL), text, count=count, frame=frame)
        text.flush()
        text.detach()
        return
    before, after = frame
    out.write(f"{before}[{JSON_ITEM_SEPARATOR[1:]}".encode())  # the first one: no comma
    spool.write_joined(JSON_CHANNEL, out)
    out.write(f"\n  ]{after}\n".encode())


def _write_in_order(texts: list[str], order: Iterable[int], out: IO[bytes]) -> array[int]:
    """``texts`` written to ``out`` in ``order``; returns where each ends there."""
    encoded = [texts[index].encode("utf-8", "surrogatepass") for index in order]
    out.write(b"".join(encoded))
    out.flush()
    return array("q", itertools.accumulate(map(len, encoded)))


def _copy_in_order(
    source: IO[bytes], ends: array[int], order: array[int], out: IO[bytes]
) -> array[int]:
    """The texts of a spool file (each ending at ``ends``) copied to ``out`` in ``order``;
    returns where each ends there. Consecutive texts are copied as one run."""
    source.flush()
    read_at = _reader_at(source)
    settled = array(
        "q", itertools.accumulate(ends[index] - (ends[index - 1] if index else 0) for index in order)
    )
    pending: list[bytes] = []  # short runs, written a megabyte at a time
    pending_size = 0

    def write_pending() -> None:
        nonlocal pending_size
        out.write(b"".join(pending))
        pending.clear()
        pending_size = 0

    for start, end in _runs(order):
        offset = ends[start - 1] if start else 0
        length = ends[end] - offset
        if length >= _COPY_RUN_BYTES:
            write_pending()
            copy_bytes(source, offset, length, out)
        elif length:
            pending.append(read_at(offset, length))
            pending_size += length
            if pending_size >= _WRITE_BYTES:
                write_pending()
    write_pending()
    out.flush()
    return settled


def _runs(indexes: Iterable[int]) -> Iterator[tuple[int, int]]:
    """Consecutive indexes as runs: (first, last) of each."""
    start = end = -1
    for index in indexes:
        if index == end + 1 and start >= 0:
            end = index
            continue
        if start >= 0:
            yield start, end
        start = end = index
    if start >= 0:
        yield start, end


def _reader_at(source: IO[bytes]) -> Callable[[int, int], bytes]:
    """Reading ``length`` bytes of ``source`` at ``offset``: one system call where the
    platform has ``pread`` (no seek, no buffer filled)."""
    if hasattr(os, "pread"):
        descriptor = source.fileno()
        return lambda offset, length: os.pread(descriptor, length, offset)

    def read_at(offset: int, length: int) -> bytes:
        source.seek(offset)
        return source.read(length)

    return read_at


def copy_bytes(source: IO[bytes], offset: int, length: int, out: IO[bytes]) -> None:
    """Copy ``length`` bytes of ``source`` from ``offset`` to the end of what ``out`` has."""
    out.flush()
    try:
        target = out.fileno()
        sendfile = os.sendfile
        out.seek(0, os.SEEK_END)
    except (AttributeError, OSError, ValueError):  # no file descriptor, no sendfile
        target = -1
    if target >= 0:
        try:
            while length > 0:
                sent = sendfile(target, source.fileno(), offset, min(length, 1 << 30))
                if sent == 0:
                    break
                offset += sent
                length -= sent
            out.seek(0, os.SEEK_END)  # the buffered object learns where the file ends
            return
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.EXDEV, errno.ENOTSUP):
                raise
            out.seek(0, os.SEEK_END)
    source.seek(offset)
    while length > 0:
        chunk = source.read(min(length, 1 << 20))
        if not chunk:
            break
        out.write(chunk)
        length -= len(chunk)


def encode_block(block: Block | None) -> str | None:
    """A text block as spooled (its lines of (text, style) segments as JSON)."""
    if block is None:
        return None
    return json.dumps(block[1], ensure_ascii=False)
