"""``moa models``: the model catalogue as this configuration sees it."""

from __future__ import annotations

from moa.catalogue import catalogue
from moa.cli.common import ConfigOption, settings_or_exit


def models_command(config: ConfigOption = None) -> None:
    """List the models moa can call with this configuration."""
    settings = settings_or_exit(config)
    for entry in catalogue(settings):
        status = "ready" if entry.ready else f"needs {entry.needs}"
        print(f"{entry.id:<48} {entry.kind:<10} {status}")
