"""`custsync bc-sandbox` as a user runs it: a subprocess that prints the URLs and the config
lines, answers BC's token endpoint and API with the seeded world and faults, and stops on
SIGTERM; bad options are usage errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml
from custsync.connectors.bc_double import SCOPE
from custsync.engine import exitcodes
from custsync.engine.cli import main


def start(*args: str) -> tuple[subprocess.Popen[str], list[str]]:
    process = subprocess.Popen(
        [sys.executable, "-c", "from custsync.engine.cli import run; run()", "bc-sandbox",
         "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith("Stop with"):
            break
    return process, lines


def _printed(lines: list[str], key: str) -> str:
    for line in lines:
        name, sep, value = line.partition(":")
        if sep and name == key:
            return value.strip()
    raise AssertionError(f"{key} not printed in {lines}")


def test_sandbox_prints_config_and_serves_the_seed(tmp_path: Path) -> None:
    seed = tmp_path / "bc.yaml"
    seed.write_text(
        "companies:\n"
        "  - name: Test Co\n"
        "    id: 11111111-2222-3333-4444-555555555555\n"
        "    countriesRegions: [{code: NL, displayName: Netherlands, isoCode: NL}]\n"
        "    customers:\n"
        "      - {number: K1, displayName: Jan, country: NL, name2: Tweede naam}\n",
        encoding="utf-8")
    process, lines = start("--seed", str(seed), "--tenant", "contoso.onmicrosoft.com",
                           "--client-id", "my-app", "--client-secret", "s3cret",
                           "--faults", "status:status=503,method=POST,target=customers")
    try:
        assert "1 company, 1 customers" in lines[0]
        token_url = _printed(lines, "token")
        api = _printed(lines, "api")
        assert token_url.endswith("/contoso.onmicrosoft.com/oauth2/v2.0/token")
        snippet = "\n".join(lines[lines.index("# custsync.yaml") + 1:-2])
        config = yaml.safe_load(snippet)
        assert config["erp"]["url"] == "bc+" + api.removesuffix("/api/v2.0")
        assert config["erp"]["business_central"]["company"] == "Test Co"
        assert config["erp"]["business_central"]["client_id"] == "my-app"
        assert config["erp"]["business_central"]["pages"]["customer_card"] == "Customer"
        assert "export BC_CLIENT_SECRET='s3cret'" in lines
        token = httpx.post(token_url, data={
            "grant_type": "client_credentials", "client_id": "my-app",
            "client_secret": "s3cret", "scope": SCOPE}).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        customers = f"{api}/companies(11111111-2222-3333-4444-555555555555)/customers"
        listed = httpx.get(customers, headers=headers).json()["value"]
        assert [(c["number"], c["displayName"]) for c in listed] == [("K1", "Jan")]
        assert httpx.post(customers, headers=headers,
                          json={"displayName": "B"}).status_code == 503
        assert httpx.post(customers, headers=headers,
                          json={"displayName": "B"}).status_code == 201
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "stopped" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--port", "70000"], "--port 70000"),
    (["--faults", "explode"], "--faults"),
    (["--tenant", ""], "--tenant"),
    (["--page-size", "0"], "--page-size"),
    (["--time-scale", "0"], "--time-scale"),
])
def test_bad_options_are_usage_errors(args: list[str], message: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bc-sandbox", *args]) == exitcodes.USAGE
    assert message in capsys.readouterr().err


def test_unusable_seed_file_names_the_file(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    seed = tmp_path / "bad.yaml"
    seed.write_text("companies:\n  - name: X\n    vendors: []\n", encoding="utf-8")
    assert main(["bc-sandbox", "--port", "0", "--seed", str(seed)]) == exitcodes.ERROR
    err = capsys.readouterr().err
    assert str(seed) in err
    assert "unknown keys vendors" in err
