"""What cannot run here (there is no container engine or cluster) is linted and validated:
the Dockerfile by hadolint and by the rules that matter, the compose file against the
Compose Specification's schema, the Kubernetes manifests against Kubernetes' own schemas,
the moa.toml each ships against moa's Settings, and the docs against the variables moa reads.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from moa.config import settings_from_dict

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
KUBERNETES = DEPLOY / "kubernetes" / "moa.yaml"
BIN = Path(sys.executable).parent


def tool(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """One of the dev tools installed beside this interpreter."""
    return subprocess.run(
        [str(BIN / name), *args], capture_output=True, text=True, timeout=120, check=False
    )


# ---- Dockerfile ---------------------------------------------------------------------------


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", dockerfile)
    lines = [line.strip() for line in joined.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def stages(dockerfile: str) -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for instruction in instructions(dockerfile):
        if instruction[0] == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def test_hadolint_passes_the_dockerfile_at_its_strictest_threshold() -> None:
    result = tool("hadolint", "--failure-threshold", "info", str(DOCKERFILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_builds_in_one_stage_and_runs_from_another() -> None:
    built = stages(DOCKERFILE.read_text())
    assert len(built) >= 2
    final = built[-1]
    assert any(i == "COPY" and args.startswith("--from=") for i, args in final)


def test_every_base_image_is_pinned_to_a_patch_version() -> None:
    images = [args.split()[0] for i, args in instructions(DOCKERFILE.read_text()) if i == "FROM"]
    assert images
    for image in images:
        assert re.fullmatch(
            r"[a-z0-9./-]+:\d+\.\d+\.\d+[a-z0-9.-]*(@sha256:[0-9a-f]{64})?", image
        ), image


def test_the_image_runs_as_a_non_root_user() -> None:
    users = [args for i, args in stages(DOCKERFILE.read_text())[-1] if i == "USER"]
    assert users, "the final stage sets USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")


def test_nothing_is_added_from_a_url_and_the_image_has_a_healthcheck() -> None:
    steps = instructions(DOCKERFILE.read_text())
    assert not [args for i, args in steps if i == "ADD" and "://" in args]
    (health,) = [args for i, args in stages(DOCKERFILE.read_text())[-1] if i == "HEALTHCHECK"]
    assert "/healthz" in health
    assert ("EXPOSE", "8000") in steps


def test_the_embedded_model_is_a_build_argument_off_by_default() -> None:
    args = [a for i, a in instructions(DOCKERFILE.read_text()) if i == "ARG"]
    assert "WITH_LOCAL_MODEL=false" in args


def test_the_docker_context_leaves_out_the_virtualenv_and_the_git_history() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv"} <= set(ignored)


# ---- compose --------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def test_the_compose_file_validates_against_the_compose_specification() -> None:
    result = tool("check-jsonschema", "--builtin-schema", "vendor.compose-spec", str(COMPOSE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_broken_compose_file(tmp_path: Path) -> None:
    broken = tmp_path / "compose.yaml"
    broken.write_text(
        "services:\n  moa:\n    image: moa\n    ports: 8000\n    restart: sometimes\n"
    )
    result = tool("check-jsonschema", "--builtin-schema", "vendor.compose-spec", str(broken))
    assert result.returncode != 0


def test_moa_waits_for_a_healthy_postgres_and_redis_and_reports_readiness() -> None:
    services = compose()["services"]
    assert set(services) == {"moa", "postgres", "redis"}
    moa = services["moa"]
    assert moa["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    assert "/healthz/ready" in " ".join(moa["healthcheck"]["test"])


def interpolated(text: str) -> str:
    """Compose's ``${VAR:-default}`` with every variable unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", text)


def test_the_compose_moa_toml_is_valid_and_uses_the_compose_services() -> None:
    toml = interpolated(compose()["configs"]["moa_toml"]["content"])
    settings = settings_from_dict(tomllib.loads(toml))
    assert settings.server.database_url == "postgresql+asyncpg://moa:moa@postgres:5432/moa"
    assert settings.server.redis_url == "redis://redis:6379/0"
    assert settings.server.host == "0.0.0.0"


# ---- Kubernetes -----------------------------------------------------------------------------


def manifests() -> dict[str, dict[str, Any]]:
    return {
        f"{d['kind']}/{d['metadata']['name']}": d
        for d in yaml.safe_load_all(KUBERNETES.read_text())
    }


def test_the_kubernetes_manifests_validate_strictly_against_kubernetes_schemas() -> None:
    result = tool("kubernetes-validate", "--strict", str(KUBERNETES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_kubernetes_check_rejects_an_unknown_field(tmp_path: Path) -> None:
    broken = tmp_path / "moa.yaml"
    broken.write_text(KUBERNETES.read_text().replace("replicas: 2", "replica: 2"))
    result = tool("kubernetes-validate", "--strict", str(broken))
    assert result.returncode != 0


def test_liveness_and_readiness_probe_different_endpoints() -> None:
    (container,) = manifests()["Deployment/moa"]["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz/ready"


def test_provider_keys_come_from_a_secret_and_the_pod_runs_unprivileged() -> None:
    found = manifests()
    pod = found["Deployment/moa"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    (source,) = container["envFrom"]
    assert f"Secret/{source['secretRef']['name']}" in found
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_the_service_reaches_the_deployments_pods_on_their_http_port() -> None:
    found = manifests()
    service = found["Service/moa"]["spec"]
    template = found["Deployment/moa"]["spec"]["template"]
    assert service["selector"].items() <= template["metadata"]["labels"].items()
    (container,) = template["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert service["ports"][0]["targetPort"] in ports


def test_the_kubernetes_moa_toml_is_valid_settings() -> None:
    toml = manifests()["Secret/moa-config"]["stringData"]["moa.toml"]
    settings = settings_from_dict(tomllib.loads(toml))
    assert settings.server.database_url.startswith("postgresql+asyncpg://")


# ---- docs -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def deployment_doc() -> str:
    return (ROOT / "docs" / "deployment.md").read_text()


def test_every_environment_variable_moa_reads_is_in_the_deployment_docs(
    deployment_doc: str,
) -> None:
    """Variables named in config.py (MOA_*, provider keys) and the OTEL_* switches."""
    from moa.tracing import SWITCHES

    source = (ROOT / "src" / "moa" / "config.py").read_text()
    named = set(re.findall(r'"((?:MOA|[A-Z]+_API)_[A-Z_]+|[A-Z]+_API_KEY)"', source))
    assert "MOA_CONFIG" in named and "OPENAI_API_KEY" in named
    missing = sorted(v for v in named | set(SWITCHES) if f"`{v}`" not in deployment_doc)
    assert not missing
