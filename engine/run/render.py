"""Rendering a Plan as text (like a Terraform plan) or JSON. Computes nothing.

The text plan masks customer contact data (e-mail ``j***@example.com``, phone ``+1 41* *** **34``:
first three and last two digits kept) because it ends up in terminals, CI logs and tickets.
The JSON plan keeps full values in changes and payloads: it is the machine-readable record
that ``sync --plan`` applies; its messages are masked like the text plan's (masking.py).
Neither ever contains an access token (a Plan holds none).

Colours and bold only on a terminal, never when ``NO_COLOR`` is set (https://no-color.org).
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import IO, Any

from ..masking import EMAIL, PHONE, mask_contact, mask_phone, mask_text, terminal_safe
from ..model import Action, Decision, Direction
from .plan import Plan, PlanSummary, plan_to_json

__all__ = [
    "Block",
    "decision_block",
    "decision_text",
    "mask_label",
    "mask_phone",
    "mask_text",
    "print_plan",
    "render_json",
    "render_rich",
    "render_text",
    "stream_text",
    "write_text",
]

_SYMBOL_STYLE = {
    Action.CREATE: "green",
    Action.UPDATE: "yellow",
    Action.LINK: "cyan",
    Action.SKIP: "red",
}
_LEGEND = {
    Action.CREATE: "create",
    Action.UPDATE: "update",
    Action.LINK: "link",
    Action.SKIP: "skip",
}
_DIRECTION_TITLE = {
    Direction.IMPORT: "import (Shopify -> ERP)",
    Direction.EXPORT: "export (ERP -> Shopify)",
    Direction.ORDER: "order mapping (Shopify order -> ERP customer)",
}

# --------------------------------------------------------------------------------------------
# Masking
# --------------------------------------------------------------------------------------------

_LABEL_CONTACT = re.compile(r"^(.*) <([^<>]*)>$")


def mask_label(label: str) -> str:
    """``Jane Doe <jane@example.com>`` -> ``Jane Doe <j***@example.com>``, even when the part
    in angle brackets is not a valid e-mail (it is still the customer's contact data)."""
    found = _LABEL_CONTACT.match(label)
    if found is None:
        return mask_text(label)
    return f"{mask_text(found.group(1))} <{mask_contact(found.group(2), EMAIL)}>"


def _sensitive(name: str) -> str | None:
    last = name.rsplit(".", 1)[-1].lower()
    if "email" in last or "e_mail" in last:
        return EMAIL
    if "phone" in last:
        return PHONE
    return None


def _show(name: str, value: Any) -> str:
    """A value for the text plan: quoted text (masked if sensitive), ``(none)`` for None."""
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if not isinstance(value, str):
        value = json.dumps(_plain(value), ensure_ascii=False, sort_keys=True)
        return mask_text(value)
    kind = _sensitive(name)
    if kind is not None:  # a contact field: masked whatever it holds, valid or not
        value = mask_contact(value, kind)
    return json.dumps(value, ensure_ascii=False)


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


def _flatten(prefix: str, value: Any) -> Iterable[tuple[str, Any]]:
    if isinstance(value, Decision):  # a nested decision (an order's customer import)
        yield f"{prefix}.action", value.action.value
        if value.reason_code:
            yield f"{prefix}.reason", value.reason_code
        for change in value.changes:
            yield f"{prefix}.{change.field}", change.new
        for key in sorted(value.payload):
            yield from _flatten(f"{prefix}.{key}", value.payload[key])
        return
    value = _plain(value)
    if isinstance(value, dict):
        for key in value:
            yield from _flatten(f"{prefix}.{key}" if prefix else key, value[key])
    else:
        yield prefix, value


# --------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------

Segment = tuple[str, str]  # (text, rich style)
Line = list[Segment]


def _relative(path: str, base_dir: Path | None) -> str:
    """``path`` relative to ``base_dir`` when under it."""
    if base_dir is None or not path:
        return path
    if base_dir.is_absolute() and os.path.isabs(path):
        return _relative_absolute(path, base_dir)
    return _resolved_relative(path, base_dir)


@functools.lru_cache(maxsize=256)
def _relative_absolute(path: str, base_dir: Path) -> str:
    """:func:`_relative` of absolute paths, remembered: every decision names its rule
    files, which are few, and resolving a path asks the file system each time."""
    return _resolved_relative(path, base_dir)


def _resolved_relative(path: str, base_dir: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(base_dir.resolve()))
    except ValueError:
        return path


def _header(decision: Decision) -> Line:
    action = decision.action
    if decision.direction is Direction.EXPORT:
        target, target_id, source = "shopify customer", decision.shopify_id, "erp"
    elif decision.direction is Direction.ORDER:
        target, target_id, source = "erp customer", decision.erp_no, "shopify order"
    else:
        target, target_id, source = "erp customer", decision.erp_no, "shopify"
    if not target_id:
        target_id = "(new)" if action is Action.CREATE else "(none)"
    line: Line = [
        (action.symbol, f"bold {_SYMBOL_STYLE.get(action, '')}".strip()),
        (f" {target} ", "bold"),
        (target_id, "bold"),
        (f" <- {source} {decision.record}", ""),
    ]
    if decision.label:
        line.append((f" {json.dumps(mask_label(decision.label), ensure_ascii=False)}", ""))
    if decision.new_link and action not in (Action.CREATE, Action.LINK, Action.SKIP):
        line.append(("  (and link)", "cyan"))
    return line


def _provenance(decision: Decision, base_dir: Path | None) -> list[str]:
    """``# rules:`` lines: one per decision of the rule language, in firing order; several
    rules of one file are listed after it (``import_fields (rules/import_fields.yaml):
    city-from-city:86, ...``)."""
    groups: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for fired in decision.rules:
        groups.setdefault((fired.decision, fired.file), []).append((fired.id, fired.line))
    entries = []
    for (name, file), fired_rules in groups.items():
        where = _relative(file, base_dir)
        if len(fired_rules) == 1:
            rule_id, line = fired_rules[0]
            entries.append(f"{name + '/' if name else ''}{rule_id} ({where}:{line})")
        else:
            listed = ", ".join(f"{rule_id}:{line}" for rule_id, line in fired_rules)
            entries.append(f"{name or 'rules'} ({where}): {listed}")
    return [
        f"    {'# rules:' if index == 0 else '#       '} {entry}"
        for index, entry in enumerate(entries)
    ]


def _block(decision: Decision, base_dir: Path | None) -> list[Line]:
    lines = [_header(decision)]
    items: list[tuple[str, str, str]] = []  # (name, shown value, style)
    for change in decision.changes:
        if decision.action is Action.CREATE and change.old in (None, ""):
            shown = _show(change.field, change.new)
        else:
            shown = f"{_show(change.field, change.old)} -> {_show(change.field, change.new)}"
        items.append((change.field, shown, _SYMBOL_STYLE.get(decision.action, "")))
    changed = {change.field: change.new for change in decision.changes}
    for key in sorted(decision.payload):
        if key == "reasons" and list(decision.payload[key]) == [decision.reason_code]:
            continue  # one reason: the reason line below says it
        for name, value in _flatten(key, decision.payload[key]):
            if value in (None, "", [], {}) or ("." in name and value is False):
                continue  # empty parts of nested records are noise
            last = name.rsplit(".", 1)[-1]
            if name in changed or (last in changed and changed[last] == value):
                continue  # already shown as a change
            items.append((name, _show(name, value), "dim"))
    width = max((len(name) for name, _, _ in items), default=0) + 1
    for name, shown, style in items:
        lines.append([("    ", ""), (f"{name + ':':<{width}} ", style), (shown, "")])
    if decision.action is Action.SKIP or decision.reason_code:
        reason = decision.reason_code or "no-reason"
        message = f": {mask_text(decision.message)}" if decision.message else ""
        lines.append([("    reason: ", "red"), (f"{reason}{message}", "")])
    elif decision.message:
        lines.append([("    note: ", "dim"), (mask_text(decision.message), "")])
    lines += [[(text, "dim")] for text in _provenance(decision, base_dir)]
    return lines


def decision_text(decision: Decision, *, base_dir: Path | None = None) -> str:
    """One decision's block of the text plan (header, changes, reason, rules), masked as the
    plan is: the web console shows decisions exactly as ``custsync plan`` explains them."""
    return "\n".join(
        terminal_safe("".join(text for text, _ in line)) for line in _block(decision, base_dir)
    )


def _summary_line(summary: PlanSummary) -> Line:
    counts = summary.counts
    unchanged = counts["noop"]
    if not any(counts[key] for key in ("create", "update", "link", "skip")):
        tail = (
            f" {unchanged} record{'s' if unchanged != 1 else ''} already in sync."
            if unchanged
            else ""
        )
        return [("No changes.", "bold green"), (tail, "")]
    text = (
        f"Plan: {counts['create']} to create, {counts['update']} to update, "
        f"{counts['link']} to link, {counts['skip']} skipped"
    )
    text += f" ({unchanged} unchanged)." if unchanged else "."
    return [(text, "bold")]


#: a decision's text block, keyed by what its group header shows: (direction, shop)
Block = tuple[tuple[Direction, str], list[Line]]


def decision_block(decision: Decision, base_dir: str | Path | None = None) -> Block | None:
    """The text block of one decision (None for a no-op: the text plan does not show them)."""
    if decision.action is Action.NOOP:
        return None
    base = Path(base_dir) if base_dir is not None else None
    return (decision.direction, decision.shop), _block(decision, base)


def _plan_lines(plan: Plan, blocks: Iterable[Block]) -> Iterator[Line]:
    """The text plan line by line; ``blocks`` are the shown decisions' blocks in plan order
    (streamed: only the summary counts of ``plan`` are needed, not its decisions)."""
    summary = plan.summary
    directions = ", ".join(direction.value for direction in plan.directions) or "nothing"
    shops = ", ".join(plan.shops) or "(none)"
    yield [
        (
            f"custsync plan: shop{'s' if len(plan.shops) != 1 else ''} {shops}; {directions}",
            "bold",
        )
    ]
    in_use = [action for action in _LEGEND if summary.counts[action.value]]
    if in_use:
        legend: Line = [("Symbols:", "")]
        for action in in_use:
            legend += [
                ("  ", ""),
                (action.symbol, f"bold {_SYMBOL_STYLE[action]}"),
                (f" {_LEGEND[action]}", ""),
            ]
        yield []
        yield legend
    group: tuple[Direction, str] | None = None
    for (direction, shop), block in blocks:
        if (direction, shop) != group:
            group = (direction, shop)
            yield []
            yield [(f"# shop {shop}: {_DIRECTION_TITLE[direction]}", "bold")]
        yield []
        yield from block
    if plan.warnings:
        yield []
        yield [("Warnings:", "bold yellow")]
        for warning in plan.warnings:
            where = f"{warning.location}: " if warning.location else ""
            shop = f"shop {warning.shop}: " if warning.shop else ""
            yield [("  ! ", "yellow"), (f"{where}{shop}{mask_text(warning.message)}", "")]
    yield []
    yield _summary_line(summary)


def _own_blocks(plan: Plan, base_dir: str | Path | None) -> Iterator[Block]:
    for decision in plan.decisions:
        block = decision_block(decision, base_dir)
        if block is not None:
            yield block


def render_text(plan: Plan, *, base_dir: str | Path | None = None) -> str:
    """The plain text plan. ``base_dir``: rule files under it are shown relative to it."""
    out = io.StringIO()
    write_text(plan, _own_blocks(plan, base_dir), out)
    return out.getvalue()


def write_text(plan: Plan, blocks: Iterable[Block], stream: IO[str]) -> None:
    """Write the plain text plan line by line (see :func:`_plan_lines`)."""
    for line in _plan_lines(plan, blocks):
        stream.write(terminal_safe("".join(text for text, _ in line)))
        stream.write("\n")


def _rich_line(line: Line) -> Any:
    from rich.text import Text

    text = Text()
    for segment, style in line:
        text.append(terminal_safe(segment), style=style or None)
    text.append("\n")
    return text


def render_rich(plan: Plan, *, base_dir: str | Path | None = None) -> Any:
    """The text plan as a ``rich.text.Text`` with styles (for a terminal)."""
    from rich.text import Text

    text = Text()
    for line in _plan_lines(plan, _own_blocks(plan, base_dir)):
        text.append_text(_rich_line(line))
    return text


def render_json(plan: Plan) -> str:
    """The JSON plan (full values; ``format_version`` first)."""
    return plan_to_json(plan)


def print_plan(
    plan: Plan, stream: IO[str], *, output: str = "text", base_dir: str | Path | None = None
) -> None:
    """Write the plan to ``stream``: colours only when it is a terminal and NO_COLOR unset."""
    if output == "json":
        stream.write(render_json(plan))
        return
    stream_text(plan, _own_blocks(plan, base_dir), stream)


def stream_text(plan: Plan, blocks: Iterable[Block], stream: IO[str]) -> None:
    """The text plan to ``stream`` as the blocks come: styled on a terminal (rich), plain
    otherwise or when ``NO_COLOR`` is set."""
    isatty = getattr(stream, "isatty", None)
    if not (callable(isatty) and isatty()) or os.environ.get("NO_COLOR", ""):
        write_text(plan, blocks, stream)
        return
    from rich.console import Console

    console = Console(file=stream, highlight=False, soft_wrap=True, emoji=False, markup=False)
    for line in _plan_lines(plan, blocks):
        console.print(_rich_line(line), end="")
