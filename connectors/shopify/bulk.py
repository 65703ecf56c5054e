"""Bulk operations: large reads and writes as server-side jobs with JSONL files.

Query (full import of a large store): ``bulkOperationRunQuery`` -> poll ``bulkOperation(id)``
until ``COMPLETED`` -> download the JSONL result to a temporary file -> read it. Nested
connections come as separate lines carrying ``__parentId``; Shopify only promises that a
child comes *after* its parent, so the file is read **backwards**: children are met first and
held until their parent line arrives, then the parent is emitted with its children. Memory
holds only children whose parent has not been reached yet (a handful in practice), never the
whole file.

Mutation (large export): ``stagedUploadsCreate`` -> multipart POST of the JSONL variables file
(no access token: it goes to storage) -> ``bulkOperationRunMutation`` -> poll -> read the
result file, whose lines carry ``__lineNumber`` (0-based line of the input file) so every
result maps back to its input.

A few dozen requests move tens of thousands of customers.
"""

from __future__ import annotations

import json
import logging
import os
import random
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urljoin

import httpx
from custsync.engine.errors import FatalError, RetriableError
from custsync.engine.ports import ReadProgress

from . import documents as docs
from .client import GraphQLClient, OutcomeUnknown

log = logging.getLogger("custsync.shopify")

_TERMINAL = {"COMPLETED", "FAILED", "CANCELED", "CANCELLED", "EXPIRED"}
#: Shopify's staged-upload limit is 100 MB; stay well below it.
MAX_UPLOAD_BYTES = 90 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class BulkOperation:
    id: str
    status: str
    error_code: str | None = None
    url: str | None = None
    partial_data_url: str | None = None
    object_count: int = 0
    query: str = ""

    @classmethod
    def from_node(cls, node: Mapping[str, Any]) -> BulkOperation:
        try:
            count = int(node.get("objectCount") or 0)
        except (TypeError, ValueError):
            count = 0
        return cls(
            id=str(node["id"]),
            status=str(node.get("status") or ""),
            error_code=node.get("errorCode"),
            url=node.get("url"),
            partial_data_url=node.get("partialDataUrl"),
            object_count=count,
            query=str(node.get("query") or ""),
        )


@dataclass(frozen=True, slots=True)
class LineResult:
    """One input line's outcome in a bulk mutation.

    ``data`` is the line's GraphQL ``data``; ``error`` a message when the line failed as a
    whole; ``missing`` True when the result file has no line for it (outcome unknown).
    """

    line: int
    data: dict[str, Any] | None
    error: str = ""
    missing: bool = False


@dataclass(frozen=True, slots=True)
class BulkSettings:
    poll_interval: float = 1.0  # first poll delay; doubles up to max_poll_interval
    max_poll_interval: float = 10.0
    timeout: float = 6 * 3600.0  # give up waiting for a bulk operation after this long
    upload_attempts: int = 4


