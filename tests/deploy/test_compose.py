"""docker-compose.yml is real: its services' commands start here as local processes and talk.

No Docker engine runs on this machine, so the test reads the compose file, runs each service's
command with the image's entrypoint (``hub``), maps compose hostnames and ports onto loopback
and a free port, and checks that the status service and the healthcheck reach the hub.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML (test extra) parses docker-compose.yml")

REPO = Path(__file__).resolve().parents[2]
HUB = [sys.executable, "-m", "hub"]  # the image's ENTRYPOINT ["hub"], run from this checkout


def _compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def _entrypoint() -> list[str]:
    text = (REPO / "Dockerfile").read_text()
    match = re.search(r'^ENTRYPOINT\s+\["hub"\]', text, re.M)
    assert match, "the image's entrypoint is expected to be the hub CLI"
    return HUB


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _localise(args: list[str], port: int, data_dir: Path) -> list[str]:
    out = []
    for arg in args:
        arg = arg.replace("hub:50051", f"127.0.0.1:{port}").replace("127.0.0.1:50051", f"127.0.0.1:{port}")
        arg = {"0.0.0.0": "127.0.0.1", "50051": str(port), "/var/lib/hub": str(data_dir)}.get(arg, arg)
        out.append(arg)
    return out


def test_compose_file_is_consistent():
    doc = _compose()
    services = doc["services"]
    assert set(services) == {"hub", "status"}
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown service {dep}"
        for volume in svc.get("volumes", []):
            assert volume.split(":")[0] in doc.get("volumes", {}), f"{name}: undeclared volume {volume}"
    # Published only on the host's loopback.
    assert all(p.startswith("127.0.0.1:") for p in services["hub"]["ports"])
    assert services["status"]["depends_on"]["hub"]["condition"] == "service_healthy"
    # Its hub listens on the compose network with the built-in (public) tokens: that must be said
    # explicitly, or `hub serve` refuses to start.
    command = services["hub"]["command"]
    assert "0.0.0.0" in command and "--config" not in command and "--insecure-dev-tokens" in command


def test_compose_services_start_and_talk_as_local_processes(tmp_path):
    doc = _compose()
    entry = _entrypoint()
    port = _free_port()
    hub_svc, status_svc = doc["services"]["hub"], doc["services"]["status"]
    env = {**os.environ, **hub_svc.get("environment", {})}
    server = subprocess.Popen(entry + _localise(hub_svc["command"], port, tmp_path / "data"), env=env,
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        health = _localise(hub_svc["healthcheck"]["test"][1:], port, tmp_path)
        assert health[0] == "hub"
        probe = subprocess.run(entry + _localise(status_svc["command"], port, tmp_path),
                               env={**os.environ, **status_svc["environment"]}, cwd=REPO,
                               capture_output=True, text=True, timeout=90)
        assert probe.returncode == 0, probe.stderr
        assert f"hub at 127.0.0.1:{port}: SERVING" in probe.stdout
        assert "engine 1 (cython)" in probe.stdout
        check = subprocess.run(entry + health[1:], env=os.environ, cwd=REPO, capture_output=True, text=True,
                               timeout=60)
        assert check.returncode == 0, check.stderr
        assert (tmp_path / "data").is_dir()
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert server.returncode == 0, output
    assert "hub stopping" in output


def test_status_probe_fails_without_a_hub(tmp_path):
    port = _free_port()
    probe = subprocess.run(HUB + ["status", "--target", f"127.0.0.1:{port}", "--token", "dev-operator",
                                  "--wait", "1"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert probe.returncode != 0
    assert "not serving" in probe.stderr.lower()
