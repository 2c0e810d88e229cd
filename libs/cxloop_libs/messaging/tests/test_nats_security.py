"""NATS credentials, TLS and stream replicas, against real nats-server
processes configured for each: user/password, token, NKey, mutual TLS, and a
3-node JetStream cluster for replicated streams."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import nats
import nkeys
import pytest

from cxloop_libs.config import ConfigError
from cxloop_libs.messaging import NatsBus
from cxloop_libs.messaging.connection import NatsConnectionSettings, nats_connect_options
from cxloop_libs.messaging.streams import StreamSpec, ensure_stream
from cxloop_testing import infra
from cxloop_testing.certs import TestCA

pytestmark = pytest.mark.integration

SPEC = StreamSpec(name="SECURED", subjects=["cx.secured.>"])


@contextlib.contextmanager
def nats_server(*args: str, port: int | None = None) -> Iterator[str]:
    """A nats-server of our own with the given options; its client URL."""
    port = port or infra.free_port()
    store = tempfile.mkdtemp(prefix="cxloop-nats-sec-")
    proc = subprocess.Popen(
        [
            infra.nats_server_binary(),
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            str(port),
            "-sd",
            store,
            *args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while not infra.port_open("127.0.0.1", port):
            assert proc.poll() is None, f"nats-server {args} exited with {proc.returncode}"
            assert time.monotonic() < deadline, "nats-server did not start"
            time.sleep(0.05)
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(store, ignore_errors=True)


async def bus_works(url: str, env: dict[str, str]) -> None:
    """A NatsBus configured from ``env`` connects, creates its stream and publishes."""
    bus = NatsBus(
        url, name="sec-test", streams=[SPEC], connection=NatsConnectionSettings.from_env(env)
    )
    try:
        await bus.connect(timeout=15)
        ack = await bus.js.publish("cx.secured.one", b"x")
        assert ack.stream == "SECURED"
    finally:
        await bus.close()


async def refused(url: str, env: dict[str, str]) -> Exception:
    with pytest.raises(Exception) as caught:
        nc = await nats.connect(
            **nats_connect_options(url, env),
            connect_timeout=3,
            allow_reconnect=False,
            max_reconnect_attempts=0,
        )
        await nc.close()
    return caught.value


async def test_user_and_password() -> None:
    with nats_server("--user", "cx", "--pass", "s3cret") as url:
        await bus_works(url, {"CXLOOP_NATS_USER": "cx", "CXLOOP_NATS_PASSWORD": "s3cret"})
        await refused(url, {})
        await refused(url, {"CXLOOP_NATS_USER": "cx", "CXLOOP_NATS_PASSWORD": "wrong"})


async def test_token() -> None:
    with nats_server("--auth", "tok-123") as url:
        await bus_works(url, {"CXLOOP_NATS_TOKEN": "tok-123"})
        await refused(url, {"CXLOOP_NATS_TOKEN": "other"})


async def test_nkey_seed_file(tmp_path: Path) -> None:
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    public = nkeys.from_seed(bytearray(seed)).public_key.decode()
    (tmp_path / "user.nk").write_bytes(seed + b"\n")
    conf = tmp_path / "server.conf"
    conf.write_text(f'authorization {{ users = [ {{ nkey: "{public}" }} ] }}\n')
    with nats_server("-c", str(conf)) as url:
        await bus_works(url, {"CXLOOP_NATS_NKEY_SEED": str(tmp_path / "user.nk")})
        await refused(url, {})


async def test_mutual_tls(tmp_path: Path) -> None:
    ca = TestCA(tmp_path / "ca")
    server = ca.issue("nats-server")
    client = ca.issue("cxloop-service", client=True)
    stranger = TestCA(tmp_path / "other", name="other CA").issue("intruder", client=True)
    with nats_server(
        "--tlsverify",
        "--tlscert",
        str(server.cert),
        "--tlskey",
        str(server.key),
        "--tlscacert",
        str(ca.cert),
    ) as url:
        good = {
            "CXLOOP_NATS_TLS_CA": str(ca.cert),
            "CXLOOP_NATS_TLS_CERT": str(client.cert),
            "CXLOOP_NATS_TLS_KEY": str(client.key),
        }
        await bus_works(url, good)
        # Without a client certificate, or with one of another CA: refused.
        await refused(url, {"CXLOOP_NATS_TLS_CA": str(ca.cert)})
        await refused(
            url,
            {
                **good,
                "CXLOOP_NATS_TLS_CERT": str(stranger.cert),
                "CXLOOP_NATS_TLS_KEY": str(stranger.key),
            },
        )
        # A client that does not trust the server's CA does not connect either.
        await refused(url, {})


def test_bad_settings_name_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        NatsConnectionSettings.from_env(
            {
                "CXLOOP_NATS_USER": "cx",
                "CXLOOP_NATS_TOKEN": "t",
                "CXLOOP_NATS_TLS_CA": str(tmp_path / "missing.pem"),
                "CXLOOP_NATS_TLS_CERT": str(tmp_path / "missing.pem"),
                "CXLOOP_NATS_STREAM_REPLICAS": "three",
            }
        )
    text = str(e.value)
    for var in (
        "CXLOOP_NATS_TLS_CA: no such file",
        "set one NATS authentication method",
        "CXLOOP_NATS_PASSWORD: required",
        "CXLOOP_NATS_TLS_KEY: set both",
        "CXLOOP_NATS_STREAM_REPLICAS",
    ):
        assert var in text
    assert NatsConnectionSettings.from_env({}).stream_replicas is None
    assert (
        NatsConnectionSettings.from_env({"CXLOOP_NATS_STREAM_REPLICAS": "3"}).stream_replicas == 3
    )


async def test_an_existing_streams_replicas_are_kept_unless_configured(clean_nats: str) -> None:
    nc = await nats.connect(clean_nats)
    try:
        js = nc.jetstream()
        with contextlib.suppress(Exception):
            await js.delete_stream(SPEC.name)
        await ensure_stream(js, SPEC, None)
        assert (await js.stream_info(SPEC.name)).config.num_replicas == 1
        # A restart with nothing configured changes nothing else either.
        await ensure_stream(js, SPEC, None)
        await ensure_stream(js, SPEC, 1)
        assert (await js.stream_info(SPEC.name)).config.num_replicas == 1
        await js.delete_stream(SPEC.name)
    finally:
        await nc.close()


async def test_replicated_streams_on_a_three_node_cluster_survive_service_restarts() -> None:
    cluster = await asyncio.to_thread(infra.start_jetstream_cluster, 3)
    try:
        url = cluster.url
        r3 = NatsConnectionSettings.from_env({"CXLOOP_NATS_STREAM_REPLICAS": "3"})
        bus = NatsBus(url, name="r3", streams=[SPEC], connection=r3)
        await bus.connect(timeout=30)
        await bus.close()
        nc = await nats.connect(servers=url.split(","))
        try:
            js = nc.jetstream()
            assert (await js.stream_info(SPEC.name)).config.num_replicas == 3
            # A service started without CXLOOP_NATS_STREAM_REPLICAS (or an
            # older release) must not reset the stream to one replica.
            plain = NatsBus(
                url, name="plain", streams=[SPEC], connection=NatsConnectionSettings.from_env({})
            )
            await plain.connect(timeout=15)
            await plain.close()
            assert (await js.stream_info(SPEC.name)).config.num_replicas == 3
            # The dead-letter stream every bus ensures is replicated too.
            assert (await js.stream_info("DEADLETTER")).config.num_replicas == 3
        finally:
            await nc.close()
    finally:
        cluster.stop()
