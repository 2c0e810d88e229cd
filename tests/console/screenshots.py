"""The console's screenshots in docs/screenshots/, of a demo shop (not a test).

    CXLOOP_TEST_NATS_URL=nats://127.0.0.1:<port> .venv/bin/python tests/console/screenshots.py

Starts the whole suite (as the browser tests do), seeds it with
`cxloop demo`, starts an experiment and asks for recommendations so it has
exposures, queues two unsure record pairs for merge review and opens a case
(a 1-star review) for the sample customer, then drives the console as each
role and copies the views the README shows into docs/screenshots/."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import grpc
import httpx
from cxloop.personalization.v1 import personalization_service_pb2 as ppb
from cxloop.personalization.v1 import personalization_service_pb2_grpc as pgrpc
from cxloop.personalization.v1 import resources_pb2 as res

from cxloop_cli.demo_shop import make_shop
from cxloop_testing import infra

sys.path.insert(0, str(Path(__file__).parent))
import test_console_browser as tcb

ROOT = Path(__file__).resolve().parents[2]
SHOWN = (
    "admin-overview",
    "admin-review",
    "agent-customer",
    "marketer-experiments",
    "privacy_officer-customer",
    "marketer-journeys",
    "analyst-experiments",
    "marketer-phone-ko",
)
CUSTOMERS, DAYS, EXPERIMENT = 120, 180, "home-recs"


async def start_experiment(target: str) -> None:
    async with grpc.aio.insecure_channel(target) as ch:
        stub = pgrpc.PersonalizationServiceStub(ch)
        experiment = res.Experiment(
            experiment_id=EXPERIMENT,
            name="Home: hybrid vs popular",
            placement="home",
            variants=[
                res.Variant(
                    variant_id="popular", strategy="popular", weight_percent=50, control=True
                ),
                res.Variant(variant_id="hybrid", strategy="hybrid", weight_percent=50),
            ],
            metric=res.EXPERIMENT_METRIC_PURCHASE,
            attribution_window_hours=168,
        )
        await stub.CreateExperiment(ppb.CreateExperimentRequest(experiment=experiment), timeout=10)
        await stub.StartExperiment(ppb.StartExperimentRequest(experiment_id=EXPERIMENT), timeout=10)


def main() -> None:
    nats_url = infra.nats_url()
    asyncio.run(infra.reset_streams(nats_url))
    data_dir = Path(tempfile.mkdtemp(prefix="cxloop-screenshots-"))
    with tcb.running_suite(data_dir, nats_url) as (addresses, _):
        url = addresses["gateway"]
        env = {
            f"CXLOOP_{name.upper()}_GRPC_TARGET": address
            for name, address in addresses.items()
            if name != "gateway"
        }
        demo = subprocess.run(
            [
                str(Path(sys.executable).parent / "cxloop"),
                "demo",
                "--customers",
                str(CUSTOMERS),
                "--days",
                str(DAYS),
                "--gateway-url",
                url,
                "--json",
            ],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=1800,
            check=True,
        )
        summary = json.loads(demo.stdout.strip().splitlines()[-1])
        asyncio.run(start_experiment(addresses["personalization"]))
        for person in make_shop(CUSTOMERS, DAYS, 7).people[:80]:
            httpx.get(
                f"{url}/v1/recommendations",
                params={"placement": "home", "userId": person.user_id},
                auth=("dev", ""),
                timeout=10,
            )
        keys = tcb.keys_for_every_role(url, nats_url)
        email = summary["sample"]["email"]
        found = httpx.get(
            f"{url}/v1/customers",
            params={"email": email},
            headers={"Authorization": f"Bearer {keys['admin'][1]}", "X-Cxloop-Reason": "shots"},
            timeout=10,
        )
        found.raise_for_status()
        cid = found.json()["customerId"]
        asyncio.run(tcb._seed_review_items_and_a_case(addresses, cid))
        shots = data_dir / "screenshots"
        console = tcb.Console(
            url, keys, email, cid, shots, user_id=summary["sample"].get("userId", "")
        )
        acts: dict[str, dict[str, str | bool]] = {
            "marketer": {"segmentId": "buyers"},
            "analyst": {},
            "admin": {},
            "agent": {},
            "privacy_officer": {},
        }
        for role in tcb.ROLES:
            tcb.drive(console, role, experiment_id=EXPERIMENT, **acts[role])
    target = ROOT / "docs" / "screenshots"
    target.mkdir(parents=True, exist_ok=True)
    for name in SHOWN:
        shutil.copy(shots / f"{name}.png", target / f"{name}.png")
        print(target / f"{name}.png")


if __name__ == "__main__":
    main()
