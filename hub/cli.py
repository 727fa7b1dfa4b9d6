"""The ``hub`` command: ``hub serve`` runs the venue, ``hub demo`` shows it working."""

from __future__ import annotations

import argparse
import ipaddress
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


def wait_for_stop(stop: threading.Event) -> None:
    """Wait until a signal handler sets ``stop``. In short waits: a process-wide signal may be
    delivered to any thread (grpc.aio runs several), and Python runs its handler on the main thread
    only once that thread wakes; a wait without a timeout could then outlive the SIGTERM for ever."""
    while not stop.wait(0.2):
        pass


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def dev_tokens_refusal(config: HubConfig, allowed: bool) -> str | None:
    """Why ``hub serve`` must not start: the published development tokens on a reachable address
    let anyone trade as those participants (and act as the operator). ``--insecure-dev-tokens``
    says it is meant (a development stack behind its own network)."""
    exposed = config.public_dev_tokens()
    if not exposed or allowed or _is_loopback(config.network.host):
        return None
    return (f"refusing to serve on {config.network.host} with the public development tokens of "
            f"{', '.join(exposed)}: anyone reaching that address could trade as them. Pass --config with "
            f"your own participants (token_sha256), listen on 127.0.0.1, or pass --insecure-dev-tokens "
            f"for a development stack")


def cmd_serve(args: argparse.Namespace) -> int:
    from hub.gc_policy import GcPolicy
    from hub.server import run_server

    config = _config(args)
    refusal = dev_tokens_refusal(config, args.insecure_dev_tokens)
    if refusal is not None:
        raise ConfigError(refusal)
    Path(config.data_dir).mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    from hub.server import open_ledger_journal

    with run_server(config, open_ledger_journal(config), gc_policy=GcPolicy.of(config)) as (hub, port):
        if hub.recovery is not None:
            r = hub.recovery
            print(f"recovered {r.records} ledger records ({r.commands} commands) in {r.seconds:.2f}s; "
                  f"sequence resumes after {r.last_seq}", flush=True)
        engines = ", ".join(f"{ac.name}={e.implementation}" for ac, e in hub.engines.items())
        print(f"hub serving on {config.network.host}:{port} ({engines}); data dir {config.data_dir}", flush=True)
        if not args.config:
            print("embedded defaults: development tokens are 'dev-<participant id>' (see README)", flush=True)
        wait_for_stop(stop)
        print("hub stopping", flush=True)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from hub.demo import run_demo

    config = _config(args)
    refusal = dev_tokens_refusal(config, args.insecure_dev_tokens)
    if refusal is not None:
        raise ConfigError(refusal)
    return run_demo(config)


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


def _ledger_engine(args: argparse.Namespace):
    from ledger.schema import connect, sqlite_url

    if not args.url and not (Path(args.data_dir) / "ledger.sqlite3").is_file():
        raise OSError(f"no ledger in {args.data_dir} (and no --url)")
    return connect(args.url or sqlite_url(args.data_dir))


def _verifier(args: argparse.Namespace):
    """The pinned Ed25519 key; with ``--post-quantum`` the ML-DSA-65 key too, and every checkpoint
    must carry both signatures."""
    from ledger.signing import ED25519_PUB_FILE, MLDSA65_PUB_FILE, AllKeys, load_verifier

    ed = load_verifier(args.public_key or Path(args.data_dir) / ED25519_PUB_FILE)
    if not args.post_quantum:
        return ed
    return AllKeys(ed, load_verifier(args.pq_public_key or Path(args.data_dir) / MLDSA65_PUB_FILE))


