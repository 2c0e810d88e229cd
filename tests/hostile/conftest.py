"""Fixtures of the hostile-input, SDK and fault tests: the real gateway
process against a real nats-server this package owns."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cxloop_cli.supervisor import Supervisor
from cxloop_testing.gateway_process import RunningGateway, start_gateway
from cxloop_testing.infra import start_embedded_nats


@pytest.fixture(scope="package")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    tmp = tmp_path_factory.mktemp("hostile")
    server = start_embedded_nats()
    sup: Supervisor | None = None
    try:
        sup, url = start_gateway(tmp, server)
        yield RunningGateway(url, server, sup, tmp / "logs" / "gateway.log")
    finally:
        if sup is not None:
            sup.stop_all()
        server.stop()
