"""docs/ is moa's reference, so it is held to the code: every link resolves, and every
moa.toml key, error code, route, event, command and exported name the code has is written
down (and nothing the code lacks is). Fast and offline: files, models and a subprocess."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import typing
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

import moa
from moa.config import Settings, settings_from_dict
from moa.errors import ERROR_CODES
from moa.types import Event

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
FENCED = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6}) +(.+?) *#*$", re.M)


def prose(path: Path) -> str:
    """The page without its code blocks, where nothing is a link or a heading."""
    return FENCED.sub("", path.read_text(encoding="utf-8"))


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text, lower case, without punctuation."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    found = set()
    for match in HEADING.finditer(prose(path)):
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return frozenset(found)


def links(page: Path) -> Iterator[tuple[str, Path, str]]:
    """(link as written, file it names, anchor) for each link to this repository."""
    for target in LINK.findall(prose(page)):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):
            continue  # https:, mailto:: outside the repository
        path, _, anchor = target.partition("#")
        yield target, (page.parent / path).resolve() if path else page, anchor


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_resolves_to_a_file_and_heading_in_the_repository(page: Path) -> None:
    broken = []
    for target, path, anchor in links(page):
        if not path.is_relative_to(ROOT):
            broken.append(f"{target}: outside the repository")
        elif not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target}: no heading with anchor #{anchor}")
    assert not broken, f"{page.name}: {broken}"


def test_no_page_sends_readers_to_a_contract_outside_the_repository() -> None:
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        assert "../shared" not in text and "DESIGN.md" not in text, page.name


def test_the_readme_quickstart_is_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quickstart = re.search(r"```sh\n(.*?)```", readme, re.S)
    assert quickstart is not None
    commands = [line.partition("#")[0].strip() for line in quickstart.group(1).splitlines()]
    assert commands == ["make serve", "make test"]


# ---- configuration --------------------------------------------------------------------


def toml_default(field: FieldInfo) -> str:
    """How config.md writes a default: `required`, `unset`, or the TOML value."""
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value) if isinstance(value, int) else json.dumps(value)


def settings_keys(model: type[BaseModel], table: str = "") -> dict[tuple[str, str], str]:
    """Every moa.toml key as (table, key) -> default; a table of named entries (providers,
    models, presets) is written ``providers.*``. ``env`` and ``source`` are not keys."""
    keys: dict[tuple[str, str], str] = {}
    for name, field in model.model_fields.items():
        if model is Settings and name in ("env", "source"):
            continue
        inner = field.annotation
        prefix = f"{table}.{name}" if table else name
        if typing.get_origin(inner) is dict:
            inner, prefix = typing.get_args(inner)[1], f"{prefix}.*"
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            keys |= settings_keys(inner, prefix)
        else:
            keys[(table, name)] = toml_default(field)
    return keys


def documented_keys() -> dict[tuple[str, str], str]:
    """config.md's tables: a heading naming a TOML table (`` `[server]` ``) opens one;
    any other heading closes it. Each row gives a key and its default."""
    keys: dict[tuple[str, str], str] = {}
    table = None
    for line in prose(DOCS / "config.md").splitlines():
        heading = re.match(r"#+ .*?`\[(.+?)\]`", line)
        if heading:
            table = re.sub(r'<[^>]*>|"[^"]*"', "*", heading.group(1))
        elif line.startswith("#"):
            table = None
        row = re.match(r"\| `(\w+)` \| (`[^`]*`|\w+)", line)
        if table is not None and row:
            keys[(table, row.group(1))] = row.group(2).strip("`")
    return keys


def test_every_moa_toml_key_is_in_the_config_reference_with_its_default() -> None:
    code, docs = settings_keys(Settings), documented_keys()
    assert ("server.credits", "blend") in code and ("providers.*", "kind") in code
    assert sorted(k for k in code if k not in docs) == [], "keys missing from docs/config.md"
    assert sorted(k for k in docs if k not in code) == [], "docs/config.md names no such key"
    wrong = {
        f"{t}.{k}": (docs[(t, k)], code[(t, k)]) for t, k in code if docs[(t, k)] != code[(t, k)]
    }
    assert wrong == {}, "documented default != code default"


def test_the_config_reference_example_is_valid_settings() -> None:
    import tomllib

    example = re.search(r"```toml\n(.*?)```", (DOCS / "config.md").read_text(), re.S)
    assert example is not None
    settings = settings_from_dict(tomllib.loads(example.group(1)), env={})
    assert settings.presets["research"].strategy == "council"


# ---- errors, routes, events, commands, names ---------------------------------------------


def test_every_error_code_is_on_the_errors_page_with_its_status() -> None:
    rows = re.findall(r"^\| `(\w+)` \| (\d{3}) \|", prose(DOCS / "errors.md"), re.M)
    documented = dict(rows)
    assert documented == {code: str(status) for code, (status, _) in ERROR_CODES.items()}


def test_every_route_of_the_openapi_document_is_in_the_docs() -> None:
    from moa.server.app import create_app

    document = create_app(settings_from_dict({}, env={})).openapi()
    routes = {
        f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item
    }
    assert "POST /api/v1/blend" in routes
    text = "\n".join(prose(page) for page in DOCS.glob("*.md"))
    assert sorted(r for r in routes if f"`{r}`" not in text) == []


def test_every_event_is_on_the_events_page() -> None:
    members = typing.get_args(typing.get_args(Event)[0])
    names = [member.model_fields["event"].default for member in members]
    assert "source" in names and "done" in names
    page = prose(DOCS / "events.md")
    assert [n for n in names if f"| `{n}` |" not in page or f"### `{n}`" not in page] == []


def test_the_cli_page_shows_every_commands_current_help() -> None:
    script = ROOT / "scripts" / "cli_docs.py"
    result = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_every_command_is_explained_above_its_generated_help() -> None:
    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    written, _, generated = page.partition("<!-- generated by scripts/cli_docs.py")
    commands = re.findall(r"^### `(moa(?: [\w-]+)*) --help`$", generated, re.M)
    assert "moa keys create" in commands
    explained = {slug(heading) for _, heading in HEADING.findall(FENCED.sub("", written))}
    assert [c for c in commands[1:] if slug(f"`{c}`") not in explained] == []


def test_every_name_moa_exports_is_on_the_python_page() -> None:
    page = prose(DOCS / "python.md")
    assert [name for name in moa.__all__ if f"moa.{name}" not in page] == []