class BulkRunner:
    """Runs bulk queries and mutations through a :class:`GraphQLClient`."""

    def __init__(self, client: GraphQLClient, settings: BulkSettings | None = None) -> None:
        self.client = client
        self.settings = settings or BulkSettings()
        self.rng = random.Random()

    # -- queries -----------------------------------------------------------------------------

    def run_query(
        self, query: str, *, watch: Callable[[ReadProgress], None] | None = None
    ) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """Run a bulk query; yield each root object with its child lines (reverse order).

        ``watch`` is told the job's object count at every status poll (``bulk export``),
        then the lines of the result file downloaded so far (``bulk result download``)."""
        operation = self._start(docs.BULK_RUN_QUERY, {"query": query}, "QUERY", query)

        def polled(job: BulkOperation) -> None:
            if watch is not None:
                watch(ReadProgress("bulk export", job.object_count, "objects", note=job.status))

        operation = self._wait(operation, polled)
        if operation.status != "COMPLETED":
            raise self._failure(operation)
        if not operation.url:  # no objects matched
            return
        total = operation.object_count or None

        def downloaded(lines: int) -> None:
            if watch is not None:
                watch(ReadProgress("bulk result download", lines, "lines", total))

        with _TempDownload(self, self._absolute(operation.url), downloaded) as path:
            yield from _group_reversed(path)

    # -- mutations ---------------------------------------------------------------------------

    def run_mutation(
        self,
        mutation: str,
        variables: Iterable[Mapping[str, Any]],
        on_started: Callable[[str], None] | None = None,
    ) -> Iterator[LineResult]:
        """Run ``mutation`` once per variables dict; one :class:`LineResult` per line.

        Line numbers are 0-based positions in ``variables``. ``on_started`` is called with
        the operation id as soon as the job runs at Shopify (before waiting for it), so a
        caller can journal it and read the result back after a crash
        (:meth:`mutation_results`).
        """
        with tempfile.TemporaryDirectory(prefix="custsync-bulk-") as tmp:
            path = Path(tmp) / "variables.jsonl"
            count = _write_jsonl(path, variables)
            if count == 0:
                return
            if path.stat().st_size > MAX_UPLOAD_BYTES:
                raise FatalError(
                    f"bulk export file is {path.stat().st_size} bytes, over Shopify's limit; "
                    "export in smaller batches"
                )
            staged_path = self._upload(path)
            operation = self._start(
                docs.BULK_RUN_MUTATION,
                {"mutation": mutation, "stagedUploadPath": staged_path},
                "MUTATION",
                mutation,
            )
        if on_started is not None:
            on_started(operation.id)
        yield from self.mutation_results(operation, count)

    def mutation_results(self, operation: BulkOperation | str, count: int) -> Iterator[LineResult]:
        """Wait for a bulk mutation of ``count`` input lines (an operation or its id) and
        yield one :class:`LineResult` per line: the result file's, then ``missing`` ones for
        lines it has no result for (the job failed or was canceled part way)."""
        if isinstance(operation, str):
            operation = self.operation(operation)
        operation = self._wait(operation)
        seen: set[int] = set()
        url = operation.url or operation.partial_data_url
        if url:
            with self._download(url) as result_path:
                for result in _read_mutation_results(result_path):
                    if 0 <= result.line < count and result.line not in seen:
                        seen.add(result.line)
                        yield result
        if len(seen) < count:
            reason = (
                "no result from the bulk operation"
                if operation.status == "COMPLETED"
                else f"bulk operation {operation.status.lower()}"
                + (f" ({operation.error_code})" if operation.error_code else "")
            )
            for number in range(count):
                if number not in seen:
                    yield LineResult(number, None, reason, missing=True)

    def operation(self, operation_id: str) -> BulkOperation:
        """The bulk operation ``operation_id`` as Shopify reports it now."""
        data = self.client.execute(docs.BULK_OPERATION_BY_ID, {"id": operation_id}).data
        node = data.get("bulkOperation")
        if not isinstance(node, Mapping):
            raise FatalError(f"bulk operation {operation_id} disappeared")
        return BulkOperation.from_node(node)

    # -- steps -------------------------------------------------------------------------------

    def _current(self, kind: str) -> BulkOperation | None:
        data = self.client.execute(docs.CURRENT_BULK_OPERATION, {"type": kind}).data
        node = data.get("currentBulkOperation")
        return BulkOperation.from_node(node) if isinstance(node, Mapping) else None

    def _start(
        self, document: str, variables: Mapping[str, Any], kind: str, inner: str
    ) -> BulkOperation:
        """Start a bulk operation exactly once, adopting it when the answer was lost."""
        before = self._current(kind)
        root = "bulkOperationRunQuery" if kind == "QUERY" else "bulkOperationRunMutation"
        for _attempt in range(self.client.retry.max_attempts):
            try:
                data = self.client.execute(document, variables).data
            except OutcomeUnknown as exc:
                log.warning("Shopify %s: %s; checking whether it started", root, exc.message)
                self.client.sleep(self.client.retry.base_delay)
                try:
                    current = self._current(kind)
                except RetriableError:
                    continue
                if (
                    current
                    and current.query == inner
                    and (before is None or current.id != before.id)
                ):
                    log.info("Shopify %s: adopting %s started before the loss", root, current.id)
                    return current
                continue
            payload = data.get(root) or {}
            errors = payload.get("userErrors") or []
            if errors:
                codes = {e.get("code") for e in errors if isinstance(e, Mapping)}
                text = "; ".join(str(e.get("message")) for e in errors if isinstance(e, Mapping))
                if "OPERATION_IN_PROGRESS" in codes:
                    raise RetriableError(
                        f"Shopify {root}: another bulk operation is running ({text}); "
                        "try again when it has finished"
                    )
                raise FatalError(f"Shopify {root} refused: {text}")
            node = payload.get("bulkOperation")
            if not isinstance(node, Mapping):
                raise FatalError(f"Shopify {root}: no bulk operation in the answer")
            operation = BulkOperation.from_node(node)
            log.info("Shopify %s: started %s", root, operation.id)
            return operation
        raise RetriableError(f"Shopify {root}: could not start the bulk operation")

    def _wait(
        self, operation: BulkOperation, polled: Callable[[BulkOperation], None] | None = None
    ) -> BulkOperation:
        """Poll until the job ends; ``polled`` sees the job as started and after every poll."""
        delay = self.settings.poll_interval
        waited = 0.0
        if polled is not None:
            polled(operation)
        while operation.status not in _TERMINAL:
            if waited >= self.settings.timeout:
                raise RetriableError(
                    f"bulk operation {operation.id} still {operation.status} after "
                    f"{waited:.0f}s; it keeps running at Shopify"
                )
            self.client.sleep(delay)
            waited += delay
            delay = min(delay * 2, self.settings.max_poll_interval)
            try:
                data = self.client.execute(docs.BULK_OPERATION_BY_ID, {"id": operation.id}).data
            except RetriableError as exc:
                # the job runs on at Shopify: a failed status poll is no reason to give up
                log.warning(
                    "bulk operation %s: status poll failed (%s); polling on",
                    operation.id,
                    exc.message,
                )
                continue
            node = data.get("bulkOperation")
            if not isinstance(node, Mapping):
                raise FatalError(f"bulk operation {operation.id} disappeared")
            operation = BulkOperation.from_node(node)
            if polled is not None:
                polled(operation)
            log.debug(
                "bulk operation %s: %s (%d objects)",
                operation.id,
                operation.status,
                operation.object_count,
            )
        log.info(
            "bulk operation %s: %s, %d objects",
            operation.id,
            operation.status,
            operation.object_count,
        )
        return operation

    def _failure(self, operation: BulkOperation) -> Exception:
        text = f"bulk operation {operation.id} {operation.status.lower()}"
        if operation.error_code:
            text += f" ({operation.error_code})"
        if operation.error_code in ("INTERNAL_SERVER_ERROR", "TIMEOUT"):
            return RetriableError(text)
        return FatalError(text)

    def _absolute(self, url: str) -> str:
        return urljoin(self.client.endpoint.base_url + "/", url)

    def _upload(self, path: Path) -> str:
        """Stage ``path`` for a bulk mutation; returns the ``stagedUploadPath``."""
        variables = {
            "input": [
                {
                    "resource": "BULK_MUTATION_VARIABLES",
                    "filename": path.name,
                    "mimeType": "text/jsonl",
                    "httpMethod": "POST",
                }
            ]
        }
        data = self.client.execute(docs.STAGED_UPLOADS_CREATE, variables).data
        payload = data.get("stagedUploadsCreate") or {}
        if payload.get("userErrors"):
            text = "; ".join(str(e.get("message")) for e in payload["userErrors"])
            raise FatalError(f"Shopify stagedUploadsCreate refused: {text}")
        targets = payload.get("stagedTargets") or []
        if not targets or not isinstance(targets[0], Mapping) or not targets[0].get("url"):
            raise FatalError("Shopify stagedUploadsCreate returned no upload target")
        target = targets[0]
        fields = {
            str(p["name"]): str(p["value"])
            for p in target.get("parameters") or []
            if isinstance(p, Mapping)
        }
        key = fields.get("key")
        if not key:
            raise FatalError("Shopify staged upload target has no 'key' parameter")
        url = self._absolute(str(target["url"]))
        for attempt in range(1, self.settings.upload_attempts + 1):
            self.client.count("http_other")
            try:
                with path.open("rb") as handle:
                    response = self.client.storage.post(
                        url, data=fields, files={"file": (path.name, handle, "text/jsonl")}
                    )
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}"
            else:
                if response.status_code in (200, 201, 204):
                    return key
                if response.status_code < 500 and response.status_code != 429:
                    raise FatalError(
                        f"staged upload refused: HTTP {response.status_code} "
                        f"{response.text[:200].strip()}"
                    )
                problem = f"HTTP {response.status_code}"
            delay = self.client.retry.delay(attempt, self.rng)
            log.warning("staged upload failed (%s); retry in %.2fs", problem, delay)
            self.client.sleep(delay)
        raise RetriableError("staged upload failed repeatedly")

    def _download(self, url: str) -> _TempDownload:
        return _TempDownload(self, self._absolute(url))


