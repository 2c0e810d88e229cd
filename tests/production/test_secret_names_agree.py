"""Every secret has one name — the variable the code reads — across the code
(cxloop_libs.config.PRODUCTION_SECRETS), docker compose and its .env.example,
the Kubernetes manifests (keys of the `cxloop-secrets` Secret) and the docs;
and every deploy file gives each process the secrets it needs."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from cxloop_libs.config import (
    ALL_SERVICES,
    PRODUCTION_SECRETS,
    SERVICE_ORDER,
    ServiceSettings,
    database_url_secret,
    production_secrets_of,
)
from cxloop_testing import deploy

# In compose's .env only: the database password inside the URLs, the image
# tag, Grafana's admin password (observability overlay), ClickHouse's password
# (clickhouse overlay: the ClickHouse server's own variable, given to analytics
# as CXLOOP_ANALYTICS_CLICKHOUSE_PASSWORD there).
COMPOSE_ONLY = {
    "POSTGRES_PASSWORD",
    "CXLOOP_IMAGE",
    "GRAFANA_ADMIN_PASSWORD",
    "CLICKHOUSE_PASSWORD",
}
DOCS = [
    deploy.REPO / "deploy" / "README.md",
    *sorted((deploy.REPO / "docs" / "runbooks").glob("*.md")),
]


def _settings_class(service: str) -> type[ServiceSettings]:
    module = importlib.import_module(f"{service}.config")
    found = [
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, ServiceSettings) and v.service_name == service
    ]
    assert found, f"{service}.config has no settings class"
    return found[0]


def _read_by_code(name: str, service: str) -> bool:
    fields = _settings_class(service).model_fields
    for field in fields:
        if name in (f"CXLOOP_{field.upper()}", f"CXLOOP_{service.upper()}_{field.upper()}"):
            return True
    sources = [*Path(deploy.REPO / "libs" / "cxloop_libs").rglob("*.py")]
    sources += Path(deploy.REPO / "services" / service).rglob("*.py")
    return any(f'"{name}"' in p.read_text() for p in sources if "/tests/" not in str(p))


@pytest.mark.parametrize("name", sorted(PRODUCTION_SECRETS))
def test_every_registered_secret_is_read_by_the_code_of_its_services(name: str) -> None:
    users = PRODUCTION_SECRETS[name]
    services = SERVICE_ORDER if ALL_SERVICES in users else users
    for service in services:
        assert _read_by_code(name, service), f"{service} does not read {name}"


def test_compose_env_example_lists_exactly_what_compose_reads() -> None:
    read = deploy.compose_variables()
    listed = deploy.env_example_keys()
    assert read - listed == set(), "compose reads variables .env.example does not list"
    assert listed - read - {"CXLOOP_IMAGE"} == set(), ".env.example lists unused variables"
    assert listed - COMPOSE_ONLY == set(PRODUCTION_SECRETS)


def test_compose_gives_each_service_its_secrets_under_their_own_names() -> None:
    values = {k: f"<{k}>" for k in deploy.env_example_keys()}
    envs = deploy.compose_service_env(values)
    assert envs, "no cxloop service in docker-compose.yml"
    for service, env in envs.items():
        for name in production_secrets_of(service):
            assert name in env, f"compose: {service} lacks {name}"
            if name in PRODUCTION_SECRETS:
                assert env[name] == f"<{name}>", f"compose: {service} fills {name} from elsewhere"


@pytest.fixture(scope="module", params=[p.name for p in deploy.overlays()])
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, object]]]:
    return request.param, deploy.kustomize(deploy.K8S_OVERLAYS / request.param)  # type: ignore[return-value]


def test_k8s_secret_keys_are_the_variable_names(
    rendered: tuple[str, list[dict[str, object]]],
) -> None:
    overlay, docs = rendered
    refs = deploy.secret_refs(docs)  # type: ignore[arg-type]
    assert refs, f"{overlay}: no secretKeyRef to {deploy.SECRET_NAME}"
    for var, keys in refs.items():
        assert keys == {var}, f"{overlay}: {var} is read from key(s) {sorted(keys)}"
    known = set(PRODUCTION_SECRETS) | {
        database_url_secret(s)
        for s, _, _ in deploy.cxloop_containers(docs)  # type: ignore[arg-type]
    }
    assert set(refs) <= known, f"{overlay}: unregistered secrets {sorted(set(refs) - known)}"


def test_k8s_gives_each_service_its_secrets(rendered: tuple[str, list[dict[str, object]]]) -> None:
    overlay, docs = rendered
    per_container: dict[str, set[str]] = {}
    for service, _, c in deploy.cxloop_containers(docs):  # type: ignore[arg-type]
        names = {
            e["name"]
            for e in c.get("env") or []
            if deploy.is_cxloop_secret(
                (e.get("valueFrom") or {}).get("secretKeyRef", {}).get("name", "")
            )
        }
        per_container.setdefault(service, set()).update(names)
    for service, names in per_container.items():
        missing = production_secrets_of(service) - names
        assert not missing, f"{overlay}: {service} lacks {sorted(missing)}"


def test_a_generated_secret_holds_every_key_the_manifests_read(
    rendered: tuple[str, list[dict[str, object]]],
) -> None:
    overlay, docs = rendered
    generated = [
        d
        for d in docs
        if d.get("kind") == "Secret" and deploy.is_cxloop_secret(str(d["metadata"]["name"]))  # type: ignore[index]
    ]
    if not generated:
        pytest.skip(f"{overlay} expects the Secret to be created out of band")
    keys = set(generated[0].get("data") or {})  # type: ignore[arg-type]
    assert set(deploy.secret_refs(docs)) <= keys  # type: ignore[arg-type]


def test_docs_name_every_secret_and_no_other_spelling() -> None:
    readme = (deploy.REPO / "deploy" / "README.md").read_text()
    for name in PRODUCTION_SECRETS:
        assert f"`{name}`" in readme, f"deploy/README.md does not document {name}"
    assert "CXLOOP_<SERVICE>_DATABASE_URL" in readme
    allowed = set(PRODUCTION_SECRETS) | {database_url_secret(s) for s in SERVICE_ORDER}
    allowed |= {
        database_url_secret(s)
        for s in deploy.compose_service_env({k: "x" for k in deploy.env_example_keys()})
    }
    for doc in DOCS:
        text = doc.read_text()
        commands = re.findall(r"create secret generic cxloop-secrets(?:[^\n]*\\\n)*[^\n]*", text)
        keys = [k for c in commands for k in re.findall(r"--from-(?:literal|file)=([\w.-]+)=", c)]
        if doc.name == "README.md" and doc.parent.name == "deploy":
            missing = set(PRODUCTION_SECRETS) - set(keys)
            assert not missing, f"deploy/README.md: the Secret command lacks {sorted(missing)}"
        for key in keys:
            assert key in allowed, f"{doc.name}: Secret key {key!r} is not a variable name"
        for old in ("pii-hash-key", "grpc-client-token", "master-key", "-database-url"):
            assert old not in text, f"{doc.name}: old Secret key spelling {old!r}"
