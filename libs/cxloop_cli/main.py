"""The `cxloop` command: options and exit codes only; the work lives in up.py and status.py."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cxloop_cli.status import collect_status, render_backlogs, render_status
from cxloop_cli.suite import DEFAULT_WRITE_KEY, parse_only
from cxloop_cli.up import UpOptions, run_up
from cxloop_libs.audit.stream import SERVICES as AUDIT_SERVICES
from cxloop_libs.config import (
    EMBEDDED_NATS_MONITOR_PORT,
    EMBEDDED_NATS_PORT,
    GATEWAY_HTTP_PORT,
    default_data_dir,
)

app = typer.Typer(
    rich_markup_mode="markdown",
    help="cxloop: run the customer-experience suite locally and check on it.",
    no_args_is_help=True,
    add_completion=False,
)


def _console() -> Console:
    out = Console()
    if not out.is_terminal and "COLUMNS" not in os.environ:
        # Piped output (a log file, CI) has no width; do not fold URLs into 80 columns.
        out.width = 200
    return out


console = _console()


@app.command()
def up(
    only: Annotated[
        str | None,
        typer.Option(help="Comma-separated services to start, e.g. identity,gateway."),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Where SQLite files, NATS storage and logs go. [default: .cxloop]"),
    ] = None,
    nats_url: Annotated[
        str | None,
        typer.Option(envvar="CXLOOP_NATS_URL", help="Use this NATS instead of the embedded one."),
    ] = None,
    nats_port: Annotated[
        int, typer.Option(envvar="CXLOOP_EMBEDDED_NATS_PORT", help="Embedded NATS client port.")
    ] = EMBEDDED_NATS_PORT,
    nats_monitor_port: Annotated[
        int,
        typer.Option(envvar="CXLOOP_EMBEDDED_NATS_MONITOR_PORT", help="Embedded NATS monitoring."),
    ] = EMBEDDED_NATS_MONITOR_PORT,
    write_key: Annotated[
        str, typer.Option(envvar="CXLOOP_DEV_WRITE_KEY", help="Gateway write key (dev only).")
    ] = DEFAULT_WRITE_KEY,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for readiness.")] = 60.0,
    restart_backoff: Annotated[
        float,
        typer.Option(
            envvar="CXLOOP_UP_RESTART_BACKOFF_S",
            help="First delay before restarting a crashed service (doubles, up to 30 s).",
        ),
    ] = 1.0,
    max_crashes: Annotated[
        int,
        typer.Option(
            envvar="CXLOOP_UP_MAX_CRASHES",
            help="Crashes of one service within 60 s after which everything stops.",
        ),
    ] = 5,
) -> None:
    """Start embedded NATS and every service in development mode; a service that
    crashes is restarted with back-off; Ctrl-C stops all."""
    try:
        services = parse_only(only)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--only") from None
    opts = UpOptions(
        data_dir=data_dir if data_dir is not None else default_data_dir(),
        services=services,
        nats_url=nats_url or None,
        nats_port=nats_port,
        nats_monitor_port=nats_monitor_port,
        write_key=write_key,
        ready_timeout=timeout,
        restart_backoff_s=restart_backoff,
        max_crashes=max_crashes,
    )
    raise typer.Exit(run_up(opts, console))


@app.command()
def status(
    gateway_url: Annotated[
        str, typer.Option(envvar="CXLOOP_GATEWAY_URL", help="Gateway base URL.")
    ] = f"http://127.0.0.1:{GATEWAY_HTTP_PORT}",
    nats_monitor_url: Annotated[
        str, typer.Option(envvar="CXLOOP_NATS_MONITOR_URL", help="NATS monitoring base URL.")
    ] = f"http://127.0.0.1:{EMBEDDED_NATS_MONITOR_PORT}",
    nats_url: Annotated[
        str, typer.Option(envvar="CXLOOP_NATS_URL", help="NATS, for consumer lag and dead letters.")
    ] = f"nats://127.0.0.1:{EMBEDDED_NATS_PORT}",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Health of NATS, each gRPC service and the gateway, and each consumer's
    backlog and dead letters; exit 1 if any component is down."""
    import asyncio

    from cxloop_cli.backlog import consumer_backlogs
    from cxloop_cli.natsconn import NatsUnreachable, connected

    rows = collect_status(gateway_url, nats_monitor_url)

    async def backlogs() -> list[dict[str, object]]:
        async with connected(nats_url) as nc:
            return [b.to_json() for b in await consumer_backlogs(nc.jetstream())]

    try:
        lag: list[dict[str, object]] | None = asyncio.run(backlogs())
    except NatsUnreachable:
        lag = None
    if as_json:
        print(
            json.dumps(
                {
                    "components": [
                        {
                            "component": r.component,
                            "target": r.target,
                            "up": r.result.up,
                            "detail": r.result.detail,
                        }
                        for r in rows
                    ],
                    "consumers": lag,
                }
            )
        )
    else:
        render_status(console, rows)
        render_backlogs(console, lag)
    raise typer.Exit(0 if all(r.result.up for r in rows) else 1)