class _TempDownload:
    """Context manager: download a result file to a temporary path, delete it afterwards.
    ``lines`` is told how many lines have come so far, after every chunk."""

    def __init__(
        self, runner: BulkRunner, url: str, lines: Callable[[int], None] | None = None
    ) -> None:
        self._runner = runner
        self._url = url
        self._path: Path | None = None
        self._lines = lines

    def __enter__(self) -> Path:
        fd, name = tempfile.mkstemp(prefix="custsync-bulk-", suffix=".jsonl")
        os.close(fd)
        self._path = Path(name)
        client = self._runner.client
        for attempt in range(1, self._runner.settings.upload_attempts + 1):
            client.count("http_other")
            try:
                with client.storage.stream("GET", self._url) as response:
                    if response.status_code == 200:
                        count = 0
                        with self._path.open("wb") as out:
                            for chunk in response.iter_bytes(1 << 16):
                                out.write(chunk)
                                if self._lines is not None:
                                    count += chunk.count(b"\n")
                                    self._lines(count)
                        return self._path
                    if response.status_code < 500 and response.status_code != 429:
                        raise FatalError(f"bulk result download: HTTP {response.status_code}")
                    problem = f"HTTP {response.status_code}"
            except httpx.TransportError as exc:
                problem = type(exc).__name__
            delay = client.retry.delay(attempt, self._runner.rng)
            log.warning("bulk result download failed (%s); retry in %.2fs", problem, delay)
            client.sleep(delay)
        self.__exit__(None, None, None)
        raise RetriableError("bulk result download failed repeatedly")

    def __exit__(self, *exc: object) -> None:
        if self._path is not None:
            self._path.unlink(missing_ok=True)
            self._path = None


