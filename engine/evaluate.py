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

from .compile import DISCRIMINATOR, CompiledDecision, fact_key
from .errors import FatalError
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


class Evaluator:
    """Runs compiled decisions on flat fact mappings; returns the fired rules, best first."""

    def __init__(
        self, decisions: Mapping[str, CompiledDecision], cache_size: int = DEFAULT_CACHE_SIZE
    ) -> None:
        self._decisions = dict(decisions)
        self._fired: list[str] = []
        self._cache: dict[tuple[Any, ...], tuple[Rule, ...]] = {}
        self._cache_size = max(0, cache_size)
        self.stats = EvalStats()
        self._start_host()
        #: per decision: (compiled, groups of the facts it reads, signature function)
        self._plans = {
            name: (
                c,
                tuple(dict.fromkeys(fact.partition(".")[0] for fact in c.facts)),
                _signature_function(c),
            )
            for name, c in self._decisions.items()
        }
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
        _, groups, signature = self._plans[decision]
        if type(facts) is not dict:
            require = getattr(facts, "require", None)
            if require is not None:
                require(groups)
        # a plain dict lookup (not a lazy mapping's own ``get``): the groups are there now
        values: tuple[Any, ...] = signature(
            dict.get.__get__(facts) if isinstance(facts, dict) else facts.get
        )
        if not _PLAIN_OR_NONE.issuperset(map(type, values)):
            values = tuple(map(_normal, values))
        return values

    def fired(self, decision: str, facts: Mapping[str, Any]) -> tuple[Rule, ...]:
        """The rules of ``decision`` that fire for ``facts``: for a choice decision at most
        one (the winner), else all of them in best-first order. Unknown decision or no rules:
        ``()``."""
        plan = self._plans.get(decision)
        if plan is None:
            return ()
        compiled, groups, signature = plan
        if type(facts) is dict:
            values = signature(facts.get)
        else:
            require = getattr(facts, "require", None)
            if require is not None:
                require(groups)
            # a plain dict lookup (not a lazy mapping's own ``get``): the groups are there now
            values = signature(_DICT_GET.__get__(facts) if isinstance(facts, dict) else facts.get)
        if not _PLAIN_OR_NONE.issuperset(map(type, values)):
            values = tuple(map(_normal, values))
        key = (decision, values)
        cached = self._cache.get(key)
        if cached is not None:
            self.stats.cache_hits += 1
            return cached
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
        result = tuple(compiled.by_key[k] for k in sorted(set(keys), key=order.__getitem__))
        if self._cache_size:
            if len(self._cache) >= self._cache_size:
                # drop the oldest tenth (insertion order): cheap and bounded
                for old in list(itertools.islice(self._cache, self._cache_size // 10 or 1)):
                    del self._cache[old]
            self._cache[key] = result
        return result

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
_PLAIN = frozenset({str, bool, int})
_PLAIN_OR_NONE = frozenset({str, bool, int, type(None)})


def _normal(value: Any) -> Any:
    """Facts are str, int or bool; anything else is compared as text."""
    if value is None or type(value) in _PLAIN or isinstance(value, str | bool | int):
        return value
    return str(value)


def _signature_function(compiled: CompiledDecision) -> Callable[[Any], tuple[Any, ...]]:
    """``get -> tuple``: the value of each compared fact and the presence of each
    presence-only fact of a decision, in its fact order (generated once per decision: a
    straight tuple expression is several times faster than a loop over the names)."""
    parts = [
        f"get({name!r}) not in empty" if name in compiled.presence_only else f"get({name!r})"
        for name in compiled.facts
    ]
    source = (
        f"def signature(get, empty=empty):\n    return ({', '.join(parts)}{',' if parts else ''})\n"
    )
    namespace: dict[str, Any] = {"empty": _EMPTY_VALUES}
    exec(source, namespace)  # names are checked vocabulary facts, written with repr
    function: Callable[[Any], tuple[Any, ...]] = namespace["signature"]
    return function


def _deep_copy(value: Any) -> Any:
    """durable-rules mutates the definitions it registers (it pops ``run``)."""
    if isinstance(value, Mapping):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_deep_copy(v) for v in value]
    return value
