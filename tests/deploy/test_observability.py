"""Runbooks, alert rules and the dashboard query metrics that exist: every
``cxloop_*`` metric name they use is one the code registers, under the name
Prometheus sees (counters end in ``_total``, histograms in ``_bucket`` /
``_sum`` / ``_count``). The Kubernetes PrometheusRule carries the same rules
as Prometheus in compose, and Prometheus scrapes every compose service."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from cxloop_libs.config import METRICS_PORTS
from cxloop_testing import deploy

REPO = deploy.REPO
OBS = REPO / "deploy" / "observability"
_INSTRUMENT = re.compile(
    r"create_(counter|up_down_counter|histogram|observable_gauge|gauge|observable_counter|"
    r"observable_up_down_counter)\(\s*\"([a-z][a-z0-9_.]*)\"",
)
# Python packages and files share the prefix; they are not metrics.
NOT_METRICS = {"cxloop_libs", "cxloop_cli", "cxloop_testing"}


def registered() -> dict[str, str]:
    """Instrument name -> kind, from the code (libs and services, tests excluded)."""
    found: dict[str, str] = {}
    for root in (REPO / "libs", REPO / "services"):
        for path in root.rglob("*.py"):
            if "/tests/" in str(path) or "/gen/" in str(path):
                continue
            for kind, name in _INSTRUMENT.findall(path.read_text()):
                found[name] = kind
    return found


def exposed() -> set[str]:
    """The names Prometheus sees (OpenTelemetry's Prometheus exporter)."""
    names: set[str] = set()
    for name, kind in registered().items():
        if kind in ("counter", "observable_counter"):
            names.add(f"{name}_total")
        elif kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        else:
            names.add(name)
    return names


def used_in(path: Path) -> set[str]:
    text = path.read_text()
    names = set()
    for m in re.finditer(r"(?<![\w/.])(cxloop_[a-z0-9_]+)(?![\w/.(])", text):
        if m.group(1) not in NOT_METRICS:
            names.add(m.group(1))
    return names


def documents() -> list[Path]:
    return [
        *sorted((REPO / "docs" / "runbooks").glob("*.md")),
        REPO / "deploy" / "README.md",
        *sorted(OBS.rglob("*.yml")),
        *sorted(OBS.rglob("*.json")),
        *sorted((deploy.K8S_DIR / "components" / "monitoring").glob("*.yaml")),
    ]


def test_the_code_registers_the_metrics_the_alerts_need() -> None:
    names = exposed()
    assert {
        "cxloop_consumer_lag",
        "cxloop_events_consumed_total",
        "cxloop_rpc_server_duration_seconds_count",
    } <= names


@pytest.mark.parametrize("doc", documents(), ids=lambda p: str(p.relative_to(REPO)))
def test_metric_names_in_runbooks_alerts_and_dashboards_exist(doc: Path) -> None:
    unknown = used_in(doc) - exposed()
    assert not unknown, f"{doc.relative_to(REPO)} names metrics nobody registers: {sorted(unknown)}"


def test_the_dashboard_and_rules_use_metrics_at_all() -> None:
    dashboard = json.loads((OBS / "grafana" / "dashboards" / "cxloop.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for needed in ("cxloop_events_published_total", "cxloop_consumer_lag", "dead_letter"):
        assert needed in exprs
    assert "histogram_quantile(0.99" in exprs and "rpc_method" in exprs


def test_the_kubernetes_prometheus_rule_is_the_compose_one() -> None:
    committed = yaml.safe_load(deploy.PROMETHEUS_RULE_FILE.read_text())
    assert committed == deploy.prometheus_rule_document(), (
        "regenerate: python -m cxloop_testing.deploy prometheusrule"
    )


def test_prometheus_scrapes_every_compose_service() -> None:
    config = yaml.safe_load((OBS / "prometheus" / "prometheus.yml").read_text())
    jobs = {
        j["job_name"]: [t for sc in j["static_configs"] for t in sc["targets"]]
        for j in config["scrape_configs"]
    }
    services = deploy.compose_service_env({k: "x" for k in deploy.env_example_keys()})
    for service, env in services.items():
        port = env.get(f"CXLOOP_{service.upper()}_METRICS_PORT") or METRICS_PORTS[service]
        assert jobs.get(service) == [f"{service}:{port}"], f"Prometheus does not scrape {service}"


def test_the_pod_monitor_selects_every_kubernetes_workload() -> None:
    docs = deploy.kustomize(deploy.K8S_OVERLAYS / "prod")
    (monitor,) = [d for d in docs if d.get("kind") == "PodMonitor"]
    (expr,) = monitor["spec"]["selector"]["matchExpressions"]
    assert expr["key"] == "app.kubernetes.io/name" and expr["operator"] == "In"
    for service, workload, _ in deploy.cxloop_containers(docs):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] in expr["values"], f"not scraped: {service}"
