"""`cxloop audit export` reads the audit entries of consent and identity from
their own streams (real services, real NATS, SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from cxloop.common.v1 import identifier_pb2 as idpb
from cxloop.consent.v1 import consent_service_pb2 as pb
from cxloop.consent.v1 import consent_service_pb2_grpc as pb_grpc
from cxloop.identity.v1 import identity_service_pb2 as ipb
from cxloop.identity.v1 import identity_service_pb2_grpc as ipb_grpc
from typer.testing import CliRunner

from consent.tests.conftest import start_consent
from cxloop_cli.main import app
from cxloop_testing.infra import eventually
from identity.bootstrap import bootstrap as identity_bootstrap
from identity.config import IdentitySettings

pytestmark = pytest.mark.integration
REASON = (("x-cxloop-reason", "ticket-77"), ("x-cxloop-actor", "agent-3"))


async def test_cli_export_reads_two_services_streams_filtered_by_subject(
    clean_consent_nats: str, database_url: str, identity_database_url: str, tmp_path: Path
) -> None:
    started = datetime.now(UTC) - timedelta(seconds=5)
    consent = await start_consent(clean_consent_nats, database_url)
    identity = await identity_bootstrap(
        IdentitySettings(
            env="test",
            nats_url=clean_consent_nats,
            database_url=identity_database_url,
            grpc_port=0,
            metrics_port=0,
        )
    )
    await identity.start()
    await identity.db_ready.wait()
    try:
        assert consent.grpc_server is not None and identity.grpc_server is not None
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{identity.grpc_server.port}") as ich,
            grpc.aio.insecure_channel(f"127.0.0.1:{consent.grpc_server.port}") as cch,
        ):
            people = ipb_grpc.IdentityServiceStub(ich)
            consents = pb_grpc.ConsentServiceStub(cch)
            email = f"{uuid.uuid4().hex[:8]}@example.com"
            resolved = await people.Resolve(
                ipb.ResolveRequest(
                    identifiers=[idpb.Identifier(type=idpb.IDENTIFIER_TYPE_EMAIL, value=email)],
                    source="test",
                ),
                timeout=5,
            )
            cid = resolved.customer_id
            await people.GetProfile(
                ipb.GetProfileRequest(customer_id=cid), metadata=REASON, timeout=5
            )
            await consents.GetPreferences(
                pb.GetPreferencesRequest(customer_id=cid), metadata=REASON, timeout=5
            )
            other = f"c-{uuid.uuid4().hex[:8]}"
            await consents.GetPreferences(pb.GetPreferencesRequest(customer_id=other), timeout=5)

        out = tmp_path / "audit.jsonl"
        runner = CliRunner()

        async def exported() -> list[dict[str, object]]:
            result = await asyncio.to_thread(
                runner.invoke,
                app,
                [
                    "audit",
                    "export",
                    "--nats-url",
                    clean_consent_nats,
                    "--since",
                    started.strftime("%Y-%m-%dT%H:%M:%S"),
                    "--subject",
                    cid,
                    "--out",
                    str(out),
                ],
            )
            assert result.exit_code == 0, result.output
            rows = [json.loads(line) for line in out.read_text().splitlines()]
            return rows if {r["service"] for r in rows} == {"consent", "identity"} else []

        rows = await eventually(exported)
        assert all(r["subject"] == cid for r in rows)
        by_service = {r["service"]: r for r in rows}
        assert by_service["identity"]["operation"] == "GetProfile"
        assert by_service["consent"]["operation"] == "GetPreferences"
        for r in rows:
            assert (r["reason"], r["on_behalf_of"], r["action"]) == ("ticket-77", "agent-3", "read")
        # No raw identifier travels in the entries.
        assert email not in out.read_text()
    finally:
        await identity.stop()
        await consent.stop()
