"""Property-based requests from the server's own OpenAPI document (schemathesis): no 5xx,
no response outside what the document declares, no invalid request accepted, and no
credit lost however strange the requests were.

The same run by hand, against any moa: ``schemathesis run URL/openapi.json -H
"Authorization: Bearer $MOA_KEY" --checks not_a_server_error,status_code_conformance,
content_type_conformance,response_schema_conformance,negative_data_rejection``."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from tests.server.conftest import Deployment

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
)
CREDITS = 100_000
GENEROUS = {
    "rate_limit_per_minute": 1_000_000,
    "rate_limit_burst": 1_000_000,
    "ip_rate_limit_per_minute": 1_000_000,
    "key_inflight": 64,
}


async def test_generated_requests_find_no_server_error_schema_violation_or_lost_credit(
    deploy: Callable[..., Awaitable[Deployment]], tmp_path: Path
) -> None:
    moa = await deploy(server=GENEROUS, credits=CREDITS)
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{moa.url}/openapi.json",
        "-H",
        f"Authorization: Bearer {moa.key}",
        "--checks",
        ",".join(CHECKS),
        "--phases",
        "coverage,fuzzing",
        "--max-examples",
        "15",
        "--seed",
        "20261126",
        "--workers",
        "1",
        "--suppress-health-check",
        "all",
    ]
    run = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    records = await moa.store.recent_usage(moa.key_id, limit=100_000)
    charged = sum(r.credits_charged for r in records)
    assert await moa.balance() == CREDITS - charged
    assert await moa.store.ledger_total(moa.key_id) == CREDITS - charged
