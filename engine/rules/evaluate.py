"""Evaluate compiled decisions with durable-rules: facts in, fired rules out.

This is the only module that imports ``durable``. How it uses the library (design.md lists the
facts measured on durable-rules 2.0.28):

* One :class:`durable.engine.Host` per :class:`Evaluator`, with our rulesets registered from
  dicts; ``get_action`` hands out callables that only *record* the fired rule's name.
* The Host's background timer threads are not started (:meth:`_Host._run`): every action runs
  synchronously inside ``post``/``assert_fact`` in the calling thread, and no other thread
  touches the engine. A lock serialises callers; scale with processes, not threads.
* Fork-safe: a process forked from the one that built the evaluator (workers sharing a World
  copy-on-write) builds its own Host on its first engine call; the signature cache is kept.
* **choice** decisions post the record as an *event*: durable-rules consumes it with exactly one
  rule, the lowest ``pri`` (= our best rule). No rule -> ``MessageNotHandledException`` -> none.
* **collect** and **assign** decisions *assert* the record as a fact (every matching rule fires)
  and retract it right away, so nothing stays in the engine.
* All messages use one sid, far below the 1,024 live sids a ruleset supports, and carry only
  the facts the decision's conditions read (at most 240, below the 252-property limit).
* Empty values (``None``, ``""``) are dropped before posting: durable-rules counts them present.

Decisions depend only on the facts their conditions read, so results are memoised per
(decision, signature): the signature holds the value of every compared fact and only the
presence of presence-only facts. durable-rules still decides every distinct signature.
Decisions a caller always evaluates together can share one joint signature and one look-up
(:meth:`Evaluator.fired_together`).
:class:`EvalStats` counts engine calls, cache hits and time spent inside durable-rules.

Facts may be lazy (``enrich.Facts``): a mapping with a ``require(groups)`` method is asked for
the groups (fact name up to the first dot) a decision reads before they are looked at.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from durable import engine as _durable

from ..errors import FatalError
from .compile import DISCRIMINATOR, CompiledDecision, fact_key
from .rulefile import Rule

#: default number of memoised signatures per evaluator (all decisions together)
DEFAULT_CACHE_SIZE = 100_000


@dataclass(slots=True)
class EvalStats:
    """Counters for the benchmark: calls into durable-rules vs. memoised answers."""

    engine_calls: int = 0
    cache_hits: int = 0
    engine_seconds: float = 0.0

    @property
    def evaluations(self) -> int:
        return self.engine_calls + self.cache_hits


class _Host(_durable.Host):
    """A Host whose actions are looked up in our table and that starts no timer threads."""

    def __init__(self, actions: Mapping[str, Callable[[Any], None]]) -> None:
        self._actions = actions
        super().__init__()

    def get_action(self, action_name: str) -> Callable[[Any], None]:
        return self._actions[action_name]

    def _run(self) -> None:
        """No dispatch/timer threads: actions run synchronously in ``post``/``assert_fact``."""


_EMPTY_VALUES = (None, "")


def is_empty(value: Any) -> bool:
    return value is None or value == ""


@dataclass(frozen=True, slots=True)
class _Plan:
    """How the signature of one decision, or of several read together, is taken off facts."""

    #: the decision(s): a name, or a tuple of names for a joint signature
    key: Any
    #: fact groups (name up to the first dot) the decisions read: computed before the look-up
    groups: tuple[str, ...]
    #: ``(facts, other) -> tuple`` for a dict (a lazy one's groups computed): the signature, or
    #: ``other(signature)`` when a compared value is not text, number, true/false or None
    of_dict: Callable[[dict[str, Any], Callable[[tuple[Any, ...]], Any]], Any]
    #: ``(get, other) -> tuple`` the same for any other mapping
    of_get: Callable[[Callable[[str], Any], Callable[[tuple[Any, ...]], Any]], Any]


class Evaluator:
    """Runs compiled decisions on flat fact mappings; returns the fired rules, best first."""

    def __init__(
        self, decisions: Mapping[str, CompiledDecision], cache_size: int = DEFAULT_CACHE_SIZE
    ) -> None:
        self._decisions = dict(decisions)
        self._fired: list[str] = []
        self._cache: dict[tuple[Any, ...], Any] = {}
        self._cache_size = max(0, cache_size)
        self.stats = EvalStats()
        self._start_host()
        self._plans = {
            name: _plan(name, c.facts, c.presence_only) for name, c in self._decisions.items()
        }
        #: joint plans, per tuple of decision names (see :meth:`fired_together`); None when
        #: one of the decisions is unknown
        self._joint: dict[tuple[str, ...], Any] = {}
        self._order = {
            name: {key: index for index, key in enumerate(c.by_key)}
            for name, c in self._decisions.items()
        }

    def _start_host(self) -> None:
        """A durable-rules Host with every decision registered, owned by this process."""
        self._pid = os.getpid()
        self._lock = threading.Lock()
        actions: dict[str, Callable[[Any], None]] = {}
        for compiled in self._decisions.values():
            for key in compiled.by_key:
                actions.setdefault(key, self._recorder(key))
        self._host = _Host(actions)
        definitions = {c.ruleset: _deep_copy(c.definition) for c in self._decisions.values()}
        if definitions:
            try:
                self._host.set_rulesets(definitions)
            except Exception as exc:  # the C extension raises bare errors with a code
                raise FatalError(f"durable-rules rejected the compiled rules: {exc}") from exc

    def _recorder(self, key: str) -> Callable[[Any], None]:
        fired = self._fired

        def action(_closure: Any) -> None:
            fired.append(key)

        return action

    def decisions(self) -> Mapping[str, CompiledDecision]:
        return self._decisions

    def signature(self, decision: str, facts: Mapping[str, Any]) -> tuple[Any, ...]:
        """What the decision's outcome depends on: values of compared facts, presence of the
        presence-only ones (in the order of the decision's facts)."""
        values: tuple[Any, ...] = _read(self._plans[decision], facts, _normalised)
        return values

    def fired(self, decision: str, facts: Mapping[str, Any]) -> tuple[Rule, ...]:
        """The rules of ``decision`` that fire for ``facts``: for a choice decision at most
        one (the winner), else all of them in best-first order. Unknown decision or no rules:
        ``()``."""
        plan = self._plans.get(decision)
        if plan is None:
            return ()
        if type(facts) is dict:
            key = (decision, plan.of_dict(facts, _normalised))
        else:  # _read written out: once or more per decision of every record
            require = getattr(facts, "require", None)
            if require is not None:
                require(plan.groups)
            if isinstance(facts, dict):
                key = (decision, plan.of_dict(facts, _normalised))
            else:
                key = (decision, plan.of_get(facts.get, _normalised))
        cached: tuple[Rule, ...] | None = self._cache.get(key)
        if cached is not None:
            self.stats.cache_hits += 1
            return cached
        result = self._evaluate(decision, facts)
        self._remember(key, result)
        return result

    def fired_together(
        self, decisions: tuple[str, ...], facts: Mapping[str, Any]
    ) -> tuple[tuple[Rule, ...], ...]:
        """:meth:`fired` of each of ``decisions``, off one signature over the facts they read.

        For decisions a caller always evaluates together: one look-up instead of one per
        decision (the joint signature holds every fact any of them compares, and the presence
        of the others, so it determines each one's own signature). Every answer is still
        durable-rules' (asked per decision on a miss). All their fact groups are computed
        first, so use it only where each of them would be read anyway. Facts of other types
        than text, number and true/false: one decision at a time.
        """
        plan = self._joint.get(decisions, _UNPLANNED)
        if plan is _UNPLANNED:
            plan = self._joint[decisions] = self._joint_plan(decisions)
        if plan is None:
            return tuple(self.fired(name, facts) for name in decisions)
        values = _read(plan, facts, _other)
        if values is None:
            return tuple(self.fired(name, facts) for name in decisions)
        key = (decisions, values)
        cached: tuple[tuple[Rule, ...], ...] | None = self._cache.get(key)
        if cached is not None:
            self.stats.cache_hits += 1
            return cached
        result = tuple(self.fired(name, facts) for name in decisions)
        self._remember(key, result)
        return result

    def _joint_plan(self, decisions: tuple[str, ...]) -> _Plan | None:
        """The joint signature of known decisions (None when one is unknown)."""
        compiled = [self._decisions.get(name) for name in decisions]
        if any(c is None for c in compiled):
            return None
        presence_only: dict[str, bool] = {}
        for c in compiled:
            assert c is not None
            for fact in c.facts:
                presence_only[fact] = presence_only.get(fact, True) and fact in c.presence_only
        facts = tuple(sorted(presence_only))
        return _plan(decisions, facts, frozenset(f for f, only in presence_only.items() if only))

    def _evaluate(self, decision: str, facts: Mapping[str, Any]) -> tuple[Rule, ...]:
        """Ask durable-rules: the decision's rules that hold for ``facts``, best first."""
        compiled = self._decisions[decision]
        message: dict[str, Any] = {DISCRIMINATOR: decision}
        for name in compiled.facts:
            value = _normal(facts.get(name))
            if not is_empty(value):
                message[fact_key(name)] = value
        if os.getpid() != self._pid:
            self._start_host()  # a forked process: never share the parent's Host
        with self._lock:
            started = time.perf_counter()
            try:
                keys = self._run(compiled, message)
            finally:
                self.stats.engine_seconds += time.perf_counter() - started
                self.stats.engine_calls += 1
        order = self._order[decision]
        return tuple(compiled.by_key[k] for k in sorted(set(keys), key=order.__getitem__))

    def _remember(self, key: tuple[Any, ...], result: Any) -> None:
        if self._cache_size:
            if len(self._cache) >= self._cache_size:
                # drop the oldest tenth (insertion order): cheap and bounded
                for old in list(itertools.islice(self._cache, self._cache_size // 10 or 1)):
                    del self._cache[old]
            self._cache[key] = result

    def _run(self, compiled: CompiledDecision, message: dict[str, Any]) -> list[str]:
        self._fired.clear()
        try:
            if compiled.kind == "choice":
                self._host.post(compiled.ruleset, message)
            else:
                self._host.assert_fact(compiled.ruleset, message)
                self._host.retract_fact(compiled.ruleset, dict(message))
        except _durable.MessageNotHandledException:
            pass  # no rule holds
        return list(self._fired)

    def live_facts(self, decision: str) -> int:
        """How many facts the engine holds for ``decision`` (0 after every evaluation)."""
        compiled = self._decisions[decision]
        with self._lock:
            return len(self._host.get_facts(compiled.ruleset))


_DICT_GET = dict.get
_UNPLANNED: Any = object()
_PLAIN = frozenset({str, bool, int})
_PLAIN_OR_NONE = frozenset({str, bool, int, type(None)})


def _read(plan: _Plan, facts: Mapping[str, Any], other: Callable[[tuple[Any, ...]], Any]) -> Any:
    """The signature of ``plan`` for ``facts``, lazy groups computed first (see _Plan)."""
    if type(facts) is not dict:
        require = getattr(facts, "require", None)
        if require is not None:
            require(plan.groups)
    if isinstance(facts, dict):
        # a plain dict look-up (not a lazy mapping's own ``get``): the groups are there now
        return plan.of_dict(facts, other)
    return plan.of_get(facts.get, other)


def _normalised(values: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(map(_normal, values))


def _other(values: tuple[Any, ...]) -> None:
    return None


def _normal(value: Any) -> Any:
    """Facts are str, int or bool; anything else is compared as text."""
    if value is None or type(value) in _PLAIN or isinstance(value, str | bool | int):
        return value
    return str(value)


def _plan(key: Any, facts: tuple[str, ...], presence_only: frozenset[str]) -> _Plan:
    """The signature functions of ``facts``: the value of each compared fact and the presence
    of each presence-only one, in that order. Generated once per decision: a straight tuple
    expression is several times faster than a loop over the names, and checking the type of
    the compared values one by one is cheaper than a generic check of the whole tuple."""
    groups = tuple(dict.fromkeys(fact.partition(".")[0] for fact in facts))
    compared = [index for index, fact in enumerate(facts) if fact not in presence_only]
    check = " and ".join(f"v{index}.__class__ in plain" for index in compared) or "True"
    parts = ", ".join(
        f"v{index}" if index in compared else f"v{index} not in empty"
        for index in range(len(facts))
    )
    signature = f"({parts}{',' if facts else ''})"
    namespace: dict[str, Any] = {"empty": _EMPTY_VALUES, "plain": _PLAIN_OR_NONE}
    for name, params, read in (
        ("of_dict", "facts, other, get=dict.get", "get(facts, {!r})"),
        ("of_get", "get, other", "get({!r})"),
    ):
        lines = [f"    v{index} = {read.format(fact)}\n" for index, fact in enumerate(facts)]
        # names are checked vocabulary facts, written with repr
        exec(
            f"def {name}({params}, empty=empty, plain=plain):\n"
            + "".join(lines)
            + f"    if {check}:\n        return {signature}\n    return other({signature})\n",
            namespace,
        )
    return _Plan(key, groups, namespace["of_dict"], namespace["of_get"])


def _deep_copy(value: Any) -> Any:
    """durable-rules mutates the definitions it registers (it pops ``run``)."""
    if isinstance(value, Mapping):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_deep_copy(v) for v in value]
    return value
