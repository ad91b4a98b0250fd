"""A key revoked through one replica is refused by another on its very next request:
there is no cache of keys, each request reads its key's row. Real `moa serve` processes
sharing one database, SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from moa.testing import ScriptedUpstream

from .processes import MoaProcess, write_config

TOKEN = "admin-token-for-replicas-0123456789"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'moa.db'}"
    url: str = request.getfixturevalue("postgres_database")
    return url


async def test_a_key_revoked_on_one_replica_is_refused_by_the_other_at_once(
    upstream: ScriptedUpstream, shared_database: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "moa.toml", upstream, shared_database)
    env = {"MOA_ADMIN_TOKEN": TOKEN}
    async with (
        MoaProcess(config, env=env) as one,
        MoaProcess(config, env=env) as other,
        httpx.AsyncClient(base_url=one.url, headers=ADMIN, timeout=30) as admin,
    ):
        created = (await admin.post("/admin/v1/keys", json={"name": "r", "credits": 9})).json()
        headers = {"Authorization": f"Bearer {created['key']}"}
        async with httpx.AsyncClient(base_url=other.url, headers=headers, timeout=30) as user:
            assert (await user.get("/api/v1/usage")).status_code == 200
            revoked = await admin.delete(f"/admin/v1/keys/{created['id']}")
            assert revoked.status_code == 204
            refused = await user.get("/api/v1/usage")
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"]["code"] == "unauthorized"
        listed = (await admin.get("/admin/v1/keys")).json()["data"]
        assert [k["revoked"] for k in listed if k["id"] == created["id"]] == [True]