dlq_app = typer.Typer(help="Dead letters: events a consumer gave up on, kept byte for byte.")
app.add_typer(dlq_app, name="dlq")
NATS_URL_OPTION = typer.Option(envvar="CXLOOP_NATS_URL", help="NATS with JetStream.")


@dlq_app.command("ls")
def dlq_ls(
    nats_url: Annotated[str, NATS_URL_OPTION] = f"nats://127.0.0.1:{EMBEDDED_NATS_PORT}",
    consumer: Annotated[
        str | None, typer.Option(help="Only this consumer's, e.g. identity-interactions.")
    ] = None,
) -> None:
    """List dead letters with the consumer, original subject, tries and reason."""
    from cxloop_cli import deadletters

    raise typer.Exit(deadletters.show(console, nats_url, consumer))


@dlq_app.command("replay")
def dlq_replay(
    seq: Annotated[
        list[int] | None, typer.Argument(help="Sequences to replay (default: all).")
    ] = None,
    nats_url: Annotated[str, NATS_URL_OPTION] = f"nats://127.0.0.1:{EMBEDDED_NATS_PORT}",
    consumer: Annotated[str | None, typer.Option(help="Only this consumer's.")] = None,
) -> None:
    """Put dead letters back on their original subject (after fixing the cause)."""
    from cxloop_cli import deadletters

    raise typer.Exit(deadletters.replay(console, nats_url, consumer, list(seq or [])))


audit_app = typer.Typer(help="The audit log: who read or changed consent or personal data.")
app.add_typer(audit_app, name="audit")


@audit_app.command("export")
def audit_export(
    out: Annotated[Path, typer.Option(help="JSON lines file to write.")],
    since: Annotated[
        datetime | None, typer.Option(help="Only entries at or after this time (ISO 8601, UTC).")
    ] = None,
    subject: Annotated[str, typer.Option(help="Only entries about this customer id.")] = "",
    services: Annotated[
        str, typer.Option(help="Comma-separated services whose streams to read.")
    ] = ",".join(AUDIT_SERVICES),
    nats_url: Annotated[str, NATS_URL_OPTION] = f"nats://127.0.0.1:{EMBEDDED_NATS_PORT}",
) -> None:
    """Every service's audit entries from its stream (`cx.<service>.audit.recorded`)."""
    from cxloop_cli import audit

    names = [n.strip() for n in services.split(",") if n.strip()]
    unknown = [n for n in names if n not in AUDIT_SERVICES]
    if unknown:
        raise typer.BadParameter(
            f"unknown service(s): {', '.join(unknown)}", param_hint="--services"
        )
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    raise typer.Exit(
        audit.export(console, nats_url, out=out, services=names, since=since, subject=subject)
    )