# --------------------------------------------------------------------------------------------
# JSONL helpers
# --------------------------------------------------------------------------------------------


def _write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")))
            out.write("\n")
            count += 1
    return count


def reversed_lines(handle: IO[bytes], block: int = 1 << 16) -> Iterator[bytes]:
    """The lines of a binary file from last to first, reading fixed-size blocks."""
    handle.seek(0, os.SEEK_END)
    position = handle.tell()
    remainder = b""
    while position > 0:
        size = min(block, position)
        position -= size
        handle.seek(position)
        chunk = handle.read(size) + remainder
        lines = chunk.split(b"\n")
        remainder = lines[0]
        for line in reversed(lines[1:]):
            if line.strip():
                yield line
    if remainder.strip():
        yield remainder


def _group_reversed(path: Path) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Root objects of a bulk query result with their children (``__parentId``)."""
    pending: dict[str, list[dict[str, Any]]] = {}
    with path.open("rb") as handle:
        for raw in reversed_lines(handle):
            try:
                obj = json.loads(raw)
            except ValueError:
                log.warning("bulk result: skipped a line that is not JSON")
                continue
            if not isinstance(obj, dict):
                continue
            parent = obj.pop("__parentId", None)
            if parent:
                pending.setdefault(str(parent), []).append(obj)
                continue
            children = pending.pop(str(obj.get("id")), [])
            children.reverse()  # back to file order
            yield obj, children
    if pending:
        log.warning(
            "bulk result: %d child lines without a parent were ignored",
            sum(len(v) for v in pending.values()),
        )


def _read_mutation_results(path: Path) -> Iterator[LineResult]:
    with path.open("rb") as handle:
        for raw in handle:
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
                number = int(obj["__lineNumber"])
            except (ValueError, KeyError, TypeError):
                log.warning("bulk result: skipped an unreadable line")
                continue
            errors = obj.get("errors")
            if errors:
                text = "; ".join(
                    str(e.get("message")) if isinstance(e, Mapping) else str(e) for e in errors
                )
                yield LineResult(number, None, text)
            else:
                data = obj.get("data")
                yield LineResult(number, data if isinstance(data, dict) else None)
