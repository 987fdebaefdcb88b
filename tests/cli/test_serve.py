"""``imagegate serve`` leaves nothing behind: the directories it made (the --dev-cert key pair, the
shared quarantine-marker sightings, the metrics files) go when it ends, however it ends."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.support.server import free_port

POLICY = """\
apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata: {name: serve}
spec:
  registries: {allow: [ghcr.io]}
  rules:
    - {name: all, images: ["ghcr.io/**"]}
"""


def serve(tmp_path: Path, port: int) -> tuple[subprocess.Popen[str], Path]:
    """``imagegate serve --dev-cert`` with its own TMPDIR, where serve makes its directories."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PROMETHEUS_MULTIPROC_DIR", "IMAGEGATE_SEEN_MARKERS_DIR")
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "webhook",
            "serve",
            "--policy",
            str(policy),
            "--dev-cert",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**env, "TMPDIR": str(temporary)},
    )
    return process, temporary


def wait_ready(process: subprocess.Popen[str], port: int) -> Path:
    """The dev certificate serve printed, once /readyz answers over TLS with it."""
    assert process.stderr is not None
    line = process.stderr.readline()
    found = re.match(r"dev certificate: (\S+)", line)
    assert found, line
    cert = Path(found.group(1))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()
        try:
            with requests.Session() as session:
                session.trust_env = False
                if session.get(f"https://127.0.0.1:{port}/readyz", verify=str(cert), timeout=2).ok:
                    return cert
        except requests.RequestException:
            time.sleep(0.1)
    raise AssertionError("imagegate serve did not get ready")


@pytest.mark.e2e
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGQUIT])
def test_the_dev_certificate_and_its_key_are_removed_when_serve_is_stopped(
    tmp_path: Path, signum: int
) -> None:
    port = free_port()
    process, temporary = serve(tmp_path, port)
    try:
        cert = wait_ready(process, port)
        key = cert.with_name("tls.key")
        assert key.is_file() and cert.parent.parent == temporary
        assert sorted(p.name.split("-")[1] for p in temporary.iterdir()) == ["dev", "metrics", "seen"]
        process.send_signal(signum)
        process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert not cert.parent.exists()
    assert list(temporary.iterdir()) == []


@pytest.mark.e2e
def test_a_worker_that_ends_takes_nothing_the_server_still_uses(tmp_path: Path) -> None:
    # A gunicorn worker is a fork of serve and unwinds through its frames when it exits.
    port = free_port()
    process, temporary = serve(tmp_path, port)
    try:
        cert = wait_ready(process, port)
        [worker, *_] = (
            int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _parent(p) == process.pid
        )
        os.kill(worker, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while (
            time.monotonic() < deadline
            and Path(f"/proc/{worker}").exists()
            and _parent(Path(f"/proc/{worker}")) == process.pid
        ):
            time.sleep(0.1)
        time.sleep(0.5)
        assert cert.is_file() and cert.with_name("tls.key").is_file()
        assert len(list(temporary.iterdir())) == 3
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert list(temporary.iterdir()) == []


def _parent(proc: Path) -> int:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError):
        return -1


@pytest.mark.e2e
def test_a_start_that_fails_removes_what_it_made(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process, temporary = serve(tmp_path, port)  # the certificate is made before the port is found busy
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2, stderr
    assert "dev certificate:" in stderr and f"cannot listen on 127.0.0.1:{port}" in stderr
    assert list(temporary.iterdir()) == []


def test_serve_run_in_a_process_leaves_its_signal_handlers_as_it_found_them(tmp_path: Path) -> None:
    # serve answers TERM by unwinding (to remove what it made) only while it runs.
    from webhook.cli import main

    before = signal.getsignal(signal.SIGTERM)
    (tmp_path / "policy.yaml").write_text(POLICY)
    assert main(["serve", "--policy", str(tmp_path / "policy.yaml")]) == 2  # neither --cert nor --dev-cert
    assert signal.getsignal(signal.SIGTERM) is before
