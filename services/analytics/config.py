from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal, Self

from pydantic import Field, model_validator

from cxloop_libs.config import ServiceSettings, default_data_dir

# Net allocations between two collections of the youngest generation in the
# analytics process (CPython: 700): ingest keeps fetches of thousands of
# events alive, and the default collected each of them dozens of times
# (docs/adr/0245).
GC_YOUNG_THRESHOLD = 20_000


class AnalyticsSettings(ServiceSettings):
    service_name: ClassVar[str] = "analytics"

    # The columnar event store (DuckDB file; one writer process per file, so
    # each replica has its own, fed by the stream: docs/adr/0061).
    duckdb_path: str = ""
    # Name of this replica: its consumers are its own durables
    # (analytics-<replica>-events …), so every replica reads every event.
    replica: str = Field(default="r0", pattern=r"^[a-z0-9][a-z0-9-]{0,30}$")
    # Consent purpose an event must be allowed for to be stored.
    purpose: str = "analytics"
    # Anomaly detection over alerting KPIs: every this many seconds.
    alert_interval_s: float = Field(default=3600.0, gt=0)
    # Slack-compatible incoming webhook for alerts; empty: none.
    alert_webhook_url: str = ""
    # Interactions taken per fetch from the stream (one DuckDB transaction
    # each): large batches amortise the per-batch cost (docs/adr/0090).
    ingest_batch_size: int = Field(default=2000, ge=1, le=10_000)
    # Decode each fetch in a child process, on another core than the event
    # loop (docs/adr/0245); false: in the service's process (one-core pods).
    ingest_decode_process: bool = True
    # Cores one funnel / retention query may use side by side (0: all the
    # machine's cores; docs/adr/0215).
    query_threads: int = Field(default=0, ge=0, le=64)
    # Most breakdown values a query returns (the rest are capped, and said so).
    max_breakdown_values: int = Field(default=50, ge=1, le=1000)
    # Where events are stored and every query is answered from: the DuckDB
    # file of this replica, or a ClickHouse server shared by the replicas
    # (docs/adr/0270).
    store: Literal["duckdb", "clickhouse"] = "duckdb"
    # http(s)://user@host:8123 (clickhouse-connect), or chdb://[/directory]
    # for the ClickHouse engine in-process (tests, a one-machine trial).
    clickhouse_url: str = ""
    # The ClickHouse user's password (a secret; not part of the URL).
    clickhouse_password: str = Field(default="", repr=False)
    clickhouse_database: str = Field(default="cxloop_analytics", pattern=r"^[A-Za-z0-9_]{1,64}$")

    @model_validator(mode="after")
    def _clickhouse_url_with_the_clickhouse_store(self) -> Self:
        if self.store == "clickhouse" and not self.clickhouse_url:
            raise ValueError(
                "CXLOOP_ANALYTICS_CLICKHOUSE_URL (http(s)://user@host:8123 or chdb://) is "
                "required when CXLOOP_ANALYTICS_STORE=clickhouse"
            )
        if self.clickhouse_url and not self.clickhouse_url.startswith(
            ("http://", "https://", "chdb:")
        ):
            raise ValueError(
                "CXLOOP_ANALYTICS_CLICKHOUSE_URL: http(s)://user@host:8123 or chdb://[/path]"
            )
        return self

    @classmethod
    def defaults_for(cls, service: str, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
        values = super().defaults_for(service, environ)
        values["duckdb_path"] = str(default_data_dir(environ) / f"{service}.duckdb")
        return values
