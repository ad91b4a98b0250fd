"""`moa keys` finds the same database from every directory (the user data directory by
default), and `moa keys demo` (what `make serve` prints) makes one demo key and reuses it."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx

from tests.server.processes import MoaProcess

MOA = str(Path(sys.executable).parent / "moa")


def moa(*args: str, cwd: Path, data: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``moa ARGS`` in ``cwd`` with no moa.toml and ``data`` as XDG_DATA_HOME."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MOA_")}
    return subprocess.run(
        [MOA, *args],
        cwd=cwd,
        env={**clean, "XDG_DATA_HOME": str(data), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def _dirs(tmp_path: Path, *names: str) -> list[Path]:
    made = [tmp_path / name for name in names]
    for directory in made:
        directory.mkdir()
    return made


def test_a_key_created_in_one_directory_is_listed_from_another(tmp_path: Path) -> None:
    here, there = _dirs(tmp_path, "here", "there")
    data = tmp_path / "data"
    created = moa("keys", "create", "--credits", "7", "--name", "ada", cwd=here, data=data)
    listed = moa("keys", "list", cwd=there, data=data).stdout
    assert "ada" in listed and "7 credits" in listed
    assert created.stdout.strip().splitlines()[-1] not in listed
    assert (data / "moa" / "moa.db").is_file()
    assert stat.S_IMODE((data / "moa").stat().st_mode) == 0o700
    assert not (here / "moa.db").exists() and not (there / "moa.db").exists()


async def test_a_key_created_in_one_directory_works_on_a_server_started_in_another(
    tmp_path: Path,
) -> None:
    here, there = _dirs(tmp_path, "here", "there")
    data = tmp_path / "data"
    created = await asyncio.to_thread(moa, "keys", "create", "--credits", "7", cwd=here, data=data)
    key = created.stdout.split()[-1]
    config = there / "moa.toml"
    config.write_text("[engine]\nmax_retries = 0\n", encoding="utf-8")  # no database_url
    async with (
        MoaProcess(config, cwd=there, env={"XDG_DATA_HOME": str(data)}) as server,
        httpx.AsyncClient(base_url=server.url, timeout=30) as http,
    ):
        usage = await http.get("/api/v1/usage", headers={"Authorization": f"Bearer {key}"})
    assert usage.status_code == 200, usage.text
    assert usage.json()["credits_remaining"] == 7


def test_the_demo_key_is_made_once_kept_private_and_reused(tmp_path: Path) -> None:
    here, there = _dirs(tmp_path, "here", "there")
    data = tmp_path / "data"
    first = moa("keys", "demo", cwd=here, data=data).stdout.strip().splitlines()
    again = moa("keys", "demo", cwd=there, data=data).stdout.strip().splitlines()
    assert first[-1] == again[-1]
    assert "1000 credits" in again[0]
    kept = data / "moa" / "demo-key"
    assert kept.read_text(encoding="utf-8").strip() == first[-1]
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    listed = moa("keys", "list", cwd=here, data=data).stdout.strip().splitlines()
    assert len(listed) == 1 and "demo" in listed[0]


def test_a_database_that_does_not_know_the_kept_demo_key_gets_a_new_one(tmp_path: Path) -> None:
    (here,) = _dirs(tmp_path, "here")
    data = tmp_path / "data"
    first = moa("keys", "demo", cwd=here, data=data).stdout.split()[-1]
    other_database = f"sqlite+aiosqlite:///{tmp_path / 'other.db'}"
    second = moa("keys", "demo", cwd=here, data=data, MOA_DATABASE_URL=other_database)
    assert second.stdout.split()[-1] != first
    assert (data / "moa" / "demo-key").read_text(encoding="utf-8").strip() == second.stdout.split()[
        -1
    ]


def moa_fails(*args: str, cwd: Path, data: Path) -> subprocess.CompletedProcess[str]:
    """``moa ARGS`` that is expected to fail: its result, whatever the exit code."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MOA_")}
    return subprocess.run(
        [MOA, *args],
        cwd=cwd,
        env={**clean, "XDG_DATA_HOME": str(data)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_keys_carry_limits_that_list_shows_and_update_changes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    made = moa(
        "keys", "create", "--credits", "5", "--name", "team",
        "--budget-usd", "2.5", "--models", "fake/alpha, spare/*",
        cwd=tmp_path, data=data,
    ).stdout  # fmt: skip
    key_id, plaintext = made.split()[1], made.strip().splitlines()[-1]
    listed = json.loads(moa("keys", "list", "--json", cwd=tmp_path, data=data).stdout)
    [entry] = listed["data"]
    assert set(entry) == {
        "id", "name", "prefix", "credits", "revoked", "created_at",
        "last_used_at", "budget_usd", "models", "spent_usd",
    }  # fmt: skip
    assert (entry["id"], entry["prefix"], entry["credits"]) == (key_id, plaintext[:12], 5)
    assert (entry["budget_usd"], entry["models"]) == (2.5, ["fake/alpha", "spare/*"])
    assert (entry["revoked"], entry["last_used_at"], entry["spent_usd"]) == (False, None, 0.0)
    assert "models fake/alpha,spare/*" in moa("keys", "list", cwd=tmp_path, data=data).stdout

    changed = moa(
        "keys", "update", key_id, "--budget-usd", "none", "--models", "all",
        cwd=tmp_path, data=data,
    ).stdout  # fmt: skip
    assert changed.strip() == f"{key_id}: budget none, models any"
    [entry] = json.loads(moa("keys", "list", "--json", cwd=tmp_path, data=data).stdout)["data"]
    assert (entry["budget_usd"], entry["models"]) == (None, None)


def test_bad_limits_and_unknown_ids_exit_2_naming_what_is_wrong(tmp_path: Path) -> None:
    data = tmp_path / "data"
    bad = moa_fails("keys", "create", "--credits", "1", "--models", "nope", cwd=tmp_path, data=data)
    assert bad.returncode == 2 and bad.stderr.startswith("invalid_request: models[0]:")
    bad = moa_fails(
        "keys", "create", "--credits", "1", "--budget-usd", "lots", cwd=tmp_path, data=data
    )
    assert bad.returncode == 2 and bad.stderr.startswith("invalid_request: --budget-usd:")
    unknown = moa_fails(
        "keys", "update", "key_000000000000", "--budget-usd", "1", cwd=tmp_path, data=data
    )
    assert unknown.returncode == 2 and unknown.stderr.startswith("not_found:")
    nothing = moa_fails("keys", "update", "key_000000000000", cwd=tmp_path, data=data)
    assert nothing.returncode == 2 and nothing.stderr.startswith("invalid_request:")


def test_a_revoked_key_may_be_topped_up_and_stays_revoked(tmp_path: Path) -> None:
    data = tmp_path / "data"
    key_id = moa("keys", "create", "--credits", "1", cwd=tmp_path, data=data).stdout.split()[1]
    moa("keys", "revoke", key_id, cwd=tmp_path, data=data)
    topped = moa("keys", "top-up", key_id, "--credits", "4", cwd=tmp_path, data=data).stdout
    assert topped.strip() == f"{key_id} now has 5 credits"
    [entry] = json.loads(moa("keys", "list", "--json", cwd=tmp_path, data=data).stdout)["data"]
    assert (entry["credits"], entry["revoked"]) == (5, True)
