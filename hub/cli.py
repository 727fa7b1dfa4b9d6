"""The ``hub`` command: ``hub serve`` runs the venue, ``hub demo`` shows it working."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from dataclasses import replace
from pathlib import Path

import grpc

from hub.config import ConfigError, HubConfig, load_config
from matching.engine import EngineUnavailableError


def _config(args: argparse.Namespace) -> HubConfig:
    config = load_config(args.config) if args.config else HubConfig.default()
    if args.port is not None:
        config = config.with_network(port=args.port)
    if getattr(args, "host", None):
        config = config.with_network(host=args.host)
    if args.data_dir:
        config = replace(config, data_dir=args.data_dir)
    return config.validated()


def cmd_serve(args: argparse.Namespace) -> int:
    from hub.server import run_server

    config = _config(args)
    Path(config.data_dir).mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    from hub.server import open_ledger_journal

    with run_server(config, open_ledger_journal(config)) as (hub, port):
        if hub.recovery is not None:
            r = hub.recovery
            print(f"recovered {r.records} ledger records ({r.commands} commands) in {r.seconds:.2f}s; "
                  f"sequence resumes after {r.last_seq}", flush=True)
        engines = ", ".join(f"{ac.name}={e.implementation}" for ac, e in hub.engines.items())
        print(f"hub serving on {config.network.host}:{port} ({engines}); data dir {config.data_dir}", flush=True)
        if not args.config:
            print("embedded defaults: development tokens are 'dev-<participant id>' (see README)", flush=True)
        stop.wait()
        print("hub stopping", flush=True)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from hub.demo import run_demo

    return run_demo(_config(args))


def cmd_status(args: argparse.Namespace) -> int:
    """Wait until a hub reports SERVING, then print its status (operator token needed)."""
    from hub.client import HubClient

    with HubClient(args.target, args.token, timeout=10) as client:
        if not client.wait_ready(args.wait):
            print(f"hub at {args.target} is not serving after {args.wait}s", file=sys.stderr)
            return 1
        status = client.status()
    print(f"hub at {args.target}: SERVING, sequence {status.last_sequence}, digest {status.state_digest}")
    for engine in status.engines:
        print(f"  engine {engine.asset_class} ({engine.implementation}): {engine.resting_orders} resting orders")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hub", description="Venue-side exchange hub")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("serve", "run the hub"), ("demo", "start a hub, run scripted participants, exit")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--config", help="TOML config file (default: embedded defaults)")
        p.add_argument("--port", type=int, help="listen port (0: any free port)")
        p.add_argument("--host", help="listen address (default 127.0.0.1)")
        p.add_argument("--data-dir", help="directory for the ledger and keys")
    status = sub.add_parser("status", help="wait for a running hub and print its status")
    status.add_argument("--target", default="127.0.0.1:50051")
    status.add_argument("--token", default=os.environ.get("HUB_TOKEN", ""), help="operator token ($HUB_TOKEN)")
    status.add_argument("--wait", type=float, default=30.0, help="seconds to wait for SERVING")
    args = parser.parse_args(argv)
    if args.command == "demo" and args.port is None:
        args.port = 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return {"serve": cmd_serve, "demo": cmd_demo, "status": cmd_status}[args.command](args)
    except (ConfigError, EngineUnavailableError, OSError, grpc.RpcError) as exc:
        print(f"hub: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
