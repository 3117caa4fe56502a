"""`midonet up` as a real process: first start, generated password, SIGTERM, restart on the same data."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from midonet.client import Client, ClientError
from midonet.testing.apiserver import free_port

MIDONET = Path(sys.executable).parent / "midonet"


def wait_answering(url: str, password_file: Path, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> str:
    """Poll until the API answers a logged-in request; the admin password (read from `password_file`)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"midonet exited with {proc.returncode}")
        password = password_file.read_text().strip() if password_file.exists() else ""
        if password:
            try:
                with Client(url, "admin", password, timeout=2) as client:
                    client.list("bridges")
                return password
            except ClientError as e:
                last = e
        time.sleep(0.05)
    pytest.fail(f"midonet did not answer within {timeout}s: {last}")


def clean_env(**extra: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MIDONET_")} | extra


@contextmanager
def midonet_up(data_dir: Path, port: int, log: Path, command: str = "up",
               env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        # The local agent would take this namespace's interfaces: tests/system/test_up_agent.py runs it in its own.
        extra = ["--no-agent"] if command == "up" else []
        proc = subprocess.Popen([str(MIDONET), command, "--data-dir", str(data_dir), "--listen", f"127.0.0.1:{port}",
                                 *extra], stdout=out, stderr=subprocess.STDOUT, env=env or clean_env())
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def stop(proc: subprocess.Popen[bytes]) -> int:
    os.kill(proc.pid, signal.SIGTERM)
    return proc.wait(timeout=30)


def test_up_persists_across_restarts(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    url = f"http://127.0.0.1:{port}/midonet-api"
    password_file = data_dir / "admin-password"
    log = tmp_path / "up.log"

    with midonet_up(data_dir, port, log) as proc:
        password = wait_answering(url, password_file, proc)
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
        with Client(url, "admin", password) as client:
            bridge = client.create("bridges", {"name": "survivor", "tenantId": "acme"})
        assert stop(proc) == 0, log.read_text()
    first_log = log.read_text()
    assert password in first_log and url in first_log          # printed for the user

    with midonet_up(data_dir, port, log) as proc:
        assert wait_answering(url, password_file, proc) == password
        assert password_file.read_text().strip() == password
        with Client(url, "admin", password) as client:
            assert client.get("bridges", bridge["id"])["name"] == "survivor"
        assert stop(proc) == 0, log.read_text()


def test_up_refuses_a_taken_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([str(MIDONET), "api", "--data-dir", str(tmp_path / "d"),
                                 "--listen", f"127.0.0.1:{port}"], capture_output=True, text=True,
                                env=clean_env(), timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: cannot listen on 127.0.0.1:{port}: Address already in use"


def test_api_with_env_password_and_users_file_stops_on_sigint(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    users = {"users": [{"name": "alice", "password": "alice-pw", "role": "tenant_admin", "tenant": "tenant-a"},
                       {"name": "admin", "password": "ignored", "role": "tenant_user"}]}
    (data_dir / "users.json").write_text(json.dumps(users))
    known = tmp_path / "known-password"
    known.write_text("from-the-env\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}/midonet-api"
    log = tmp_path / "api.log"
    with midonet_up(data_dir, port, log, "api", clean_env(MIDONET_ADMIN_PASSWORD="from-the-env")) as proc:
        wait_answering(url, known, proc)
        with Client(url, "alice", "alice-pw") as alice:
            assert alice.create("bridges", {"name": "a", "tenantId": "tenant-a"})["tenantId"] == "tenant-a"
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=30) == 0, log.read_text()
    assert not (data_dir / "admin-password").exists()
    assert "from-the-env" not in log.read_text()
