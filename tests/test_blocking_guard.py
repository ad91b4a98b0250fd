"""The autouse guard in tests/conftest.py: a test fails when moa's own code makes a blocking
call on a running event loop, and only then. It looks at who made the call, not at how long
a callback took, so a busy machine cannot trip it and blocking test code is not blamed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from blockbuster import BlockingError

from moa.config import load_settings


async def test_moa_reading_a_file_on_the_event_loop_fails_the_test(tmp_path: Path) -> None:
    config = tmp_path / "moa.toml"
    config.write_text('[server]\nhost = "127.0.0.1"\n')  # test code: allowed
    with pytest.raises(BlockingError):
        load_settings(config, env={})  # moa's code, on the loop's thread


async def test_test_code_that_blocks_on_the_event_loop_is_not_blamed() -> None:
    assert os.stat(__file__).st_size > 0  # a blocking call the guard watches for


def test_moa_reading_a_file_outside_an_event_loop_is_fine(tmp_path: Path) -> None:
    config = tmp_path / "moa.toml"
    config.write_text('[server]\nhost = "127.0.0.1"\n')
    assert load_settings(config, env={}).server.host == "127.0.0.1"
