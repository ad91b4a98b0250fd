"""A key revoked through one replica's admin API is refused by that replica at once and by
another once its ``[server] auth_cache_s`` is up (each process trusts a key it has read for
that long; the bound is shown on a fake clock in tests/store/test_key_cache.py). Real
`moa serve` processes sharing one database, SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import httpx

from moa.testing import ScriptedUpstream

from .processes import MoaProcess, refusal, write_config

TOKEN = "admin-token-for-replicas-0123456789"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


async def test_a_key_revoked_on_one_replica_is_refused_there_at_once_and_by_the_other(
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
        async with (
            httpx.AsyncClient(base_url=one.url, headers=headers, timeout=30) as here,
            httpx.AsyncClient(base_url=other.url, headers=headers, timeout=30) as there,
        ):
            assert [(await user.get("/api/v1/usage")).status_code for user in (here, there)] == [
                200,
                200,
            ]
            revoked = await admin.delete(f"/admin/v1/keys/{created['id']}")
            assert revoked.status_code == 204
            refused_here = await here.get("/api/v1/usage")
            refused_there = await refusal(there, "/api/v1/usage")
        for refused in (refused_here, refused_there):
            assert refused.status_code == 401, refused.text
            assert refused.json()["error"]["code"] == "unauthorized"
        listed = (await admin.get("/admin/v1/keys")).json()["data"]
        assert [k["revoked"] for k in listed if k["id"] == created["id"]] == [True]
