"""Policy for every rendered Kubernetes overlay: each workload runs non-root
on a read-only root filesystem with probes, requests and memory limits, an
image that is not `latest` (by digest in production), its own ServiceAccount
without an API token, and a NetworkPolicy of its own behind a default deny;
the namespace enforces the `restricted` Pod Security Standard. Production also
has HPAs, an Ingress with TLS and PodDisruptionBudgets. Generic: a workload
added to the manifests is held to the same rules."""

from __future__ import annotations

from typing import Any

import pytest

from cxloop_testing import deploy

Doc = dict[str, Any]
OVERLAYS = [p.name for p in deploy.overlays()]


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[Doc]]:
    return request.param, deploy.kustomize(deploy.K8S_OVERLAYS / request.param)


def workloads(docs: list[Doc]) -> list[Doc]:
    return [d for d in docs if d.get("kind") in deploy.WORKLOAD_KINDS]


def kinds(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d.get("kind") == kind]


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        have = labels.get(expr["key"])
        op = expr["operator"]
        if op == "In" and have not in expr["values"]:
            return False
        if op == "NotIn" and have in expr["values"]:
            return False
        if op == "Exists" and have is None:
            return False
        if op == "DoesNotExist" and have is not None:
            return False
    return True


def test_every_workload_is_hardened(rendered: tuple[str, list[Doc]]) -> None:
    overlay, docs = rendered
    assert workloads(docs), overlay
    for w in workloads(docs):
        name = f"{overlay}: {w['kind']}/{w['metadata']['name']}"
        pod = w["spec"]["template"]["spec"]
        assert pod.get("securityContext", {}).get("runAsNonRoot") is True, name
        assert pod["securityContext"].get("seccompProfile", {}).get("type") == "RuntimeDefault", (
            name
        )
        for c in pod["containers"]:
            sc = c.get("securityContext") or {}
            where = f"{name} container {c['name']}"
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            res = c.get("resources") or {}
            assert {"cpu", "memory"} <= set(res.get("requests") or {}), f"{where}: requests"
            assert "memory" in (res.get("limits") or {}), f"{where}: memory limit"
            image: str = c["image"]
            assert not image.endswith(":latest") and ":" in image.rsplit("/", 1)[-1], where
            if overlay == "prod":
                assert "@sha256:" in image, f"{where}: production images are pinned by digest"
            if w["kind"] != "Job":
                assert c.get("readinessProbe") and c.get("livenessProbe"), f"{where}: probes"


def test_every_workload_has_its_own_service_account_without_a_token(
    rendered: tuple[str, list[Doc]],
) -> None:
    overlay, docs = rendered
    accounts = {d["metadata"]["name"]: d for d in kinds(docs, "ServiceAccount")}
    for w in workloads(docs):
        pod = w["spec"]["template"]["spec"]
        name = f"{overlay}: {w['kind']}/{w['metadata']['name']}"
        sa = pod.get("serviceAccountName")
        assert sa and sa != "default", f"{name}: own ServiceAccount"
        assert sa in accounts, f"{name}: ServiceAccount {sa} is not in the manifests"
        assert pod.get("automountServiceAccountToken") is False, name
        assert accounts[sa].get("automountServiceAccountToken") is False, sa


