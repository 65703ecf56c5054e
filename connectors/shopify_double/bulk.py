"""Bulk operations: staged uploads, bulk query export and bulk mutation import, with result
files the double serves itself.

Lifecycle as captured from Shopify: ``CREATED`` on start, ``RUNNING`` while it works (after
``bulk_seconds / 2``), ``COMPLETED`` after ``bulk_seconds`` with ``objectCount``,
``rootObjectCount`` and ``fileSize`` as strings and ``url`` pointing at ``/bulk/<n>.jsonl``
(``null`` when there were no objects). Query results are one JSON object per line; children
of nested connections are their own lines with ``__parentId``. Mutation results are one line
per input line, ``{"data": ..., "__lineNumber": i}``. Like Shopify, ``/`` is written ``\\/``.

A job starts working after ``bulk_seconds`` and then runs in slices of at most
:data:`SLICE_SECONDS` under the store lock, with pauses between them, so other requests
(status polls above all) are answered while a 10,000-line mutation runs, as Shopify does.
A job is ``COMPLETED`` once all of it is done, so big jobs take longer than ``bulk_seconds``.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import graphql
from graphql import FieldNode, OperationDefinitionNode, OperationType

from . import api
from .store import Store, gid_number, iso

MAX_QUERY_BYTES = 65535
MAX_UPLOAD_BYTES = 104_857_600
MAX_CONCURRENT = 5  # per type, as API 2026-04 and later allow
BULK_GID = "gid://shopify/BulkOperation/"
STAGED_PREFIX = "tmp/1/bulk/"
#: longest a running job holds the store lock at a time (a request arriving meanwhile waits
#: at most this long, like Shopify's answers of a few hundred ms); between slices it pauses
#: :data:`PAUSE_SECONDS` so the waiting requests get the lock
SLICE_SECONDS = 0.2
PAUSE_SECONDS = 0.002
#: a read that finds a job due finishes it on the spot when at most this many lines remain
#: (small jobs look exactly as before: complete at the first poll after ``bulk_seconds``)
FINISH_ON_READ_LINES = 100
#: root records an export gives in its first slice (later slices are sized by the time the
#: previous one took, to last about SLICE_SECONDS)
EXPORT_FIRST_SLICE = 250

_NO_SUCH_FILE = (
    "The JSONL file could not be found. Try uploading the file again, and check that you've "
    "entered the URL correctly for the stagedUploadPath mutation argument."
)


def _jsonl(records: Sequence[Mapping[str, Any]]) -> bytes:
    lines = [json.dumps(r, ensure_ascii=False, separators=(",", ":")).replace("/", "\\/")
             for r in records]
    return ("".join(line + "\n" for line in lines)).encode("utf-8")


def _error(message: str, code: str, field: list[str] | None = None) -> dict[str, Any]:
    return {"field": field, "message": message, "code": code}


class BulkManager:
    def __init__(
        self,
        store: Store,
        base_url: Callable[[], str],
        *,
        bulk_seconds: float = 0.3,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self._base_url = base_url
        self.bulk_seconds = bulk_seconds
        self._monotonic = monotonic
        self._ids = itertools.count(1)
        self._lock = store.lock  # one lock for store and bulk: no lock-order deadlocks
        self._ops: dict[int, dict[str, Any]] = {}
        self._jobs: dict[int, dict[str, Any]] = {}  # internal state per op
        self._closed = False  # stopping: no more background work
        self.uploads: dict[str, bytes] = {}
        self.results: dict[int, bytes] = {}

    # ------------------------------------------------------------------ reads

    def _advance(self, number: int) -> None:
        """Move an operation along its lifecycle according to the time passed (on reads)."""
        op, job = self._ops[number], self._jobs[number]
        if op["status"] not in ("CREATED", "RUNNING"):
            return
        elapsed = self._monotonic() - job["started"]
        if elapsed >= self.bulk_seconds:
            if self._remaining(job) <= FINISH_ON_READ_LINES:
                self._work(number, None)
            else:  # a big job: its worker runs it in slices; make sure there is one
                op["status"] = "RUNNING"
                self._ensure_worker(number)
        elif elapsed >= self.bulk_seconds / 2:
            op["status"] = "RUNNING"

    def get(self, gid: str) -> dict[str, Any] | None:
        with self._lock:
            number = gid_number(gid)
            if number is None or number not in self._ops or not gid.startswith(BULK_GID):
                return None
            self._advance(number)
            return dict(self._ops[number])

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            for number in self._ops:
                self._advance(number)
            return [dict(op) for op in self._ops.values()]

    def current(self, type_: str) -> dict[str, Any] | None:
        with self._lock:
            mine = [n for n, op in self._ops.items() if op["type"] == type_]
            if not mine:
                return None
            self._advance(mine[-1])
            return dict(self._ops[mine[-1]])

    def finish_all(self) -> None:
        """Complete every pending operation now (used on shutdown and by tests)."""
        with self._lock:
            for number in list(self._ops):
                if self._ops[number]["status"] in ("CREATED", "RUNNING"):
                    self._work(number, None)

    def _running(self, type_: str) -> list[str]:
        for number in self._ops:
            self._advance(number)
        return [op["id"] for op in self._ops.values()
                if op["type"] == type_ and op["status"] in ("CREATED", "RUNNING")]

    def _new(self, type_: str, query: str, job: dict[str, Any]) -> dict[str, Any]:
        number = next(self._ids)
        op = {
            "id": f"{BULK_GID}{number}",
            "type": type_,
            "status": "CREATED",
            "errorCode": None,
            "createdAt": iso(self.store.now()),
            "completedAt": None,
            "objectCount": "0",
            "rootObjectCount": "0",
            "fileSize": None,
            "url": None,
            "partialDataUrl": None,
            "query": query,
        }
        job["started"] = self._monotonic()
        # results so far: JSONL chunks (encoded slice by slice) and their object count
        job.update(next_line=0, line_number=0, chunks=[], objects=0, roots=0)
        self._ops[number] = op
        self._jobs[number] = job
        if self.bulk_seconds <= 0:
            self._work(number, None)
            op = self._ops[number]
        else:
            timer = threading.Timer(self.bulk_seconds, self._run_slices, args=(number,))
            timer.daemon = True
            job["timer"] = timer
            timer.start()
        return dict(op) | {"status": "CREATED"}

    def _ensure_worker(self, number: int) -> None:
        """Start a worker for a due job whose timer has not fired (yet)."""
        job = self._jobs[number]
        timer = job.get("timer")
        if job.get("worker") or self._closed or (timer is not None and timer.is_alive()):
            return
        job["worker"] = True
        threading.Thread(target=self._run_slices, args=(number,), name=f"bulk-{number}",
                         daemon=True).start()

    def _run_slices(self, number: int) -> None:
        """A job's worker: a slice of work under the lock, a pause to let requests in, ..."""
        with self._lock:
            job = self._jobs[number]
            if job.get("working"):
                return  # the timer and a read-started worker both came
            job["working"] = True
        while not self._closed:
            with self._lock:
                if not self._work(number, SLICE_SECONDS):
                    return
            time.sleep(PAUSE_SECONDS)

    def cancel_timers(self) -> None:
        """Stop starting or continuing work in the background (the double is stopping)."""
        with self._lock:
            self._closed = True
            for job in self._jobs.values():
                timer = job.get("timer")
                if timer is not None:
                    timer.cancel()

    def _remaining(self, job: Mapping[str, Any]) -> int:
        """Lines of a mutation job still to run; for an export, at most the customers."""
        if "lines" not in job:
            return 0 if job.get("exported") else self.store.count()
        return len(job["lines"]) - int(job["next_line"])

    def _work(self, number: int, budget: float | None) -> bool:
        """Work on a job for about ``budget`` seconds (``None``: to the end), under the lock;
        it completes when nothing remains. True while work remains."""
        op, job = self._ops[number], self._jobs[number]
        if op["status"] not in ("CREATED", "RUNNING"):
            return False
        op["status"] = "RUNNING"
        deadline = None if budget is None else time.perf_counter() + budget
        if op["type"] == "QUERY":
            self._export(job, deadline)
        else:
            self._import(job, deadline)
        if self._remaining(job):
            return True
        self._complete(number)
        return False

    def _complete(self, number: int) -> None:
        op, job = self._ops[number], self._jobs[number]
        objects, roots = job["objects"], job["roots"]
        data = b"".join(job.pop("chunks"))
        for done_with in ("lines", "document", "window"):
            job.pop(done_with, None)
        op["objectCount"] = str(objects)
        op["rootObjectCount"] = str(roots)
        op["status"] = "COMPLETED"
        op["completedAt"] = iso(self.store.now())
        if objects:
            self.results[number] = data
            op["fileSize"] = str(len(data))
            op["url"] = f"{self._base_url()}/bulk/{number}.jsonl"
        timer = job.pop("timer", None)
        if timer is not None:
            timer.cancel()

    # ------------------------------------------------------------------ bulk query

    def run_query(self, query: str) -> dict[str, Any]:
        def fail(message: str, code: str = "INVALID") -> dict[str, Any]:
            return {"bulkOperation": None, "userErrors": [_error(message, code, ["query"])]}

        size = len(query.encode("utf-8"))
        if size > MAX_QUERY_BYTES:
            return fail(f"Query is too large ({size} bytes; maximum is {MAX_QUERY_BYTES} bytes)")
        try:
            document = graphql.parse(query)
        except graphql.GraphQLError as exc:
            return fail(f"Invalid bulk query: {exc.message}")
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if len(operations) != 1 or operations[0].operation != OperationType.QUERY:
            return fail("Invalid operation type. Only `query` operations are supported.")
        problems = graphql.validate(api.schema(), document)
        if problems:
            return fail(f"Invalid bulk query: {problems[0].message}")
        operation = operations[0]
        roots = [s for s in operation.selection_set.selections if isinstance(s, FieldNode)]
        if any(f.name.value == "node" for f in roots):
            return fail("Bulk queries cannot contain a top level `node` field.")
        connections: list[tuple[FieldNode, int]] = []
        problem = _connections(operation.selection_set.selections, api.schema().query_type,
                               0, connections)
        if problem:
            return fail(problem)
        if not connections:
            return fail("Bulk queries must contain at least one connection.")
        if len(connections) > 5:
            return fail("Bulk queries cannot contain more than 5 connections.")
        if max(depth for _, depth in connections) > 2:
            return fail("Bulk queries cannot contain connections with a nesting depth greater "
                        "than 2.")
        with self._lock:
            running = self._running("QUERY")
            if len(running) >= MAX_CONCURRENT:
                return fail("A bulk query operation for this app and shop is already in "
                            f"progress: {', '.join(running)}.", "OPERATION_IN_PROGRESS")
            op = self._new("QUERY", query, {"document": document})
        return {"bulkOperation": op, "userErrors": []}

    def _export(self, job: dict[str, Any], deadline: float | None) -> None:
        """Export the next windows of the job's root connections (see :class:`api.ExportWindow`)
        until ``deadline`` (``perf_counter``) or the end; results are kept in ``job``."""
        window: api.ExportWindow = job.setdefault(
            "window", api.ExportWindow(limit=EXPORT_FIRST_SLICE))
        while not job.get("exported"):
            if deadline is None:
                window.limit = 1 << 62  # the rest in one go
            started = time.perf_counter()
            ctx = api.Context(store=self.store, bulk=None, unpaged=True, window=window)
            with self.store.lock:
                result = api.execute(job["document"], {}, None, ctx)
            records: list[dict[str, Any]] = []
            for value in (result.data or {}).values():
                for node in _connection_nodes(value):
                    job["roots"] += 1
                    _flatten(node, None, records)
            self._keep(job, records)
            job["exported"] = window.finished
            if deadline is not None:
                # one window per slice, the next one sized to take about SLICE_SECONDS
                took = max(time.perf_counter() - started, 1e-3)
                window.limit = max(10, min(5000, int(window.limit * SLICE_SECONDS / took)))
                break

    @staticmethod
    def _keep(job: dict[str, Any], records: list[dict[str, Any]]) -> None:
        """Add a slice's result records to the job's result file."""
        if records:
            job["chunks"].append(_jsonl(records))
            job["objects"] += len(records)

    # ------------------------------------------------------------------ bulk mutation

    def staged_uploads(self, inputs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        targets: list[dict[str, Any]] = []
        base = self._base_url()
        for item in inputs:
            key = f"{STAGED_PREFIX}{uuid.uuid4()}/{item['filename']}"
            if (item.get("httpMethod") or "PUT") == "PUT":
                targets.append({"url": f"{base}/staged-uploads/{key}", "resourceUrl":
                                f"{base}/staged-uploads/{key}", "parameters": []})
                continue
            parameters = [
                ("Content-Type", item.get("mimeType") or "text/jsonl"),
                ("success_action_status", "201"),
                ("acl", "private"),
                ("key", key),
                ("x-goog-date", "20260101T000000Z"),
                ("x-goog-credential", "custsync-double/20260101/auto/storage/goog4_request"),
                ("x-goog-algorithm", "GOOG4-RSA-SHA256"),
                ("x-goog-signature", "double"),
                ("policy", "double"),
            ]
            targets.append({
                "url": f"{base}/staged-uploads/",
                "resourceUrl": f"{base}/staged-uploads/",
                "parameters": [{"name": n, "value": v} for n, v in parameters],
            })
        return {"stagedTargets": targets, "userErrors": []}

    def receive_upload(self, key: str, data: bytes) -> None:
        with self._lock:
            self.uploads[key] = data

    def run_mutation(self, mutation: str, staged_upload_path: str) -> dict[str, Any]:
        def fail(message: str, code: str, field: list[str] | None = None) -> dict[str, Any]:
            return {"bulkOperation": None, "userErrors": [_error(message, code, field)]}

        with self._lock:
            data = self.uploads.get(staged_upload_path.lstrip("/"))
        if data is None:
            return fail(_NO_SUCH_FILE, "NO_SUCH_FILE")
        if not data.strip():
            return fail("The input file is empty.", "INVALID_STAGED_UPLOAD_FILE")
        if len(data) > MAX_UPLOAD_BYTES:
            return fail("The file is too large.", "INVALID_STAGED_UPLOAD_FILE")
        size = len(mutation.encode("utf-8"))
        if size > MAX_QUERY_BYTES:
            return fail(f"Mutation is too large ({size} bytes; maximum is {MAX_QUERY_BYTES} "
                        "bytes)", "INVALID_MUTATION", ["mutation"])
        try:
            document = graphql.parse(mutation)
        except graphql.GraphQLError as exc:
            return fail(f"Failed to parse the mutation - {exc.message}", "INVALID_MUTATION",
                        ["mutation"])
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if len(operations) != 1 or operations[0].operation != OperationType.MUTATION:
            return fail("Invalid mutation - only mutations are supported.", "INVALID_MUTATION",
                        ["mutation"])
        roots = [s for s in operations[0].selection_set.selections if isinstance(s, FieldNode)]
        if len(roots) != 1:
            return fail("Invalid mutation - only one top-level mutation field is supported.",
                        "INVALID_MUTATION", ["mutation"])
        if roots[0].name.value.startswith(("bulkOperation", "stagedUploads")):
            return fail(f"You must use an allowed mutation name. {roots[0].name.value} is not "
                        "allowed.", "INVALID_MUTATION", ["mutation"])
        problems = graphql.validate(api.schema(), document)
        if problems:
            return fail(f"Invalid mutation - {problems[0].message}", "INVALID_MUTATION",
                        ["mutation"])
        lines = data.decode("utf-8", errors="replace").splitlines()
        with self._lock:
            running = self._running("MUTATION")
            if len(running) >= MAX_CONCURRENT:
                return fail("A bulk mutation operation for this app and shop is already in "
                            f"progress: {', '.join(running)}.", "OPERATION_IN_PROGRESS")
            op = self._new("MUTATION", mutation, {"document": document, "lines": lines})
        return {"bulkOperation": op, "userErrors": []}

    def _import(self, job: dict[str, Any], deadline: float | None) -> None:
        """Run the mutation for the job's next lines, until ``deadline`` (``perf_counter``) or
        the end; result records and counters are kept in ``job``."""
        document: graphql.DocumentNode = job["document"]
        lines: list[str] = job["lines"]
        records: list[dict[str, Any]] = []
        number: int = job["line_number"]
        index: int = job["next_line"]
        while index < len(lines):
            if deadline is not None and time.perf_counter() >= deadline:
                break
            line = lines[index]
            index += 1
            if not line.strip():
                continue
            try:
                variables = json.loads(line)
                if not isinstance(variables, dict):
                    raise ValueError("a line must be a JSON object")
            except ValueError as exc:
                records.append({"errors": [{"message": f"Invalid JSON on line {number + 1}: "
                                            f"{exc}"}], "__lineNumber": number})
                number += 1
                continue
            ctx = api.Context(store=self.store, bulk=None)
            with self.store.lock:
                result = api.execute(document, variables, None, ctx)
            record: dict[str, Any] = {}
            if result.errors:
                record["errors"] = [e.formatted for e in result.errors]
            record["data"] = result.data
            record["__lineNumber"] = number
            records.append(record)
            number += 1
        job["next_line"], job["line_number"], job["roots"] = index, number, number
        self._keep(job, records)

    # ------------------------------------------------------------------ cancel

    def cancel(self, gid: str) -> dict[str, Any]:
        with self._lock:
            number = gid_number(gid)
            if number is None or number not in self._ops:
                return {"bulkOperation": None, "userErrors": [
                    {"field": ["id"], "message": "Bulk operation does not exist"}]}
            self._advance(number)
            op = self._ops[number]
            if op["status"] not in ("CREATED", "RUNNING"):
                return {"bulkOperation": dict(op), "userErrors": [{
                    "field": None,
                    "message": f"A bulk operation cannot be canceled when it is "
                               f"{op['status'].lower()}"}]}
            timer = self._jobs[number].pop("timer", None)
            if timer is not None:
                timer.cancel()
            op["status"] = "CANCELED"
            op["completedAt"] = iso(self.store.now())
            return {"bulkOperation": dict(op) | {"status": "CANCELING"}, "userErrors": []}


def _connections(selections: Any, parent_type: Any, depth: int,
                 out: list[tuple[FieldNode, int]]) -> str | None:
    """Collect connection fields with their nesting depth; a problem message if invalid."""
    for selection in selections:
        if not isinstance(selection, FieldNode) or parent_type is None:
            continue
        definition = parent_type.fields.get(selection.name.value)
        if definition is None:
            continue
        named = graphql.get_named_type(definition.type)
        if named.name.endswith("Connection"):
            sub = {s.name.value: s for s in (selection.selection_set.selections
                                              if selection.selection_set else ())
                   if isinstance(s, FieldNode)}
            if "nodes" in sub or "edges" not in sub:
                return ("All connection fields in a bulk query must select their contents using "
                        f"'edges' > 'node', e.g: '{selection.name.value} {{ edges {{ node {{'. "
                        "Selecting via 'nodes' is not supported. Invalid connection fields: "
                        f"'{selection.name.value}'.")
            out.append((selection, depth + 1))
            edge = sub["edges"]
            node = next((s for s in (edge.selection_set.selections if edge.selection_set else ())
                         if isinstance(s, FieldNode) and s.name.value == "node"), None)
            node_type = graphql.get_named_type(named.fields["nodes"].type)
            if node is not None and node.selection_set is not None:
                inner: list[tuple[FieldNode, int]] = []
                problem = _connections(node.selection_set.selections, node_type, depth + 1,
                                       inner)
                if problem:
                    return problem
                if inner and not any(isinstance(s, FieldNode) and s.name.value == "id"
                                     and s.alias is None for s in node.selection_set.selections):
                    return ("The parent 'node' field for a nested connection must select the "
                            "'id' field without an alias and must be of 'ID' return type. "
                            f"Connection fields without 'id': {selection.name.value}.")
                out.extend(inner)
        elif selection.selection_set is not None and hasattr(named, "fields"):
            problem = _connections(selection.selection_set.selections, named, depth, out)
            if problem:
                return problem
    return None


def _connection_nodes(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, Mapping) and isinstance(value.get("edges"), list):
        return [e["node"] for e in value["edges"] if isinstance(e, Mapping) and "node" in e]
    return []


def _flatten(node: Mapping[str, Any], parent_id: str | None,
             records: list[dict[str, Any]]) -> None:
    """One JSONL line for ``node``; nested connections become lines with ``__parentId``."""
    line: dict[str, Any] = {}
    children: list[Mapping[str, Any]] = []
    for key, value in node.items():
        nested = _connection_nodes(value)
        if isinstance(value, Mapping) and "edges" in value:
            children.extend(nested)
            continue
        line[key] = value
    if parent_id is not None:
        line["__parentId"] = parent_id
    records.append(line)
    for child in children:
        _flatten(child, node.get("id"), records)
