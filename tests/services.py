"""The real services the tests use: a PostgreSQL server (started by scripts/test-services.sh)
and a local Ray cluster. A missing service fails the test; nothing here skips."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ROOT / "scripts" / "test-services.sh"
POSTGRES_ENV = "HYPERLAW_TEST_POSTGRES"


def postgres_server_url() -> str:
    """HYPERLAW_TEST_POSTGRES, or the URL of the server the service script starts."""
    url = os.environ.get(POSTGRES_ENV, "").strip()
    if url:
        return url
    done = subprocess.run(["bash", str(SERVICES)], capture_output=True, text=True, timeout=600)
    if done.returncode != 0 or not done.stdout.strip():
        pytest.fail(f"PostgreSQL is not available: {SERVICES} failed ({done.returncode}):\n"
                    f"{done.stderr[-2000:]}\nrun it by hand, or set {POSTGRES_ENV}")
    url = done.stdout.strip().splitlines()[-1]
    os.environ[POSTGRES_ENV] = url  # worker subprocesses inherit it
    return url


def restart_postgres(immediate: bool = False) -> None:
    """Restart the test server. A fast shutdown cuts open connections; an immediate one kills
    the server without a shutdown checkpoint, as a crash would (WAL not written yet is lost)."""
    command = "restart-postgres-immediate" if immediate else "restart-postgres"
    subprocess.run(["bash", str(SERVICES), command], check=True, timeout=120)


def stop_postgres() -> None:
    """Stop the test server (fast shutdown); `start_postgres` brings it back."""
    subprocess.run(["bash", str(SERVICES), "stop-postgres"], check=True, timeout=120)


def start_postgres() -> None:
    """Start the test server (a running server is left alone)."""
    subprocess.run(["bash", str(SERVICES)], check=True, timeout=600, stdout=subprocess.DEVNULL)


@contextmanager
def fresh_postgres_database(server_url: str) -> Iterator[str]:
    """A new empty database on the server; dropped (connections and all) afterwards."""
    admin_url = sa.make_url(server_url).set(drivername="postgresql+psycopg")
    name = f"hyperlaw_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {admin_url.render_as_string()} is not reachable: {exc}; "
                    f"start it with {SERVICES}")
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RayCluster:
    """A local Ray head node started with `ray start --head --block`, stopped on close."""

    def __init__(self, tmp: Path, num_cpus: int = 2) -> None:
        self.port = _free_port()
        ray_bin = Path(sys.executable).with_name("ray")
        # a private test cluster on loopback: no token, whatever ~/.ray holds from other runs;
        # drivers started by the tests inherit the setting
        os.environ["RAY_AUTH_MODE"] = "disabled"
        env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
        self.log = open(tmp / "ray-head.log", "w")  # noqa: SIM115 - closed in close()
        self.process = subprocess.Popen(
            [str(ray_bin), "start", "--head", "--block", f"--port={self.port}",
             f"--num-cpus={num_cpus}", "--num-gpus=0", "--include-dashboard=false",
             "--disable-usage-stats", f"--temp-dir={tmp / 'ray'}"],
            stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.address = f"127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 120.0) -> None:
        import ray

        try:
            ray.init(address=self.address, logging_level="ERROR", log_to_driver=False,
                     _node_ip_address="127.0.0.1")
        except Exception as exc:
            pytest.fail(f"the Ray head did not start: {exc}; see {self.log.name}")
        ray.shutdown()

    def close(self) -> None:
        self.process.terminate()  # `ray start --block` stops its cluster on SIGTERM
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
