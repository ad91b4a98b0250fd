"""``moa.__all__`` lists exactly the public names the package exports."""

from __future__ import annotations

from types import ModuleType

import moa


def test_all_exports_every_public_name_and_nothing_else() -> None:
    public = {
        name
        for name, value in vars(moa).items()
        if not name.startswith("_")
        and not isinstance(value, ModuleType)
        and value is not annotations  # the __future__ import
    }
    assert set(moa.__all__) == public


def test_every_name_in_all_resolves() -> None:
    for name in moa.__all__:
        assert getattr(moa, name) is not None