keys_app = typer.Typer(help="API keys for the console API (/v1/customers ...), with roles.")
app.add_typer(keys_app, name="keys")
JSON_OPTION = typer.Option("--json", help="Machine-readable output.")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who or what holds it, e.g. 'desk agent 17'.")],
    role: Annotated[str, typer.Option(help="admin, marketer, analyst, agent or privacy_officer.")],
    rate: Annotated[int, typer.Option(help="Requests per second per gateway process.")] = 50,
    nats_url: Annotated[str, NATS_URL_OPTION] = f"nats://127.0.0.1:{EMBEDDED_NATS_PORT}",
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Create a key; it is printed once (only its hash is stored)."""
    from cxloop_cli import keys

    raise typer.Exit(keys.create(console, nats_url, name, role, rate, as_json))


@keys_app.command("list")
def keys_list(
    nats_url: Annotated[str, NATS_URL_OPTION] = f"nats://127.0.0.1:{EMBEDDED_NATS_PORT}",
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Every key with its role, rate and whether it is revoked (never the secret)."""
    from cxloop_cli import keys

    raise typer.Exit(keys.list_keys(console, nats_url, as_json))


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key id (12 hex digits).")],
    nats_url: Annotated[str, NATS_URL_OPTION] = f"nats://127.0.0.1:{EMBEDDED_NATS_PORT}",
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Revoke a key: every gateway refuses it from the next request on."""
    from cxloop_cli import keys

    raise typer.Exit(keys.revoke(console, nats_url, key_id, as_json))


@app.command()
def demo(
    customers: Annotated[int, typer.Option(min=1, max=100_000, help="How many customers.")] = 300,
    days: Annotated[int, typer.Option(min=7, max=1095, help="Days of history.")] = 365,
    seed: Annotated[int, typer.Option(help="Same seed, same shop.")] = 7,
    gateway_url: Annotated[
        str, typer.Option(envvar="CXLOOP_GATEWAY_URL", help="Gateway base URL.")
    ] = f"http://127.0.0.1:{GATEWAY_HTTP_PORT}",
    write_key: Annotated[
        str, typer.Option(envvar="CXLOOP_DEMO_WRITE_KEY", help="A source write key.")
    ] = DEFAULT_WRITE_KEY,
    grpc_token: Annotated[
        str, typer.Option(envvar="CXLOOP_GRPC_CLIENT_TOKEN", help="Bearer token for gRPC calls.")
    ] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Seed the running suite with a synthetic shop through its public APIs
    (a year of web, app, store and call-centre behaviour, consent, reviews,
    surveys), then print what to open. Idempotent: a second run adds nothing."""
    import asyncio

    from cxloop_cli import demo as demo_mod
    from cxloop_cli.demo_shop import make_shop
    from cxloop_libs.config import GRPC_PORTS

    targets = {
        name: os.environ.get(f"CXLOOP_{name.upper()}_GRPC_TARGET", f"127.0.0.1:{port}")
        for name, port in GRPC_PORTS.items()
    }
    if not asyncio.run(demo_mod.wait_for_gateway(gateway_url, 60)):
        console.print(
            f"[red]error:[/] the gateway at {gateway_url} is not ready; start the suite with "
            "`make run` (or set --gateway-url)",
            highlight=False,
        )
        raise typer.Exit(1)
    shop = make_shop(customers, days, seed)
    seeder = demo_mod.Seeder(
        shop, gateway_url=gateway_url, write_key=write_key, targets=targets, token=grpc_token
    )
    report = asyncio.run(demo_mod.run(seeder, console, show_progress=not as_json))
    summary = report.to_json()
    sample = shop.people[0]
    summary["sample"] = {"email": sample.email, "userId": sample.user_id}
    if as_json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        for k, v in summary["counts"].items():
            console.print(f"  {k}: {v:,}", highlight=False)
        for k, v in summary["problems"].items():
            console.print(f"  [yellow]{k}: {v:,}[/]", highlight=False)
        console.print(
            "\nNow look at one customer across the suite, as a service agent would:\n"
            "  KEY=$(.venv/bin/cxloop keys create --name demo --role agent --json | "
            "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"key\"])')\n"
            f'  curl -H "Authorization: Bearer $KEY" -H "X-Cxloop-Reason: demo" '
            f"'{gateway_url}/v1/customers?email={sample.email}'",
            highlight=False,
            soft_wrap=True,
        )
    raise typer.Exit(0 if report.customers else 1)


