"""A real ``maskcli serve`` process for the server's tests: a free loopback port, readiness awaited with a bound,
and stopped (SIGTERM, then killed if it hangs) however the test ends."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from conftest import REPO


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """A running server: its process, its address and how to reach it."""

    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def client(self, **options: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120, **options)  # type: ignore[arg-type]

    def stop(self, grace: float = 30.0) -> int:
        """SIGTERM, and the exit status (killed, and failing the caller, if it does not end in ``grace`` s)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
                raise AssertionError("the server did not stop within its grace period after SIGTERM") from None
        return int(self.process.returncode)

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))


@contextlib.contextmanager
def running(*args: str, home: Path, env: dict[str, str] | None = None, ready: float = 120.0) -> Iterator[Server]:
    """``maskcli serve --port FREE ARGS`` until the block ends; ready once ``/health`` says so."""
    port = free_port()
    full_env = {**os.environ, "MASKCLI_HOME": str(home), "MASKCLI_OFFLINE": "1", **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), full_env.get("PYTHONPATH")]))
    home.mkdir(parents=True, exist_ok=True)
    log = open(home / "server.log", "wb")  # noqa: SIM115 (a file, not a pipe: a chatty server never blocks)
    process = subprocess.Popen([sys.executable, "-m", "maskcli", "serve", "--port", str(port), *args], cwd=REPO,
                               env=full_env, stdout=log, stderr=log)
    server = Server(process, port)
    try:
        deadline = time.monotonic() + ready
        while True:
            if process.poll() is not None:
                log.flush()
                raise AssertionError(f"the server ended with {process.returncode}: "
                                     f"{(home / 'server.log').read_text(errors='replace')}")
            try:
                if httpx.get(server.url + "/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("the server was not ready in time")
            time.sleep(0.2)
        yield server
    finally:
        try:
            server.stop()  # a server that hangs on SIGTERM fails the test that started it
        finally:
            log.close()
