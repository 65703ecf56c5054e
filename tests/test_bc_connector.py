"""The Business Central connector's own behaviour, against a small in-process BC (bc_fake):
settings, token handling, pacing, retries and lost answers, errors, paging, the create
journal. Its behaviour against a BC that answers as BC does is tested against the BC double
(test_bc_double_connector.py, test_erp_conformance.py)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from custsync.connectors import business_central as bc
from custsync.engine.errors import ConfigError, FatalError, RecordError, RetriableError
from custsync.engine.ports import ErpReader, ErpWriter
from custsync.engine.registry import open_erp_writer

from bc_fake import ENV, OPTIONS, URL, FakeBc


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def fake() -> FakeBc:
    return FakeBc()


def _writer(fake: FakeBc, tmp_path: Path, clock: FakeClock | None = None, **options: Any):
    clock = clock or FakeClock()
    merged = {
        **OPTIONS,
        "journal": str(tmp_path / "journal.sqlite"),
        "transport": fake.transport(),
        "environ": ENV,
        "clock": clock,
        "sleep": clock.sleep,
        "seed": 1,
        "pages": {"customer_card": "Customer"},
        "now": lambda: fake.clock,  # BC's clock and ours agree
        **options,
    }
    return bc.open_writer(URL, **merged)


# ---- settings ---------------------------------------------------------------------------


def test_online_url_gives_bc_and_login_endpoints() -> None:
    settings = bc.parse_settings("bc://contoso.onmicrosoft.com/Production", OPTIONS)
    assert settings.base_url == (
        "https://api.businesscentral.dynamics.com/v2.0/contoso.onmicrosoft.com/Production"
    )
    assert settings.token_url == (
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    )
    assert settings.api_root.endswith("/Production/api/v2.0")


def test_local_url_takes_tenant_from_path_and_options_from_query() -> None:
    settings = bc.parse_settings(
        "bc+http://127.0.0.1:8080/v2.0/t1/sandbox?company=C1&client_id=a&client_secret_env=S",
        {"page_size": "50"},
    )
    assert settings.tenant == "t1"
    assert settings.token_url == "http://127.0.0.1:8080/t1/oauth2/v2.0/token"
    assert (settings.company, settings.page_size) == ("C1", 50)


@pytest.mark.parametrize(
    ("url", "options", "expected"),
    [
        ("bc://tenant-only", OPTIONS, "expected bc://<tenant>/<environment>"),
        ("bc://t/e", {"company": "C"}, "missing option(s) client_id, client_secret_env"),
        ("bc://t/e", {**OPTIONS, "client_secret": "x"}, "unknown option(s) client_secret"),
        ("bc://t/e", {**OPTIONS, "page_size": "many"}, "page_size: expected a number"),
        ("bc://t/e", {**OPTIONS, "pages": {"cards": "X"}}, "pages.cards: unknown source"),
    ],
)
def test_bad_settings_are_named(url: str, options: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        bc.parse_settings(url, options)


def test_found_by_its_url_scheme_and_implements_the_ports(fake: FakeBc, tmp_path: Path) -> None:
    writer = open_erp_writer(
        URL,
        **OPTIONS,
        journal=str(tmp_path / "j.sqlite"),
        transport=fake.transport(),
        environ=ENV,
    )
    try:
        assert isinstance(writer, bc.BcErpWriter)
        assert isinstance(writer, ErpWriter) and isinstance(writer, ErpReader)
    finally:
        writer.close()


# ---- token ------------------------------------------------------------------------------


def test_token_is_cached_and_renewed_once_on_401(fake: FakeBc, tmp_path: Path) -> None:
    fake.add(displayName="A")
    with _writer(fake, tmp_path) as writer:
        list(writer.iter_customers())
        assert fake.tokens_issued == 1
        fake.valid_tokens.clear()  # BC no longer accepts the cached token
        assert [c.name for c in writer.iter_customers()] == ["A"]
        assert fake.tokens_issued == 2


def test_token_is_renewed_before_it_expires(fake: FakeBc, tmp_path: Path) -> None:
    clock = FakeClock()
    with _writer(fake, tmp_path, clock) as writer:
        writer.reference()
        clock.now += 3599 - 300 + 1  # within five minutes of expiry
        writer.get_customer("C00001")
    assert fake.tokens_issued == 2


def test_wrong_secret_names_what_to_check_and_never_the_secret(
    fake: FakeBc, tmp_path: Path
) -> None:
    with (
        _writer(fake, tmp_path, environ={"BC_SECRET": "wrong-secret"}) as writer,
        pytest.raises(FatalError) as caught,
    ):
        writer.reference()
    message = caught.value.render()
    assert "tenant 'tenant1'" in message and "client_id 'app1'" in message
    assert "$BC_SECRET" in message and "wrong-secret" not in message


def test_missing_secret_variable_is_a_config_error(fake: FakeBc, tmp_path: Path) -> None:
    with (
        _writer(fake, tmp_path, environ={}) as writer,
        pytest.raises(ConfigError, match=r"BC_SECRET .* is not set"),
    ):
        writer.reference()


# ---- errors, retries, pacing ------------------------------------------------------------


def test_unknown_company_lists_the_companies(fake: FakeBc, tmp_path: Path) -> None:
    with (
        _writer(fake, tmp_path, company="cronus") as writer,
        pytest.raises(ConfigError, match=r"company 'cronus' does not exist \(names are case"),
    ):
        list(writer.iter_customers())


def test_429_is_retried_after_retry_after(fake: FakeBc, tmp_path: Path) -> None:
    fake.add(displayName="A")
    answers = iter([httpx.Response(429, headers={"Retry-After": "7"}), None])
    fake.hooks.append(lambda r: next(answers) if "customers" in r.url.path else None)
    clock = FakeClock()
    with _writer(fake, tmp_path, clock) as writer:
        assert [c.name for c in writer.iter_customers()] == ["A"]
        assert writer.client.stats.throttled == 1
    assert 7 in clock.slept


def test_5xx_gives_up_after_max_attempts_with_bc_code(fake: FakeBc, tmp_path: Path) -> None:
    def down(request: httpx.Request) -> httpx.Response | None:
        if "customers" not in request.url.path:
            return None
        return httpx.Response(
            503,
            json={"error": {"code": "Internal_ServiceUnavailable", "message": "down"}},
            headers={"request-id": "abc-123-def-456"},
        )

    fake.hooks.append(down)
    with (
        _writer(fake, tmp_path, max_attempts=3) as writer,
        pytest.raises(RetriableError) as caught,
    ):
        list(writer.iter_customers())
    assert "HTTP 503 Internal_ServiceUnavailable" in caught.value.render()
    assert (
        "abc-123-def-456" in caught.value.render() and "after 3 attempts" in caught.value.render()
    )


def test_request_window_never_exceeds_its_limit() -> None:
    clock = FakeClock()
    window = bc.client.RequestWindow(10, 60.0, clock, clock.sleep)
    starts = []
    for _ in range(35):
        window.acquire()
        starts.append(clock.now)
    for i, start in enumerate(starts):
        assert sum(1 for s in starts if start <= s < start + 60.0) <= 10, i
    assert starts[-1] - starts[0] >= 180.0  # 35 requests at 10 a minute


def test_reads_send_read_only_intent_and_writes_do_not(fake: FakeBc, tmp_path: Path) -> None:
    with _writer(fake, tmp_path) as writer:
        writer.create_customer({"name": "A"}, None, "shop:1")
    gets = [r for r in fake.requests if r.method == "GET" and "token" not in r.url.path]
    posts = [r for r in fake.requests if r.method == "POST" and "token" not in r.url.path]
    assert gets and all(r.headers["Data-Access-Intent"] == "ReadOnly" for r in gets)
    assert posts and all("Data-Access-Intent" not in r.headers for r in posts)


# ---- reading ----------------------------------------------------------------------------


def test_paging_follows_next_links_and_reads_cards(fake: FakeBc, tmp_path: Path) -> None:
    for i in range(5):
        fake.add(displayName=f"N{i}")
    fake.cards["C00003"]["Name_2"] = "Second"
    with _writer(fake, tmp_path, page_size=2) as writer:
        customers = list(writer.iter_customers())
    assert [c.no for c in customers] == [f"C{i:05d}" for i in range(1, 6)]
    assert customers[2].name_2 == "Second"
    assert all(c.etag and c.modified_at for c in customers)


def test_changed_since_reads_the_overlap_window(fake: FakeBc, tmp_path: Path) -> None:
    fake.add(displayName="old")
    fake.clock += timedelta(minutes=10)
    cut = fake.clock
    fake.clock += timedelta(seconds=30)  # 31 s after the cut, within a 60 s overlap
    fake.add(displayName="new")
    with _writer(fake, tmp_path, modified_overlap_seconds=60) as writer:
        names = [c.name for c in writer.iter_customers(changed_since=cut + timedelta(seconds=60))]
    assert names == ["new"]


def test_unpublished_card_is_reported_not_blank(fake: FakeBc, tmp_path: Path) -> None:
    fake.card_published = False
    fake.add(displayName="A")
    with _writer(fake, tmp_path) as writer:
        assert [c.name for c in writer.iter_customers()] == ["A"]
        reason = writer.unavailable()["customer_card"]
        problems = writer.problems()
        unwritable = writer.unwritable_fields()
        assert unwritable["name_2"] == unwritable["contact"] == reason
        assert unwritable["customer_posting_group"] == reason
    assert "'Customer' cannot be read (BadRequest_NotFound" in reason
    assert "publish the page" in reason
    assert [p.kind for p in problems] == ["countries", "customer_templates", "customer_card"]
    assert problems[0].message.endswith("not configured (erp.business_central.pages.countries)")


# ---- writing ----------------------------------------------------------------------------


def test_create_then_card_then_update_with_etag(fake: FakeBc, tmp_path: Path) -> None:
    with _writer(fake, tmp_path) as writer:
        created = writer.create_customer(
            {"name": "Jane", "name_2": "Doe", "email": "j@x.test"}, None, "shop:gid1"
        )
        assert created.ok and created.no == "C00001"
        assert fake.cards["C00001"]["Name_2"] == "Doe"
        customer = writer.get_customer("C00001")
        assert customer is not None and customer.etag == created.etag and customer.name_2 == "Doe"
        updated = writer.update_customer("C00001", {"city": "Oslo"}, expected_etag=created.etag)
        assert updated.ok and updated.etag != created.etag
        stale = writer.update_customer("C00001", {"city": "Rome"}, expected_etag=created.etag)
    assert not stale.ok
    assert "changed in Business Central since it was read (Request_EntityChanged" in stale.message
    assert fake.by_number("C00001")["city"] == "Oslo"


def test_bc_validation_error_fails_that_record_with_code_and_correlation(
    fake: FakeBc, tmp_path: Path
) -> None:
    with _writer(fake, tmp_path) as writer:
        result = writer.create_customer({"email": "a@b.test"}, None, "shop:gid2")
    assert not result.ok
    assert result.message.startswith('Application_DialogException: A "displayName" must be')
    assert "correlation id" in result.message


def test_lost_answer_of_a_create_is_found_not_sent_again(fake: FakeBc, tmp_path: Path) -> None:
    created: list[httpx.Response] = []

    def drop_answer(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST" and request.url.path.endswith("/customers") and not created:
            created.append(fake._company(request, "customers", json.loads(request.content)))
            raise httpx.ReadError("connection reset after sending")
        return None

    fake.hooks.append(drop_answer)
    with _writer(fake, tmp_path) as writer:
        result = writer.create_customer({"name": "Jane", "email": "j@x.test"}, None, "shop:gid3")
    assert result.ok and result.no == "C00001"
    assert len(fake.customers) == 1


def test_journal_recognises_a_create_after_a_crash(fake: FakeBc, tmp_path: Path) -> None:
    """The process dies after BC created the customer and before anything was recorded:
    a new writer (the resumed run) finds it by the key through the journal."""
    fields = {"name": "Jane", "email": "j@x.test", "post_code": "0150"}
    writer = _writer(fake, tmp_path)
    writer.journal.sent({"shop:gid4": fields}, fake.clock)
    fake.add(displayName="Jane", email="j@x.test", postalCode="0150")  # the POST took effect
    writer.close()
    with _writer(fake, tmp_path) as resumed:
        assert resumed.find_by_idempotency_key("never-sent") is None
        found = resumed.find_by_idempotency_key("shop:gid4")
        assert found is not None and found.no == "C00001"
        again = resumed.create_customer(fields, None, "shop:gid4")
    assert again.ok and again.no == "C00001" and len(fake.customers) == 1


def test_journal_says_not_created_when_the_post_never_arrived(fake: FakeBc, tmp_path: Path) -> None:
    with _writer(fake, tmp_path) as writer:
        writer.journal.sent({"shop:gid5": {"name": "Lost"}}, fake.clock)
        assert writer.find_by_idempotency_key("shop:gid5") is None
        result = writer.create_customer({"name": "Lost"}, None, "shop:gid5")
    assert result.ok and len(fake.customers) == 1


def test_batch_creates_in_requests_of_100(fake: FakeBc, tmp_path: Path) -> None:
    items = [bc.CreateItem(f"shop:{i}", {"name": f"N{i}"}) for i in range(250)]
    with _writer(fake, tmp_path, pages={}) as writer:
        results = list(writer.create_customers(items))
    assert all(r.ok for r in results) and len({r.no for r in results}) == 250
    batches = [r for r in fake.requests if r.url.path.endswith("$batch")]
    assert len(batches) == 3


def test_recovery_finishes_the_card_write_the_crash_cut_off(fake: FakeBc, tmp_path: Path) -> None:
    fields = {"name": "Jane", "name_2": "Doe", "email": "j@x.test"}
    writer = _writer(fake, tmp_path)
    writer.journal.sent({"shop:gid6": fields}, fake.clock, {"shop:gid6": {"name_2": "Doe"}})
    fake.add(displayName="Jane", email="j@x.test")  # POST done, card PATCH never sent
    writer.close()
    with _writer(fake, tmp_path) as resumed:
        found = resumed.find_by_idempotency_key("shop:gid6")
    assert found is not None and found.name_2 == "Doe"
    assert fake.cards[found.no]["Name_2"] == "Doe"


def test_several_matches_after_a_crash_are_refused_not_guessed(
    fake: FakeBc, tmp_path: Path
) -> None:
    writer = _writer(fake, tmp_path)
    writer.journal.sent({"shop:gid7": {"name": "Same"}}, fake.clock)
    fake.add(displayName="Same")
    fake.add(displayName="Same")
    with pytest.raises(RecordError, match="matches several Business Central customers"):
        writer.find_by_idempotency_key("shop:gid7")
    writer.close()
