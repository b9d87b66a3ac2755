"""`ovserve soak` for 60 s against a server it starts itself: the verdict, and that it really
sent traffic of every kind. The runner's own bounds are generous (a request is stuck after
60 s; RSS may grow 10% after warm-up), so the outcome does not depend on the machine's speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from serving.soak.traffic import WEIGHTS
from tests.helpers.server import ROOT


def test_soak_60_seconds(tiny_model_dir: Path, tmp_path: Path) -> None:
    summary = tmp_path / "soak.json"
    result = subprocess.run(
        [sys.executable, "-m", "serving.cli", "soak", "--seconds", "60", "--quiet", "--json", str(summary)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(summary.read_text())
    assert report["passed"] and not report["failures"], report
    assert set(report["sent"]) == set(WEIGHTS), report["sent"]  # every kind (metrics: the server has them on)
    assert all(count > 0 for count in report["sent"].values())
    responses = report["responses"]
    assert responses.get("200", 0) > 0 and responses.get("400", 0) > 0 and responses.get("404", 0) > 0
    assert responses.get("client_closed", 0) > 0
    assert not any(code.startswith("5") for code in responses)
    assert report["rss"]["peak_bytes"] > 0 and report["rss"]["growth"] is not None
    assert report["engine"]["live_requests_cleared_after_s"] is not None and report["engine"]["restarts"] == 0
    assert report["server_log"] == {"exit_code": 0, "error_lines": 0, "tracebacks": 0}
