"""Settings: where the database is when moa.toml does not say."""

from __future__ import annotations

from pathlib import Path

import pytest

from moa.config import settings_from_dict
from moa.errors import ConfigError

LOCAL = {"server": {"database_url": "sqlite+aiosqlite:///./here.db"}}


def test_the_default_database_is_moa_db_in_xdg_data_home() -> None:
    settings = settings_from_dict({}, {"XDG_DATA_HOME": "/data", "HOME": "/home/ada"})
    assert settings.server.database_url == "sqlite+aiosqlite:////data/moa/moa.db"
    assert settings.data_dir == Path("/data/moa")


def test_without_xdg_data_home_the_database_is_under_local_share() -> None:
    for env in ({"HOME": "/home/ada"}, {"HOME": "/home/ada", "XDG_DATA_HOME": "relative/dir"}):
        settings = settings_from_dict({}, env)
        assert settings.server.database_url == (
            "sqlite+aiosqlite:////home/ada/.local/share/moa/moa.db"
        )


def test_moa_toml_names_another_database() -> None:
    settings = settings_from_dict(LOCAL, {"HOME": "/home/ada"})
    assert settings.server.database_url == "sqlite+aiosqlite:///./here.db"


def test_moa_database_url_overrides_moa_toml_and_the_default() -> None:
    url = "postgresql+asyncpg://moa@db.internal/moa"
    for data in ({}, LOCAL):
        settings = settings_from_dict(data, {"HOME": "/home/ada", "MOA_DATABASE_URL": url})
        assert settings.server.database_url == url


def test_moa_admin_token_overrides_moa_toml_and_a_short_token_is_refused() -> None:
    in_file = {"server": {"admin_token": "t" * 16}}
    assert settings_from_dict(in_file, {}).server.admin_token == "t" * 16
    from_env = settings_from_dict(in_file, {"MOA_ADMIN_TOKEN": "e" * 20})
    assert from_env.server.admin_token == "e" * 20
    assert "e" * 20 not in repr(from_env.server)
    with pytest.raises(ConfigError, match=r"server\.admin_token: must be empty or at least 16"):
        settings_from_dict({"server": {"admin_token": "short"}}, {})
    with pytest.raises(ConfigError, match="MOA_ADMIN_TOKEN: must be empty or at least 16"):
        settings_from_dict({}, {"MOA_ADMIN_TOKEN": "short"})
