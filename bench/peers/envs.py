"""Isolated virtualenvs for the peers, created on demand under ``bench/.peers/<name>``.

Each peer is pinned to an exact release known to be good. Some releases of LiteLLM on the
package index were compromised (a supply-chain attack); a peer's ``refused`` versions are
never run, whatever installed them.

optillm 0.4.0 declares every dependency of every one of its approaches and plugins (torch,
transformers, spacy, gradio, selenium, an unpinned litellm, ...): several GiB, and pip's
resolver backtracked for over ten minutes here. Its server needs far fewer, so it is
installed with ``--no-deps`` plus the packages its server imports (``runtime``); litellm is
not among them, so no unpinned LiteLLM can reach that environment.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / ".peers"
INSTALL_TIMEOUT_S = 1800.0  # a first install resolves and downloads a few hundred MiB


@dataclass(frozen=True, slots=True)
class Peer:
    name: str
    distribution: str  # the package whose version is checked
    requirement: str  # exactly what pip installs
    version: str
    refused: frozenset[str] = frozenset()
    runtime: tuple[str, ...] = ()  # set: the requirement goes in --no-deps, then these


LITELLM = Peer(
    "litellm",
    "litellm",
    "litellm[proxy]==1.80.17",
    "1.80.17",
    refused=frozenset({"1.82.7", "1.82.8", "1.107.0"}),
)
OPTILLM = Peer(
    "optillm",
    "optillm",
    "optillm==0.4.0",
    "0.4.0",
    runtime=(
        "flask",
        "openai",
        "httpx",
        "requests",
        "cerebras_cloud_sdk",
        "numpy",
        "networkx",
        "z3-solver<=4.15.4.0",
        "sympy",
        "aiohttp",
        "pyyaml",
        "math-verify",
    ),
)
PEERS = {peer.name: peer for peer in (LITELLM, OPTILLM)}


class PeerUnavailable(RuntimeError):
    """A peer could not be installed or its environment is not the pinned release."""


def python_of(peer: Peer) -> Path:
    return ROOT / peer.name / "bin" / "python"


def installed_version(peer: Peer) -> str | None:
    """The version of ``peer.distribution`` in the peer's own environment, if any."""
    python = python_of(peer)
    if not python.exists():
        return None
    probe = f"import importlib.metadata as m; print(m.version({peer.distribution!r}))"
    done = subprocess.run(
        [str(python), "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def ensure(peer: Peer, log: Path) -> Path:
    """The peer's interpreter, installing the pinned release first if it is missing.
    pip's output goes to ``log``; a failure raises PeerUnavailable with the log's tail."""
    version = installed_version(peer)
    if version != peer.version:
        _install(peer, log)
        version = installed_version(peer)
    if version in peer.refused:
        raise PeerUnavailable(f"{peer.name} {version} is a compromised release: not run")
    if version != peer.version:
        raise PeerUnavailable(f"{peer.name}: found {version}, expected {peer.version}")
    return python_of(peer)


def _install(peer: Peer, log: Path) -> None:
    env = ROOT / peer.name
    print(f"  installing {peer.requirement} into {env} (once) ...", flush=True)
    pip = [str(env / "bin" / "pip"), "install", "--quiet"]
    steps = [[sys.executable, "-m", "venv", "--clear", str(env)]]
    if peer.runtime:
        steps += [[*pip, "--no-deps", peer.requirement], [*pip, *peer.runtime]]
    else:
        steps += [[*pip, peer.requirement]]
    with log.open("a") as out:
        for argv in steps:
            try:
                subprocess.run(argv, stdout=out, stderr=out, timeout=INSTALL_TIMEOUT_S, check=True)
            except (OSError, subprocess.SubprocessError) as exc:
                tail = log.read_text().splitlines()[-5:]
                raise PeerUnavailable(f"{' '.join(argv[3:])} failed: {exc}; {tail}") from exc
