"""The BC double's per-user limits (window, concurrency, queue) and injected faults."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from custsync.connectors.bc_double import BcDouble, Fault, Limits, parse_faults

from fixtures_bc import bc_company, bc_token


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=10) as client:
        yield client


def _customers_url(double: BcDouble) -> str:
    return double.company_url(bc_company(double).id) + "/customers"


def _get(http: httpx.Client, double: BcDouble, token: str, **kwargs: Any) -> httpx.Response:
    return http.get(_customers_url(double), headers={"Authorization": f"Bearer {token}"},
                    **kwargs)


def _parallel(double: BcDouble, token: str, n: int) -> list[httpx.Response | Exception]:
    """``n`` GETs sent at the same moment, each on its own connection."""
    results: list[httpx.Response | Exception] = [Exception("not run")] * n
    barrier = threading.Barrier(n)

    def one(i: int) -> None:
        with httpx.Client(trust_env=False, timeout=20) as client:
            barrier.wait()
            try:
                results[i] = _get(client, double, token)
            except httpx.HTTPError as exc:
                results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def _statuses(results: list[httpx.Response | Exception]) -> list[int]:
    return sorted(r.status_code if isinstance(r, httpx.Response) else 0 for r in results)


def test_429_after_the_window_budget_then_free_again(
        bc_double_factory: Callable[..., BcDouble], http: httpx.Client) -> None:
    # 5 requests per 300 s window, 300 times faster: the window lasts one second
    double = bc_double_factory(limits=Limits(requests_per_window=5, time_scale=300.0))
    token = bc_token(double, http)
    assert [_get(http, double, token).status_code for _ in range(5)] == [200] * 5
    refused = _get(http, double, token)
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "Application_TooManyRequests"
    assert error["message"].endswith(f"CorrelationId:  {refused.headers['request-id']}.")
    assert int(refused.headers["retry-after"]) >= 1
    assert double.window_used() == 5  # refused requests do not count
    time.sleep(1.1)
    assert _get(http, double, token).status_code == 200


def test_window_is_per_user(bc_double_factory: Callable[..., BcDouble],
                            http: httpx.Client) -> None:
    double = bc_double_factory(limits=Limits(requests_per_window=2, time_scale=10.0),
                               clients={"second-app": "second-secret"})
    token = bc_token(double, http)
    other = http.post(double.token_url, data={
        "grant_type": "client_credentials", "client_id": "second-app",
        "client_secret": "second-secret",
        "scope": "https://api.businesscentral.dynamics.com/.default"}).json()["access_token"]
    assert [_get(http, double, token).status_code for _ in range(3)] == [200, 200, 429]
    assert _get(http, double, other).status_code == 200


def test_five_requests_run_at_once_the_rest_wait(bc_double_factory: Callable[..., BcDouble]
                                                 ) -> None:
    double = bc_double_factory(latency=0.3)
    token = bc_token(double)
    started = time.monotonic()
    results = _parallel(double, token, 8)
    elapsed = time.monotonic() - started
    assert _statuses(results) == [200] * 8
    assert double.peak_concurrency() == 5
    assert elapsed >= 0.6  # two rounds of 0.3 s: the last three waited in the queue


def test_429_beyond_the_connection_limit(bc_double_factory: Callable[..., BcDouble]) -> None:
    double = bc_double_factory(latency=0.5,
                               limits=Limits(concurrent=2, max_connections=3))
    token = bc_token(double)
    statuses = _statuses(_parallel(double, token, 5))
    assert statuses == [200, 200, 200, 429, 429]
    assert double.peak_concurrency() == 2


def test_503_after_waiting_too_long_in_the_queue(bc_double_factory: Callable[..., BcDouble]
                                                 ) -> None:
    # 480 s of queue, 2400 times faster: 0.2 s
    double = bc_double_factory(latency=0.6, limits=Limits(concurrent=1, time_scale=2400.0))
    token = bc_token(double)
    statuses = _statuses(_parallel(double, token, 2))
    assert statuses == [200, 503]


# -- faults ------------------------------------------------------------------------------


def test_status_fault_answers_in_bc_envelope_with_retry_after(bc_double: BcDouble,
                                                              http: httpx.Client) -> None:
    token = bc_token(bc_double, http)
    bc_double.inject(Fault("status", status=503, retry_after=2, times=2))
    for _ in range(2):
        answer = _get(http, bc_double, token)
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "2"
        assert answer.json()["error"]["message"].endswith(
            f"CorrelationId:  {answer.headers['request-id']}.")
    assert _get(http, bc_double, token).status_code == 200
    assert [r.fault for r in bc_double.requests[-3:]] == ["status:503", "status:503", None]


def test_fault_matches_method_and_target_after_skip(bc_double: BcDouble,
                                                    http: httpx.Client) -> None:
    token = bc_token(bc_double, http)
    headers = {"Authorization": f"Bearer {token}"}
    bc_double.inject(Fault("status", status=429, method="POST", target="customers", skip=1))
    url = _customers_url(bc_double)
    assert http.get(url, headers=headers).status_code == 200
    assert http.post(url, headers=headers, json={"displayName": "A"}).status_code == 201
    assert http.post(url, headers=headers, json={"displayName": "B"}).status_code == 429
    assert http.post(url, headers=headers, json={"displayName": "C"}).status_code == 201
    assert bc_double.faults.pending() == []


def test_dropped_connection(bc_double: BcDouble, http: httpx.Client,
                            caplog: pytest.LogCaptureFixture) -> None:
    token = bc_token(bc_double, http)
    bc_double.inject(Fault("drop"))
    with pytest.raises(httpx.TransportError):
        _get(http, bc_double, token)
    assert _get(http, bc_double, token).status_code == 200
    assert bc_double.counts()[0] == 1
    # an injected drop is not logged as an application error
    assert not [r for r in caplog.records if "Exception in ASGI" in r.getMessage()]


def test_drop_after_effect_creates_the_customer_the_client_never_hears_of(
        bc_double: BcDouble, http: httpx.Client) -> None:
    token = bc_token(bc_double, http)
    company = bc_company(bc_double)
    before = len(company.customers)
    bc_double.inject(Fault("drop", method="POST", after_effect=True))
    with pytest.raises(httpx.TransportError):
        http.post(_customers_url(bc_double), headers={"Authorization": f"Bearer {token}"},
                  json={"displayName": "Sent but unheard"})
    assert len(company.customers) == before + 1


def test_slow_answer(bc_double: BcDouble, http: httpx.Client) -> None:
    token = bc_token(bc_double, http)
    bc_double.inject(Fault("delay", seconds=0.4))
    started = time.monotonic()
    assert _get(http, bc_double, token).status_code == 200
    assert time.monotonic() - started >= 0.4
    bc_double.inject(Fault("delay", seconds=2))
    with pytest.raises(httpx.ReadTimeout):
        _get(http, bc_double, token, timeout=0.3)


def test_token_endpoint_fault(bc_double: BcDouble, http: httpx.Client) -> None:
    bc_double.inject(Fault("status", status=503, target="token"))
    answer = http.post(bc_double.token_url, data={})
    assert answer.status_code == 503
    bc_token(bc_double, http)


@pytest.mark.parametrize(("text", "expected"), [
    ("status:status=503", [Fault("status", status=503)]),
    ("status:status=429,method=POST,target=customers,times=3",
     [Fault("status", status=429, method="POST", target="customers", times=3)]),
    ("drop:target=$batch,after-effect; delay:seconds=2.5",
     [Fault("drop", target="$batch", after_effect=True), Fault("delay", seconds=2.5)]),
])
def test_parse_faults(text: str, expected: list[Fault]) -> None:
    assert parse_faults(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("explode", "unknown fault kind"),
    ("status:status=200", "not an error status"),
    ("status:operation=customerCreate", "unknown option 'operation'"),
    ("delay:seconds=soon", "seconds takes a number"),
    (" ; ", "no fault given"),
])
def test_bad_fault_specs_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_faults(text)
