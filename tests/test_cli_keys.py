"""`moa keys` finds the same database from every directory (the user data directory by
default), and `moa keys demo` (what `make serve` prints) makes one demo key and reuses it."""

from __future__ import annotations

import asyncio
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