@app.command()
def customer(
    who: Annotated[str, typer.Argument(help="A customer id, an email or a phone number.")],
    reason: Annotated[str, typer.Option(help="Why you read this customer's data (audited).")],
    key: Annotated[
        str, typer.Option(envvar="CXLOOP_API_KEY", help="An API key (`cxloop keys create`).")
    ] = "",
    gateway_url: Annotated[
        str, typer.Option(envvar="CXLOOP_GATEWAY_URL", help="Gateway base URL.")
    ] = f"http://127.0.0.1:{GATEWAY_HTTP_PORT}",
    as_json: Annotated[bool, typer.Option("--json", help="The 360 as JSON.")] = False,
) -> None:
    """One customer across the suite (identity, consent, points, recommendations,
    cases), read through the gateway like the console does."""
    from cxloop_cli import customer as customer_mod

    raise typer.Exit(customer_mod.show(console, gateway_url, key, who, reason, as_json))


privacy_app = typer.Typer(
    help="Data-subject requests (export, erasure) through the gateway's privacy API."
)
app.add_typer(privacy_app, name="privacy")
PRIVACY_TOKEN_OPTION = typer.Option(
    envvar="CXLOOP_PRIVACY_TOKEN",
    help="A token of the gateway's CXLOOP_GATEWAY_PRIVACY_TOKENS (development: dev-privacy).",
)
GATEWAY_URL_OPTION = typer.Option(envvar="CXLOOP_GATEWAY_URL", help="Gateway base URL.")
WAIT_OPTION = typer.Option(min=0, max=3600, help="Seconds to wait for every service's answer.")


@privacy_app.command("export")
def privacy_export(
    who: Annotated[str, typer.Argument(help="A customer id, an email or a phone number.")],
    out: Annotated[Path | None, typer.Option(help="Write the access bundle to this file.")] = None,
    token: Annotated[str, PRIVACY_TOKEN_OPTION] = "dev-privacy",
    gateway_url: Annotated[str, GATEWAY_URL_OPTION] = f"http://127.0.0.1:{GATEWAY_HTTP_PORT}",
    wait: Annotated[float, WAIT_OPTION] = 120,
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Export everything the suite holds about a customer (an access request).

    Exit 0 when completed, 1 on an error, 3 when still running after --wait."""
    from cxloop_cli import privacy

    call = privacy.PrivacyCall(gateway_url, token, "access", who, wait_s=wait)
    raise typer.Exit(privacy.main(console, call, as_json=as_json, out=out))


@privacy_app.command("erase")
def privacy_erase(
    who: Annotated[str, typer.Argument(help="A customer id, an email or a phone number.")],
    reason: Annotated[str, typer.Option(help="Why (the request, a ticket); kept as its actor.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    token: Annotated[str, PRIVACY_TOKEN_OPTION] = "dev-privacy",
    gateway_url: Annotated[str, GATEWAY_URL_OPTION] = f"http://127.0.0.1:{GATEWAY_HTTP_PORT}",
    wait: Annotated[float, WAIT_OPTION] = 120,
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Erase a customer in every service (crypto-shredding); cannot be undone.

    Exit 0 when completed, 1 on an error, 3 when still running after --wait."""
    from cxloop_cli import privacy

    reason = reason.strip()
    if not reason:
        console.print("[red]error:[/] --reason must say why (a request id, a ticket)")
        raise typer.Exit(privacy.EXIT_USAGE)
    if not yes and not typer.confirm(f"Erase {who} in every service? This cannot be undone"):
        console.print("nothing erased")
        raise typer.Exit(privacy.EXIT_ERROR)
    call = privacy.PrivacyCall(
        gateway_url, token, "erasure", who, actor=f"cxloop cli: {reason}", wait_s=wait
    )
    raise typer.Exit(privacy.main(console, call, as_json=as_json))


@app.command()
def version() -> None:
    """Print the installed cxloop version."""
    try:
        v = metadata.version("cxloop")
    except metadata.PackageNotFoundError:
        v = "unknown (not installed)"
    console.print(f"cxloop {v}", highlight=False)


if __name__ == "__main__":
    app()
