"""`custsync sync --state URL` and `--lease-ttl` (issue 10, item 7): the same state and lease
options as `custsync schedule`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from custsync.connectors.shopify_double import ShopifyDouble
from custsync.engine import exitcodes
from custsync.engine.cli import main
from custsync.engine.run.state import SqlStateStore, open_store

from sync_world import EXPORT_SETTINGS, make_erp, write_config


def _config(tmp_path: Path, double: ShopifyDouble) -> tuple[Path, str]:
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    make_erp(erp_url, [])
    config = write_config(
        tmp_path,
        shop_url=double.url,
        erp_url=erp_url,
        state_url=f"sqlite:///{tmp_path / 'config-state.db'}",
        settings=EXPORT_SETTINGS,
        token=double.token,
    )
    return config, erp_url


def test_sync_state_option_overrides_the_config(tmp_path: Path, shopify_double: ShopifyDouble
                                                ) -> None:
    config, _ = _config(tmp_path, shopify_double)
    other = f"sqlite:///{tmp_path / 'other-state.db'}"
    code = main(["sync", "-c", str(config), "--state", other, "--no-progress"])
    assert code == exitcodes.OK
    store = open_store(other)
    try:
        assert [run.status for run in store.runs(shop="main")] == ["succeeded", "succeeded"]
    finally:
        store.close()
    assert not (tmp_path / "config-state.db").exists()


@pytest.mark.parametrize("ttl", [None, "7"])
def test_sync_takes_the_lease_for_the_lease_ttl(
    tmp_path: Path, shopify_double: ShopifyDouble, monkeypatch: pytest.MonkeyPatch,
    ttl: str | None,
) -> None:
    config, _ = _config(tmp_path, shopify_double)
    seen: list[float] = []
    real = SqlStateStore.acquire_lease

    def spy(self: SqlStateStore, name: str, holder: str, ttl_seconds: float, now: Any = None
            ) -> bool:
        taken = real(self, name, holder, ttl_seconds, now)
        lease = self.lease(name)
        assert lease is not None
        seen.append((lease.expires_at - lease.acquired_at).total_seconds())
        return taken

    monkeypatch.setattr(SqlStateStore, "acquire_lease", spy)
    extra = ["--lease-ttl", ttl] if ttl else []
    assert main(["sync", "-c", str(config), "--no-progress", *extra]) == exitcodes.OK
    # the default is schedule's 60 s, not a fixed 120 s
    assert seen == [float(ttl or 60)]


def test_sync_refuses_a_lease_ttl_that_is_no_positive_number(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["sync", "--lease-ttl", "0"])
    assert exc.value.code == exitcodes.USAGE
