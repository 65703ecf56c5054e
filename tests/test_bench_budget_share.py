"""The budget share bench/bc.py judges BC's pacing by (target >= 0.9): a measure that decides a
verdict is checked on request schedules whose answer is known."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

_BENCH = Path(__file__).resolve().parents[1] / "bench" / "bc.py"


@pytest.fixture(scope="module")
def budget_share():
    spec = importlib.util.spec_from_file_location("bench_bc", _BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._budget_share


def _bursts(windows: int, budget: int, period: float, last: int | None = None) -> list[float]:
    """``budget`` requests 1 ms apart every ``period`` seconds; the last burst ``last`` long."""
    times: list[float] = []
    for w in range(windows):
        size = budget if w < windows - 1 or last is None else last
        times += [w * period + i * 0.001 for i in range(size)]
    return times


def test_a_client_sending_as_soon_as_the_window_lets_it_uses_the_whole_budget(budget_share):
    assert budget_share(_bursts(5, 600, 10.0), 600, 10.0) == pytest.approx(1.0)


def test_a_short_last_burst_where_the_work_ran_out_is_not_held_against_the_client(budget_share):
    assert budget_share(_bursts(4, 600, 10.0, last=213), 600, 10.0) == pytest.approx(1.0)


def test_a_pacer_two_percent_late_each_window_scores_about_0_98_whatever_the_phase(budget_share):
    for windows in (3, 4, 5, 12):
        assert budget_share(_bursts(windows, 15, 10.2), 15, 10.0) == pytest.approx(
            1 / 1.02, abs=0.005
        )


def test_a_client_slower_than_the_budget_after_its_first_window_scores_low(budget_share):
    times = [i * 0.001 for i in range(600)] + [10 + i * 0.04 for i in range(1000)]
    assert budget_share(times, 600, 10.0) == pytest.approx(0.40, abs=0.01)


def test_no_figure_when_the_budget_never_was_the_limit(budget_share):
    assert math.isnan(budget_share([i * (2 * 10 / 600) for i in range(3000)], 600, 10.0))
    assert math.isnan(budget_share([i * 0.001 for i in range(600)], 600, 10.0))
