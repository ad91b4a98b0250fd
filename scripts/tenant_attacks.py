"""Issue 8's attacks, reproduced against a real ``moa serve`` built from any source tree.

One key must never hurt another, and no crash may lose a credit. This script plays the
attacker of issue 8 against ``moa serve`` started as a child process from the tree given by
``--moa-src`` (with that tree's own ``.venv``), calling this checkout's scripted upstream on
loopback, and writes what it measured as JSON:

    .venv/bin/python scripts/tenant_attacks.py --moa-src . --out bench/security/after.json
    .venv/bin/python scripts/tenant_attacks.py --moa-src ../before --out bench/security/before.json

Cases (``--cases`` runs a subset): breakers, model_ids, amplification, keyless, starvation,
forwarded_for, crash, smaller. Config keys the tree under test does not know (older trees
lack ``key_inflight``, ``reservation_lease_s``, ...) are left out of its moa.toml and
listed under ``config_keys_skipped``. Every wait has a deadline; every process this script
starts is stopped in a ``finally``. The whole run takes a few minutes per tree.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import signal
import socket
import sqlite3
import string
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from starlette.types import Receive, Scope, Send

from moa.testing import Behavior, ScriptedUpstream
from moa.testing.upstream import UpstreamApp

Result = dict[str, Any]
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
OPERATOR_GEMINI_KEY = "AIza-operator-secret-key"
SECRET_BANNER = "internal-admin-panel token=s3cr3t-7f9a password=hunter2"
OLLAMA_PORT = 11434
CASE_BUDGET_S = 150.0
RUN_BUDGET_S = 330.0


# ---- the tree under test -------------------------------------------------------------------


@dataclass(frozen=True)
class Tree:
    """A moa source tree with its own venv; ``known`` lists the config keys it accepts."""

    src: Path
    python: Path
    commit: str
    src_commit: str  # the last commit that changed src/: what the server ran
    known: Mapping[str, frozenset[str]]

    @classmethod
    def at(cls, src: Path) -> Tree:
        src = src.resolve()
        python = src / ".venv" / "bin" / "python"
        if not python.exists():
            raise SystemExit(f"{python} is missing: run `make install` in {src}")
        probe = (
            "import json; from moa.config import ServerConfig, EngineConfig, ProviderConfig; "
            "print(json.dumps({n: list(c.model_fields) for n, c in "
            "[('server', ServerConfig), ('engine', EngineConfig), ('provider', ProviderConfig)]}))"
        )
        out = _run([str(python), "-c", probe], cwd=src)
        git = ["git", "-C", str(src), "log", "-1", "--format=%H"]
        commit = _run(git, cwd=src).strip()
        src_commit = _run([*git, "--", "src"], cwd=src).strip()
        known = {name: frozenset(keys) for name, keys in json.loads(out).items()}
        return cls(src, python, commit, src_commit, known)

    def moa(self, *args: str) -> list[str]:
        """argv running this tree's ``moa`` console script with its venv's python."""
        return [str(self.python), str(self.src / ".venv" / "bin" / "moa"), *args]


def _run(argv: list[str], cwd: Path, timeout: float = 60) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[:3]} failed: {done.stderr[-2000:]}")
    return done.stdout


# ---- the scripted upstream, recording raw paths --------------------------------------------


class PathRecordingApp(UpstreamApp):
    """The scripted upstream, also remembering every raw path and the key sent with it, so
    a model id that escapes its URL segment shows where it landed."""

    def __init__(self, default: Behavior) -> None:
        super().__init__(default)
        self.paths: list[dict[str, str | None]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            raw = scope.get("raw_path") or scope["path"].encode()
            self.paths.append(
                {
                    "path": raw.decode("latin-1")[:300],
                    "api_key": headers.get("x-goog-api-key") or headers.get("authorization"),
                }
            )
        await super().__call__(scope, receive, send)


def start_upstream() -> tuple[ScriptedUpstream, PathRecordingApp]:
    """Unscripted models answer 404 ``model not found``, as real providers do."""
    default = Behavior(status=404, error_message="model not found")
    upstream = ScriptedUpstream(default=default)
    app = PathRecordingApp(default)
    upstream.app = app
    upstream.start()
    for name in ("alpha", "beta", "gamma", "delta", "eps", "zeta", "y"):
        upstream.script(name, content=f"{name} says Paris.")
    return upstream, app


class SecretListener:
    """A private service on a keyless built-in's port. The model a call names picks its
    reply: ``openai-error`` a 404 in OpenAI's error shape, ``plain`` a text/plain 500,
    ``answer`` a 200 chat completion; each carries the secret banner."""

    def __init__(self, port: int) -> None:
        self.hits: list[dict[str, str | None]] = []
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                model = ""
                with contextlib.suppress(ValueError, AttributeError):
                    model = str(json.loads(self.rfile.read(length) or b"{}").get("model"))
                hits.append({"path": self.path, "authorization": self.headers.get("authorization")})
                status, kind, body = _secret_reply(model)
                self.send_response(status)
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> SecretListener:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _secret_reply(model: str) -> tuple[int, str, bytes]:
    if model == "plain":
        return 500, "text/plain", SECRET_BANNER.encode()
    if model == "answer":
        message = {"role": "assistant", "content": SECRET_BANNER}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
        reply = {"id": "x", "object": "chat.completion", "created": 0, "model": model}
        return (
            200,
            "application/json",
            json.dumps(reply | {"choices": [choice], "usage": usage}).encode(),
        )
    error = {"error": {"message": SECRET_BANNER, "type": "not_found", "code": 404}}
    return 404, "application/json", json.dumps(error).encode()


# ---- moa serve as a child process ----------------------------------------------------------


@dataclass
class Key:
    id: str
    secret: str


@dataclass
class MoaServer:
    """``moa serve`` from the tree under test, on its own port, database and moa.toml."""

    tree: Tree
    workdir: Path
    config: Path
    database: Path
    process: subprocess.Popen[bytes] | None = None
    url: str = ""
    restarts: int = 0

    async def start(self) -> None:
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.process = await asyncio.to_thread(self._spawn, port)
        await self._ready(within=60)

    def _spawn(self, port: int) -> subprocess.Popen[bytes]:
        argv = self.tree.moa("serve", "--config", str(self.config), "--port", str(port))
        self.restarts += 1
        with (self.workdir / f"serve.{self.restarts}.log").open("wb") as log:
            return subprocess.Popen(
                argv, cwd=self.workdir, env=_child_env(self.workdir), stdout=log, stderr=log
            )

    async def _ready(self, within: float) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=2) as http:
            deadline = time.monotonic() + within
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(f"moa serve exited: {self.log_tail()}")
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/healthz")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise TimeoutError(f"moa serve not ready within {within} s: {self.log_tail()}")

    def log_tail(self, chars: int = 1500) -> str:
        logs = sorted(self.workdir.glob("serve.*.log"))
        return logs[-1].read_text(errors="replace")[-chars:] if logs else ""

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def signal(self, number: signal.Signals) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(number)

    async def exited(self, within: float = 30) -> int | None:
        """The exit status, or None if the process still runs after ``within`` seconds."""
        process = self.process
        if process is None:
            return None
        with contextlib.suppress(subprocess.TimeoutExpired):
            return await asyncio.to_thread(process.wait, within)
        return None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    async def create_key(self, credits: int, name: str = "tenant") -> Key:
        argv = self.tree.moa("keys", "create", "--credits", str(credits), "--name", name)
        argv += ["--config", str(self.config)]
        out = await asyncio.to_thread(_run, argv, self.workdir)
        lines = out.strip().splitlines()
        return Key(id=lines[0].split()[1], secret=lines[-1].strip())

    def client(self, key: Key | None = None, timeout: float = 60) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {key.secret}"} if key else {}
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout, limits=limits)

    # what the operator pays: memory, CPU, disk
    def rss_kb(self) -> int | None:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return None

    def cpu_s(self) -> float | None:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return None

    def db_bytes(self) -> Result:
        """On disk (the file and its WAL) and in use (pages of the committed database)."""
        files = [self.database, *self.database.parent.glob(self.database.name + "-*")]
        with contextlib.closing(sqlite3.connect(self.database, timeout=10)) as db:
            pages = db.execute("pragma page_count").fetchone()[0]
            size = db.execute("pragma page_size").fetchone()[0]
        on_disk = sum(f.stat().st_size for f in files if f.exists())
        return {"on_disk": on_disk, "in_use": pages * size}

    def ledger(self, key: Key) -> Result:
        """Balance, ledger sum, usage records and open reservations of one key."""
        with contextlib.closing(sqlite3.connect(self.database, timeout=10)) as db:
            balance = db.execute("select credits from api_keys where id=?", (key.id,)).fetchone()
            total = db.execute(
                "select coalesce(sum(amount), 0) from ledger_entries where key_id=?", (key.id,)
            ).fetchone()
            usage = db.execute(
                "select route, status, credits_charged from usage_records where key_id=? "
                "order by id",
                (key.id,),
            ).fetchall()
            tables = {r[0] for r in db.execute("select name from sqlite_master")}
            held = None
            if "reservations" in tables:
                held = db.execute(
                    "select coalesce(sum(credits), 0) from reservations where key_id=?", (key.id,)
                ).fetchone()[0]
        return {
            "credits": balance[0] if balance else None,
            "ledger_sum": total[0],
            "usage_records": _usage_summary(usage),
            "reserved_in_reservations_table": held,
        }


def _usage_summary(rows: list[tuple[str, str, int]]) -> Result:
    """Usage records counted by status, with the credits they charged."""
    statuses: dict[str, int] = {}
    for _, status, _ in rows:
        statuses[status] = statuses.get(status, 0) + 1
    return {"count": len(rows), "by_status": statuses, "credits_charged": sum(r[2] for r in rows)}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _child_env(workdir: Path) -> dict[str, str]:
    """No MOA_* or provider keys leak in; the user data directory is the run's own."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MOA_", "OTEL_")) and not k.endswith("_API_KEY")
    }
    return {**env, "HOME": str(workdir), "XDG_DATA_HOME": str(workdir / "data")}