def test_default_deny_and_a_network_policy_per_workload(rendered: tuple[str, list[Doc]]) -> None:
    overlay, docs = rendered
    policies = kinds(docs, "NetworkPolicy")
    deny = [
        p
        for p in policies
        if p["spec"].get("podSelector") in ({}, None)
        and set(p["spec"].get("policyTypes") or []) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert deny, f"{overlay}: no default-deny NetworkPolicy"
    for w in workloads(docs):
        labels = w["spec"]["template"]["metadata"].get("labels") or {}
        own = [
            p
            for p in policies
            if p not in deny
            and p["spec"].get("podSelector")
            and selects(p["spec"]["podSelector"], labels)
            and p["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name")
            == labels.get("app.kubernetes.io/name")
        ]
        assert own, f"{overlay}: {w['metadata']['name']} has no NetworkPolicy of its own"


def test_the_gateway_is_the_only_caller_of_the_grpc_services(
    rendered: tuple[str, list[Doc]],
) -> None:
    overlay, docs = rendered
    for p in kinds(docs, "NetworkPolicy"):
        for rule in p["spec"].get("ingress") or []:
            ports = {port["port"] for port in rule.get("ports") or []}
            if ports & set(range(50051, 50060)):
                peers = rule.get("from") or []
                assert peers, f"{overlay}: {p['metadata']['name']} lets anyone call gRPC"
                for peer in peers:
                    sel = peer.get("podSelector", {}).get("matchLabels", {})
                    assert sel == {"app.kubernetes.io/name": "gateway"}, p["metadata"]["name"]


def test_namespace_enforces_the_restricted_pod_security_standard(
    rendered: tuple[str, list[Doc]],
) -> None:
    overlay, docs = rendered
    (ns,) = kinds(docs, "Namespace")
    labels = ns["metadata"].get("labels") or {}
    assert labels.get("pod-security.kubernetes.io/enforce") == "restricted", overlay


def test_production_scales_and_is_reachable_over_tls() -> None:
    docs = deploy.kustomize(deploy.K8S_OVERLAYS / "prod")
    hpa_targets = {
        h["spec"]["scaleTargetRef"]["name"] for h in kinds(docs, "HorizontalPodAutoscaler")
    }
    assert {"gateway", "identity", "consent"} <= hpa_targets
    deployments = {d["metadata"]["name"] for d in kinds(docs, "Deployment")}
    assert hpa_targets <= deployments
    pdbs = {
        p["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for p in kinds(docs, "PodDisruptionBudget")
    }
    assert deployments <= pdbs, f"no PodDisruptionBudget for {sorted(deployments - pdbs)}"
    (ingress,) = kinds(docs, "Ingress")
    assert ingress["spec"]["tls"] and ingress["spec"]["tls"][0]["secretName"]
    backends = {
        path["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == {"gateway"}
    config = next(
        d for d in kinds(docs, "ConfigMap") if d["metadata"]["name"].startswith("cxloop-config")
    )
    assert config["data"]["CXLOOP_NATS_STREAM_REPLICAS"] == "3"
    # Every HPA target has CPU requests to scale on.
    for d in kinds(docs, "Deployment"):
        if d["metadata"]["name"] in hpa_targets:
            for c in d["spec"]["template"]["spec"]["containers"]:
                assert c["resources"]["requests"]["cpu"]


def test_production_postgres_has_a_database_per_service() -> None:
    import yaml

    docs = [
        d
        for d in yaml.safe_load_all((deploy.K8S_DIR / "postgres" / "cluster.yaml").read_text())
        if d
    ]
    (cluster,) = [d for d in docs if d["kind"] == "Cluster"]
    assert cluster["apiVersion"].startswith("postgresql.cnpg.io/")
    assert cluster["spec"]["instances"] >= 3
    databases = {d["spec"]["name"]: d["spec"]["owner"] for d in docs if d["kind"] == "Database"}
    roles = {r["name"] for r in cluster["spec"]["managed"]["roles"]}
    rendered = deploy.kustomize(deploy.K8S_OVERLAYS / "prod")
    needing = {
        name.removeprefix("CXLOOP_").removesuffix("_DATABASE_URL").lower()
        for name in deploy.secret_refs(rendered)
        if name.endswith("_DATABASE_URL")
    }
    assert needing <= set(databases), f"no database for {sorted(needing - set(databases))}"
    assert all(databases[s] == s and s in roles for s in needing)


def test_every_cxloop_process_may_reach_dns_nats_postgres_and_the_collector(
    rendered: tuple[str, list[Doc]],
) -> None:
    overlay, docs = rendered
    policies = kinds(docs, "NetworkPolicy")
    for service, workload, _ in deploy.cxloop_containers(docs):
        labels = workload["spec"]["template"]["metadata"].get("labels") or {}
        allowed: set[int] = set()
        for p in policies:
            selector = p["spec"].get("podSelector") or {}
            if selector and selects(selector, labels):
                for rule in p["spec"].get("egress") or []:
                    allowed |= {port["port"] for port in rule.get("ports") or []}
        missing = {53, 4222, 5432, 4317} - allowed
        assert not missing, f"{overlay}: {service} may not reach ports {sorted(missing)}"
