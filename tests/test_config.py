"""Settings: where the database is when moa.toml does not say."""

from __future__ import annotations

from pathlib import Path

from moa.config import settings_from_dict

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
