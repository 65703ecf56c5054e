"""`custsync demo` end to end on a small data set: it succeeds, and what it tells a new user
to try next exists (it pointed at a seed file that was never shipped)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from custsync.engine import exitcodes
from custsync.engine.cli import main


def test_demo_runs_and_its_suggestions_point_at_real_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "demo"
    assert main(["demo", "--dir", str(folder), "--customers", "20", "--seed", "7"]) == 0
    out = capsys.readouterr().out
    assert "== 4. The next sync is incremental" in out
    # the saved plan holds full contact data: owner-only, like `plan --out` (it was 0644)
    assert (folder / "plan.json").stat().st_mode & 0o777 == 0o600

    config = folder / "custsync.yaml"
    first_line = config.read_text(encoding="utf-8").splitlines()[0]
    schema = first_line.partition("$schema=")[2]
    assert Path(schema).is_file(), first_line  # the editor finds the schema wherever the demo is

    suggestions = out.partition("== Try next")[2]
    for path in re.findall(r"(?:--world|--seed|--config) (\S+)", suggestions):
        assert Path(path).exists(), path
    assert main(["validate", "--config", str(config)]) == exitcodes.OK


def test_served_double_can_be_used_from_another_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`demo --serve` names the token's value: the config's $CUSTSYNC_DEMO_TOKEN was only set
    inside the demo process, so another shell could not plan against the double."""
    folder = tmp_path / "demo"
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from custsync.engine.cli import run; run()",
            "demo",
            "--dir",
            str(folder),
            "--customers",
            "20",
            "--seed",
            "7",
            "--serve",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        # as when started in the background by a shell without job control (CI): SIGINT
        # inherited ignored, so Python would never raise KeyboardInterrupt; Ctrl-C's
        # signal must stop it all the same
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    told: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            told.append(line.strip())
            if line.startswith("Ctrl-C to stop"):
                break
        exports = [line.split()[1] for line in told if line.startswith("export ")]
        assert [name for name, _, _ in (e.partition("=") for e in exports)] == [
            "CUSTSYNC_DEMO_TOKEN"
        ]
        monkeypatch.setenv(*exports[0].split("=", 1))
        config = folder / "custsync.yaml"
        assert f"custsync plan --config {config}" in told
        capsys.readouterr()
        assert main(["plan", "--config", str(config), "--direction", "import"]) == exitcodes.OK
        assert "Plan:" in capsys.readouterr().out
        # and the web console shows the demo's runs
        [url] = [line.split(": ", 1)[1] for line in told if line.startswith("The web console")]
        import httpx

        with httpx.Client(trust_env=False, timeout=30) as client:
            overview = client.get(url)
            assert overview.status_code == 200 and "Overview" in overview.text
            assert "succeeded" in client.get(url + "runs").text
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()  # leave no demo behind for the next tests
            process.communicate()
            raise
    assert process.returncode == 0


def test_demo_with_business_central_as_the_erp(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`custsync demo --erp business-central`: the same demo against the BC double."""
    folder = tmp_path / "demo"
    code = main(["demo", "--erp", "business-central", "--dir", str(folder), "--customers", "30"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "(Business Central double)" in out
    first = out.partition("== 2. Apply")[2].partition("== 3.")[0]
    assert "succeeded:" in first and " 0 failed" in first
    config = (folder / "custsync.yaml").read_text(encoding="utf-8")
    assert "url: bc+http://127.0.0.1:" in config and "client_secret_env:" in config
    from custsync.connectors.bc_double import DEFAULT_SECRET

    assert DEFAULT_SECRET not in config  # the secret itself is not in the file