def cmd_ledger(args: argparse.Namespace) -> int:
    import json

    from ledger.acklog import pending_records
    from ledger.proofs import ProofError, check_bundle, consistency_bundle, inclusion_bundle
    from ledger.store import LedgerStore, ack_log_path
    from ledger.verify import verify_ledger

    if args.ledger_command == "check-proof":
        try:
            print(check_bundle(json.loads(Path(args.bundle).read_text()), _verifier(args)))
        except ProofError as exc:
            print(f"PROOF FAILED: {exc}", file=sys.stderr)
            return 1
        return 0
    engine = _ledger_engine(args)
    try:
        if args.ledger_command == "verify":
            anchors = [Path(a).read_text() for a in args.anchor]
            report = verify_ledger(engine, _verifier(args), anchors, workers=args.workers)
            if not report.ok:
                print(f"LEDGER VERIFICATION FAILED after {report.records} good records: {report.failure}",
                      file=sys.stderr)
                return 1
            print(f"ledger OK: {report.records} records, {report.checkpoints} signed checkpoints, "
                  f"{report.anchors} external anchors, {report.records_per_s:,.0f} records/s "
                  f"({report.workers} {'process' if report.workers == 1 else 'processes'})")
            for warning in report.warnings:
                print(f"note: {warning}")
            log_path = ack_log_path(engine)
            pending = pending_records(log_path, report.records) if log_path else 0
            if pending:
                print(f"note: {pending} acknowledged records are still only in the ack log {log_path} "
                      "(the hub stopped before inserting them); the hub inserts them at its next start")
            return 0
        store = LedgerStore(engine)
        if args.ledger_command == "checkpoint":
            cp = store.last_checkpoint()
            if cp is None:
                print("no checkpoint yet", file=sys.stderr)
                return 1
            print(cp.note, end="")
            return 0
        if args.ledger_command == "prove-inclusion":
            bundle = inclusion_bundle(store, args.index, args.size)
        else:
            bundle = consistency_bundle(store, args.from_size, args.to_size)
        print(json.dumps(bundle, indent=2))
        return 0
    except LookupError as exc:
        print(f"hub ledger: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()


def cmd_fees(args: argparse.Namespace) -> int:
    """Fee statement of the caller (participant token) or the venue revenue (operator token)."""
    from hub.client import HubClient
    from hub.v1 import account_pb2, admin_pb2

    with HubClient(args.target, args.token, timeout=10) as client:
        if args.fees_command == "statement":
            reply = client.account_stub.GetStatement(account_pb2.StatementRequest(month=args.month),
                                                     metadata=client.metadata, timeout=10)
        else:
            reply = client.admin_stub.GetRevenue(admin_pb2.RevenueRequest(month=args.month),
                                                 metadata=client.metadata, timeout=10)
    print(reply.json if args.json else reply.text, end="" if args.json else "\n")
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
        p.add_argument("--insecure-dev-tokens", action="store_true",
                       help="serve the public development tokens on a non-loopback address (development only)")
    status = sub.add_parser("status", help="wait for a running hub and print its status")
    status.add_argument("--target", default="127.0.0.1:50051")
    status.add_argument("--token", default=os.environ.get("HUB_TOKEN", ""), help="operator token ($HUB_TOKEN)")
    status.add_argument("--wait", type=float, default=30.0, help="seconds to wait for SERVING")
    ledger = sub.add_parser("ledger", help="verify the audit ledger, print checkpoints and proofs")
    lsub = ledger.add_subparsers(dest="ledger_command", required=True)
    for name, help_text in (("verify", "check every record, the chain, tree, checkpoints and signatures"),
                            ("checkpoint", "print the latest signed checkpoint note"),
                            ("prove-inclusion", "print an inclusion proof bundle (JSON)"),
                            ("prove-consistency", "print a consistency proof bundle (JSON)"),
                            ("check-proof", "check a proof bundle with only the public key")):
        p = lsub.add_parser(name, help=help_text)
        p.add_argument("--data-dir", default="hub-data")
        p.add_argument("--url", default="", help="ledger database URL (default: SQLite in the data dir)")
        p.add_argument("--public-key", default="", help="pinned verifier key (default: DATA_DIR/ledger_ed25519.pub)")
        p.add_argument("--post-quantum", action="store_true",
                       help="require the ML-DSA-65 signature on every checkpoint too (ledger.post_quantum)")
        p.add_argument("--pq-public-key", default="",
                       help="pinned ML-DSA-65 key (default: DATA_DIR/ledger_mldsa65.pub)")
        if name == "verify":
            p.add_argument("--anchor", action="append", default=[],
                           help="a signed checkpoint note kept outside the database (repeatable)")
            p.add_argument("--workers", type=int, default=None,
                           help="processes checking record ranges in parallel (default: one per CPU for large "
                                "ledgers; 1: all in this process)")
        if name == "prove-inclusion":
            p.add_argument("--index", type=int, required=True)
            p.add_argument("--size", type=int, default=0, help="tree size of a checkpoint (default: latest)")
        if name == "prove-consistency":
            p.add_argument("--from-size", type=int, required=True)
            p.add_argument("--to-size", type=int, default=0)
        if name == "check-proof":
            p.add_argument("bundle", help="JSON file written by prove-inclusion / prove-consistency")
    fees = sub.add_parser("fees", help="monthly fee statements and venue revenue from a running hub")
    fsub = fees.add_subparsers(dest="fees_command", required=True)
    for name, help_text in (("statement", "your monthly statement (participant token)"),
                            ("revenue", "venue revenue summary (operator token)")):
        p = fsub.add_parser(name, help=help_text)
        p.add_argument("--target", default="127.0.0.1:50051")
        p.add_argument("--token", default=os.environ.get("HUB_TOKEN", ""), help="bearer token ($HUB_TOKEN)")
        p.add_argument("--month", default="", help="YYYY-MM (UTC); default: this month")
        p.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "demo" and args.port is None:
        args.port = 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        commands = {"serve": cmd_serve, "demo": cmd_demo, "status": cmd_status, "ledger": cmd_ledger, "fees": cmd_fees}
        return commands[args.command](args)
    except (ConfigError, EngineUnavailableError, OSError, grpc.RpcError) as exc:
        print(f"hub: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