# ---- the lab: one upstream, many servers ---------------------------------------------------


@dataclass
class Lab:
    tree: Tree
    upstream: ScriptedUpstream
    recorder: PathRecordingApp
    root: Path
    servers: list[MoaServer] = field(default_factory=list)
    skipped: set[str] = field(default_factory=set)

    async def serve(
        self,
        name: str,
        *,
        server: Mapping[str, Any] | None = None,
        engine: Mapping[str, Any] | None = None,
        providers: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> MoaServer:
        """Start ``moa serve`` with a moa.toml of these sections, keys this tree lacks left out."""
        workdir = self.root / name
        workdir.mkdir(parents=True)
        database = workdir / "moa.db"
        sections: dict[str, Mapping[str, Any]] = {
            **{f"providers.{n}": p for n, p in self._providers(providers).items()},
            "engine": {"retry_backoff_s": 0.01, "retry_backoff_max_s": 0.05, **(engine or {})},
            "server": {"database_url": f"sqlite+aiosqlite:///{database}", **(server or {})},
        }
        config = workdir / "moa.toml"
        config.write_text(self._toml(sections), encoding="utf-8")
        moa = MoaServer(self.tree, workdir, config, database)
        self.servers.append(moa)
        await moa.start()
        return moa

    def _providers(
        self, extra: Mapping[str, Mapping[str, Any]] | None
    ) -> dict[str, Mapping[str, Any]]:
        up = self.upstream
        openai = {"kind": "openai", "base_url": up.base_url, "api_key": "sk-operator"}
        providers: dict[str, Mapping[str, Any]] = {
            "fake": openai,
            "spare": openai,
            "gemini": {
                "kind": "gemini",
                "base_url": up.gemini_base_url,
                "api_key": OPERATOR_GEMINI_KEY,
            },
        }
        for name, fields in (extra or {}).items():
            providers[name] = {**providers.get(name, openai), **fields}
        return providers

    def _toml(self, sections: Mapping[str, Mapping[str, Any]]) -> str:
        lines: list[str] = []
        for section, values in sections.items():
            kind = "provider" if section.startswith("providers.") else section
            lines.append(f"[{section}]")
            for key, value in values.items():
                if key not in self.tree.known.get(kind, frozenset()):
                    self.skipped.add(f"{kind}.{key}")
                    continue
                lines.append(f"{key} = {json.dumps(value)}")
            lines.append("")
        return "\n".join(lines)

    def knows(self, dotted: str) -> bool:
        kind, _, key = dotted.partition(".")
        return key in self.tree.known.get(kind, frozenset())

    def stop(self) -> None:
        for moa in self.servers:
            moa.stop()


# ---- reading answers -----------------------------------------------------------------------


def brief(response: httpx.Response) -> Result:
    """Status, error code and message (cut short), and the sources' outcomes."""
    out: Result = {"status": response.status_code}
    try:
        body = response.json()
    except ValueError:
        out["body"] = response.text[:300]
        return out
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        out["code"] = body["error"].get("code")
        out["message"] = str(body["error"].get("message"))[:300]
    elif isinstance(body, dict) and "sources" in body:
        out["sources"] = [
            {
                "model": str(s.get("model"))[:60],
                "status": s.get("status"),
                "error": (str(s["error"])[:200] if s.get("error") else None),
            }
            for s in body["sources"]
        ]
        out["credits_charged"] = body.get("credits_charged")
    elif isinstance(body, dict):
        out["detail"] = json.dumps(body)[:300]
    return out


def blend(*models: Any, **fields: Any) -> Result:
    return {"models": list(models), "messages": QUESTION, **fields}


def random_id(length: int) -> str:
    return "".join(random.choices(string.ascii_lowercase + string.digits, k=length))


async def post_raw(http: httpx.AsyncClient, path: str, raw: bytes) -> httpx.Response:
    return await http.post(path, content=raw, headers={"content-type": "application/json"})


async def wait_until(check: Callable[[], bool], within: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(step)
    return check()


# ---- 1. breakers opened by one key ---------------------------------------------------------


async def case_breakers(lab: Lab) -> Result:
    moa = await lab.serve("breakers")
    attacker, victim = await moa.create_key(1000), await moa.create_key(1000)
    up = lab.upstream
    attacks: list[tuple[str, str, str, Callable[[], bytes]]] = [
        ("timeout_1e-9", "alpha", "beta", lambda: _json(source_timeout_s=1e-9, models=AB)),
        ("lone_surrogate", "gamma", "delta", _surrogate_body),
        ("timeout_1s_on_slow_model", "eps", "zeta", lambda: _json(source_timeout_s=1, models=EZ)),
    ]
    out: Result = {}
    async with moa.client(attacker) as bad, moa.client(victim) as good:
        for label, first, second, body in attacks:
            if label.startswith("timeout_1s"):
                up.script(first, latency_ms=1500, content="slow")
                up.script(second, latency_ms=1500, content="slow")
            tries = [brief(await post_raw(bad, "/api/v1/blend", body())) for _ in range(3)]
            up.script(first, content=f"{first} says Paris.")
            up.script(second, content=f"{second} says Paris.")
            calls = len(up.requests)
            answer = await good.post("/api/v1/blend", json=blend(f"fake/{first}", f"fake/{second}"))
            out[label] = {
                "attacker": tries,
                "victim": brief(answer),
                "victim_upstream_calls": len(up.requests) - calls,
            }
    out["attacker_ledger"] = moa.ledger(attacker)
    return out


AB = ["fake/alpha", "fake/beta"]
# The per-key and per-IP limits stay out of the way where a case is about something else.
LOOSE_LIMITS = {
    "rate_limit_per_minute": 10**6,
    "rate_limit_burst": 10**6,
    "ip_rate_limit_per_minute": 10**6,
}
EZ = ["fake/eps", "fake/zeta"]


def _json(**fields: Any) -> bytes:
    return json.dumps({"messages": QUESTION, **fields}).encode()


def _surrogate_body() -> bytes:
    """Raw JSON text with an escaped lone surrogate, as any client may send it."""
    return b'{"models": ["fake/gamma", "fake/delta"], "messages": [{"role": "user", "content": "hi \\ud800"}]}'  # noqa: E501


# ---- 2. unbounded model ids ----------------------------------------------------------------


async def case_model_ids(lab: Lab) -> Result:
    moa = await lab.serve("model_ids", server=LOOSE_LIMITS)
    key = await moa.create_key(100_000)
    out: Result = {"before": await _footprint(moa, key)}
    async with moa.client(key, timeout=120) as http:
        huge = [blend(f"fake/{random_id(200_000)}", "fake/missing") for _ in range(50)]
        statuses = await _post_all(http, huge, concurrency=5)
        out["huge_ids_200kB_x50"] = {"statuses": _count(statuses)}
        out["after_huge_ids"] = await _footprint(moa, key)
        legal = [blend(f"fake/{random_id(200)}", "fake/missing") for _ in range(50)]
        out["legal_ids_200_chars_x50"] = {"statuses": _count(await _post_all(http, legal, 5))}
        out["after_legal_ids"] = await _footprint(moa, key)
        out["gemini_dot_dot"] = await _gemini_escape(lab, http)
    out["ledger"] = moa.ledger(key)
    return out


async def _footprint(moa: MoaServer, key: Key) -> Result:
    async with moa.client(key, timeout=60) as http:
        metrics = (await http.get("/metrics")).text
    labels = set(re.findall(r'model="([^"]*)"', metrics))
    return {
        "metrics_bytes": len(metrics.encode()),
        "distinct_model_labels": len(labels),
        "rss_kb": moa.rss_kb(),
        "db_bytes": moa.db_bytes(),
    }


async def _post_all(http: httpx.AsyncClient, bodies: list[Result], concurrency: int) -> list[int]:
    gate = asyncio.Semaphore(concurrency)

    async def one(body: Result) -> int:
        async with gate:
            return (await http.post("/api/v1/blend", json=body)).status_code

    return list(await asyncio.gather(*(one(b) for b in bodies)))


def _count(statuses: list[int]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in statuses:
        counts[str(status)] = counts.get(str(status), 0) + 1
    return counts


async def _gemini_escape(lab: Lab, http: httpx.AsyncClient) -> Result:
    seen = len(lab.recorder.paths)
    model = "gemini/../../../admin/keys"
    answer = await http.post(
        "/api/v1/blend", json=blend(model, "fake/alpha", synthesizer="fake/alpha")
    )
    paths = [p for p in lab.recorder.paths[seen:] if not (p["path"] or "").startswith("/v1/chat")]
    return {
        "model": model,
        "answer": brief(answer),
        "upstream_paths": [p["path"] for p in paths],
        "operator_key_sent_there": any(p["api_key"] == OPERATOR_GEMINI_KEY for p in paths),
    }


# ---- 3. amplification ----------------------------------------------------------------------


async def case_amplification(lab: Lab) -> Result:
    moa = await lab.serve("amplification", engine={"breaker_failures": 1000})
    key = await moa.create_key(1000)
    up = lab.upstream
    sources = [
        {"model": f"fake/a{i}-0000", "fallback": [f"fake/a{i}-{j:04d}" for j in range(1, 1001)]}
        for i in range(6)
    ]
    body = json.dumps(blend(*sources)).encode()
    out: Result = {}
    async with moa.client(key, timeout=120) as http:
        calls, started = len(up.requests), time.monotonic()
        answer = await post_raw(http, "/api/v1/blend", body)
        out["many_fallbacks"] = {
            "request_bytes": len(body),
            "answer": brief(answer) | {"sources": None},
            "upstream_calls": len(up.requests) - calls,
            "seconds": round(time.monotonic() - started, 2),
        }
        out["largest_allowed_failing"] = await _largest_allowed(up, http)
    out["ledger"] = moa.ledger(key)
    return out


async def _largest_allowed(up: ScriptedUpstream, http: httpx.AsyncClient) -> Result:
    """Today's limits at their maximum, every model failing with a retryable 500."""
    names = [f"m{i}f{j}" for i in range(6) for j in range(6)] + ["syn", "syn2"]
    for name in names:
        up.script(name, status=500, error_message="overloaded")
    sources = [
        {"model": f"fake/m{i}f0", "fallback": [f"fake/m{i}f{j}" for j in range(1, 6)]}
        for i in range(6)
    ]
    body = blend(*sources, synthesizer={"model": "fake/syn", "fallback": ["fake/syn2"]})
    calls = len(up.requests)
    answer = await http.post("/api/v1/blend", json=body)
    return {
        "request_bytes": len(json.dumps(body)),
        "answer": brief(answer) | {"sources": None},
        "upstream_calls": len(up.requests) - calls,
    }


# ---- 4. keyless built-ins ------------------------------------------------------------------


async def case_keyless(lab: Lab) -> Result:
    moa = await lab.serve("keyless")
    key = await moa.create_key(1000)
    out: Result = {}
    async with moa.client(key, timeout=120) as http:
        out["ollama"] = await _ollama(http)
        cpu, started = moa.cpu_s(), time.monotonic()
        chat = {"model": "local/smollm2", "messages": QUESTION, "max_tokens": 8}
        answer = await http.post("/api/v1/chat", json=chat)
        spent = moa.cpu_s()
        out["local_smollm2_undeclared"] = {
            "answer": brief(answer),
            "content": str(answer.json().get("content", ""))[:80] if answer.is_success else None,
            "seconds": round(time.monotonic() - started, 2),
            "server_cpu_s": round(spent - cpu, 2) if spent is not None and cpu else None,
        }
    out["ledger"] = moa.ledger(key)
    return out


async def _ollama(http: httpx.AsyncClient) -> Result:
    try:
        listener = SecretListener(OLLAMA_PORT)
    except OSError as exc:
        return {"skipped": f"port {OLLAMA_PORT} is busy: {exc}"}
    out: Result = {}
    with listener:
        for shape in ("openai-error", "plain", "answer"):
            chat = {"model": f"ollama/{shape}", "messages": QUESTION}
            answer = await http.post("/api/v1/chat", json=chat)
            out[f"chat_{shape}"] = brief(answer) | {
                "secret_reached_client": SECRET_BANNER in answer.text
            }
        mixed = await http.post(
            "/api/v1/blend",
            json=blend("ollama/openai-error", "fake/alpha", synthesizer="fake/alpha"),
        )
        out["blend_openai-error"] = brief(mixed) | {
            "secret_reached_client": SECRET_BANNER in mixed.text
        }
    out["local_service_hits"] = len(listener.hits)
    out["authorization_sent"] = sorted({str(h["authorization"]) for h in listener.hits})
    return out


# ---- 5. slot starvation --------------------------------------------------------------------


async def case_starvation(lab: Lab) -> Result:
    moa = await lab.serve(
        "starvation",
        server=LOOSE_LIMITS,
        providers={"fake": {"max_concurrency": 40}},
    )
    attacker, victim = await moa.create_key(100_000), await moa.create_key(1000)
    up = lab.upstream
    up.script("stall1", stall=True)
    up.script("stall2", stall=True)
    stats: Result = {"streams_opened": 0, "refused": {}}
    stop = asyncio.Event()
    async with moa.client(attacker, timeout=60) as bad, moa.client(victim, timeout=60) as good:
        workers = [asyncio.create_task(_hold_streams(bad, stop, stats)) for _ in range(70)]
        try:

            def decided() -> bool:
                return bool(stats["streams_opened"] + sum(stats["refused"].values()) >= 70)

            def stalls() -> int:
                return len(up.calls("stall1")) + len(up.calls("stall2"))

            await wait_until(decided, within=20)
            await wait_until(lambda: stalls() >= min(40, 2 * stats["streams_opened"]), 20)
            stats["upstream_stalled_calls_when_victim_asked"] = stalls()
            started = time.monotonic()
            try:
                async with asyncio.timeout(45):
                    answer = await good.post("/api/v1/blend", json=blend(*AB))
                victim_result = brief(answer)
            except TimeoutError:
                victim_result = {"status": None, "note": "no answer within 45 s"}
            stats["victim"] = victim_result
            stats["victim_seconds"] = round(time.monotonic() - started, 2)
        finally:
            stop.set()
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
    return stats


async def _hold_streams(http: httpx.AsyncClient, stop: asyncio.Event, stats: Result) -> None:
    """Keep one stalled streaming blend open at all times (its own 10 s source timeout)."""
    body = blend("fake/stall1", "fake/stall2", stream=True, source_timeout_s=10)
    while not stop.is_set():
        try:
            async with http.stream("POST", "/api/v1/blend", json=body) as response:
                if response.status_code != 200:
                    refused = stats["refused"]
                    refused[str(response.status_code)] = (
                        refused.get(str(response.status_code), 0) + 1
                    )
                    await asyncio.sleep(1)
                    continue
                stats["streams_opened"] += 1
                async for _ in response.aiter_bytes():
                    pass
        except httpx.HTTPError:
            await asyncio.sleep(0.2)


# ---- 6. X-Forwarded-For from loopback ------------------------------------------------------


async def case_forwarded_for(lab: Lab) -> Result:
    moa = await lab.serve("forwarded_for", server={"ip_rate_limit_per_minute": 10})
    out: Result = {"ip_rate_limit_per_minute": 10}
    async with moa.client(None, timeout=30) as http:
        forged = []
        for _ in range(30):
            headers = {
                "Authorization": f"Bearer moa_sk_{random_id(43)}",
                "X-Forwarded-For": ".".join(str(random.randint(1, 254)) for _ in range(4)),
            }
            forged.append((await http.get("/api/v1/usage", headers=headers)).status_code)
        out["guesses_with_random_xff"] = _count(forged)
        plain = []
        for _ in range(12):
            headers = {"Authorization": f"Bearer moa_sk_{random_id(43)}"}
            plain.append((await http.get("/api/v1/usage", headers=headers)).status_code)
        out["then_guesses_without_xff"] = _count(plain)
    return out


# ---- 7. crashes and shutdown ---------------------------------------------------------------


STUCK_BLEND = blend("fake/alpha", "fake/stuck", synthesizer="fake/alpha")


async def case_crash(lab: Lab) -> Result:
    lab.upstream.script("stuck", stall=True)
    moa = await lab.serve("crash", server={"reservation_lease_s": 1, "shutdown_grace_s": 2})
    out: Result = {
        "reservation_lease_s": 1 if lab.knows("server.reservation_lease_s") else "unsupported",
        "shutdown_grace_s": 2 if lab.knows("server.shutdown_grace_s") else "unsupported",
    }
    key = await moa.create_key(20)
    out["sigkill"] = await _sigkill_mid_blend(lab, moa, key)
    late = await moa.create_key(20)
    out["sigterm"] = await _sigterm_mid_stream(lab, moa, late)
    return out


async def _sigkill_mid_blend(lab: Lab, moa: MoaServer, key: Key) -> Result:
    out: Result = {"credits_at_start": moa.ledger(key)["credits"]}
    stuck = len(lab.upstream.calls("stuck"))
    async with moa.client(key, timeout=60) as http:
        task = asyncio.create_task(http.post("/api/v1/blend", json=STUCK_BLEND))
        await wait_until(lambda: len(lab.upstream.calls("stuck")) > stuck, within=15)
        out["mid_blend"] = moa.ledger(key)
        moa.signal(signal.SIGKILL)
        await moa.exited()
        results = await asyncio.gather(task, return_exceptions=True)
        out["client_saw"] = type(results[0]).__name__
    out["after_kill"] = moa.ledger(key)
    await moa.start()
    await wait_until(lambda: moa.ledger(key)["credits"] == 20, within=10, step=0.2)
    out["after_restart_10s"] = moa.ledger(key)
    return out


async def _sigterm_mid_stream(lab: Lab, moa: MoaServer, key: Key) -> Result:
    out: Result = {"credits_at_start": moa.ledger(key)["credits"]}
    frames: list[str] = []
    signalled = False
    ending = "stream ended"
    async with moa.client(key, timeout=60) as http:
        try:
            async with asyncio.timeout(30):
                body = {**STUCK_BLEND, "stream": True}
                async with http.stream("POST", "/api/v1/blend", json=body) as response:
                    async for line in response.aiter_lines():
                        if line.startswith("data: "):
                            frames.append(line[6:])
                            if not signalled and '"source"' in line:
                                signalled = True
                                out["mid_stream"] = moa.ledger(key)
                                moa.signal(signal.SIGTERM)
        except (httpx.HTTPError, TimeoutError) as exc:
            ending = f"{type(exc).__name__}: {exc}"[:200]
    out["exit_status"] = await moa.exited(within=30)
    out["frames_after_signal"] = [f[:160] for f in frames[1:]]
    events = [json.loads(f) for f in frames if f.startswith("{")]
    out["error_event"] = next((e for e in events if e.get("event") == "error"), None)
    out["ended_with_done"] = bool(frames) and frames[-1] == "[DONE]"
    out["ending"] = ending
    out["after_exit"] = moa.ledger(key)
    return out


# ---- 8. the smaller ones -------------------------------------------------------------------


async def case_smaller(lab: Lab) -> Result:
    moa = await lab.serve("smaller")
    key, poor = await moa.create_key(1000), await moa.create_key(1)
    lab.upstream.script("dead", status=500, error_message="down")
    out: Result = {}
    async with moa.client(key) as http, moa.client(poor) as broke:
        out["parse_error"] = {
            f"{path} {raw.decode()}": brief(await post_raw(http, path, raw))
            for path in ("/api/v1/blend", "/api/v1/chat", "/api/v1/judge", "/v1/chat/completions")
            for raw in (b"{bad", b"[1]")
        }
        out["empty_body"] = {
            path: brief(await post_raw(http, path, b""))
            for path in ("/api/v1/blend", "/api/v1/chat", "/v1/chat/completions")
        }
        document = (await http.get("/openapi.json")).json()
        responses = document["paths"]["/api/v1/blend"]["post"]["responses"]
        out["openapi_blend"] = {
            "statuses": sorted(responses),
            "mentions_422_anywhere": "422" in json.dumps(document["paths"]),
            "declares_event_stream": "text/event-stream" in json.dumps(responses.get("200", {})),
        }
        invalid = await http.post("/api/v1/blend", json=blend(*AB, layers=9))
        unpaid = await broke.post("/api/v1/blend", json=blend(*AB))
        for name, response in (("on_400", invalid), ("on_402", unpaid)):
            out[f"rate_limit_headers_{name}"] = {
                "status": response.status_code,
                "headers": sorted(h for h in response.headers if h.startswith("x-ratelimit")),
            }
        first_fails = await http.post("/api/v1/blend", json=blend("fake/dead", "fake/alpha"))
        out["first_model_fails_no_synthesizer"] = brief(first_fails)
    return out


# ---- running it all ------------------------------------------------------------------------

CASES: dict[str, Callable[[Lab], Awaitable[Result]]] = {
    "breakers": case_breakers,
    "model_ids": case_model_ids,
    "amplification": case_amplification,
    "keyless": case_keyless,
    "starvation": case_starvation,
    "forwarded_for": case_forwarded_for,
    "crash": case_crash,
    "smaller": case_smaller,
}


async def run_cases(lab: Lab, names: list[str]) -> Result:
    results: Result = {}
    started = time.monotonic()
    for name in names:
        left = RUN_BUDGET_S - (time.monotonic() - started)
        if left <= 5:
            results[name] = {"skipped": "the run's time budget is spent"}
            continue
        began = time.monotonic()
        try:
            async with asyncio.timeout(min(CASE_BUDGET_S, left)):
                results[name] = await CASES[name](lab)
        except Exception as exc:  # one broken case must not lose the others' figures
            results[name] = {"failed": f"{type(exc).__name__}: {exc}"[:2000]}
        finally:
            for moa in lab.servers:
                moa.stop()
        results[name]["case_seconds"] = round(time.monotonic() - began, 1)
        print(f"{name}: {results[name]['case_seconds']} s", file=sys.stderr, flush=True)
    return results


@contextlib.contextmanager
def lab_for(tree: Tree) -> Iterator[Lab]:
    upstream, recorder = start_upstream()
    with tempfile.TemporaryDirectory(prefix="moa-attacks-") as root:
        lab = Lab(tree, upstream, recorder, Path(root))
        try:
            yield lab
        finally:
            lab.stop()
            upstream.stop()


async def main_async(args: argparse.Namespace) -> Result:
    tree = await asyncio.to_thread(Tree.at, args.moa_src)
    started = time.monotonic()
    with lab_for(tree) as lab:
        cases = await run_cases(lab, args.cases)
        skipped = sorted(lab.skipped)
    return {
        "moa_src": tree.src.name,
        "commit": tree.commit,
        "src_commit": tree.src_commit,
        "config_keys_skipped": skipped,
        "seconds": round(time.monotonic() - started, 1),
        "cases": cases,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--moa-src", type=Path, required=True, help="moa source tree with .venv")
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON")
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    result = asyncio.run(main_async(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({result['seconds']} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
