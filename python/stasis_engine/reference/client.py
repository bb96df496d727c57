"""A small client for the reference engine (and any vLLM-API server), plus a launcher: for tests and benches.

server = ServerProcess.start("/tmp/tiny", device="cpu", log_path="/tmp/serve.log")
try:
    print(server.client.complete("Hello", max_tokens=8)["choices"][0]["text"])
finally:
    server.stop()
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any


class ApiError(Exception):
    def __init__(self, status: int, body: Any, what: str) -> None:
        super().__init__(f"{what}: HTTP {status}: {body}")
        self.status, self.body = status, body


@dataclass
class Client:
    base_url: str
    timeout: float = 300.0

    def request(
        self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None, raw: bytes | None = None
    ) -> tuple[int, Any]:
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(
            url, data=data, method=method, headers={"Content-Type": "application/json"} if data is not None else {}
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                status, payload = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, payload = e.code, e.read()
        return status, json.loads(payload) if payload else None

    def ok(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None) -> Any:
        status, payload = self.request(method, path, body, query)
        if status != 200:
            raise ApiError(status, payload, f"{method} {path}")
        return payload

    def complete(self, prompt: Any, max_tokens: int = 16, **fields: Any) -> dict[str, Any]:
        return self.ok(
            "POST", "/v1/completions", {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0, **fields}
        )

    def sleep(self, level: int) -> dict[str, Any]:
        return self.ok("POST", "/sleep", query={"level": level})

    def wake(self, *tags: str) -> dict[str, Any]:
        return self.ok("POST", "/wake_up", query={"tags": list(tags)} if tags else None)

    def rpc(self, method: str, *args: Any, **kwargs: Any) -> Any:
        body = {"method": method, "args": list(args), "kwargs": kwargs}
        return self.ok("POST", "/collective_rpc", body)["results"][0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``python -m stasis_engine.reference serve`` in its own process group, output to ``log_path``."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log_path: str, started: float) -> None:
        self.proc, self.port, self.log_path, self.started = proc, port, log_path, started
        self.client = Client(f"http://127.0.0.1:{port}")
        self.ready_s: float | None = None

    @staticmethod
    def start(
        model_dir: str,
        *,
        log_path: str,
        device: str = "auto",
        port: int | None = None,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> ServerProcess:
        port = port or free_port()
        package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        full_env = {**os.environ, **(env or {})}
        full_env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, full_env.get("PYTHONPATH")) if p)
        cmd = [
            sys.executable,
            "-m",
            "stasis_engine.reference",
            "serve",
            "--model-dir",
            model_dir,
            "--port",
            str(port),
            "--device",
            device,
            *(args or []),
        ]
        with open(log_path, "wb") as log:  # the child keeps its own descriptor
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env, start_new_session=True)
        return ServerProcess(proc, port, log_path, time.monotonic())

    def log_tail(self, n: int = 40) -> str:
        with open(self.log_path, errors="replace") as f:
            return "".join(f.readlines()[-n:])

    def wait_ready(self, timeout: float = 120.0) -> float:
        """Poll /health until 200; seconds from start. Raises with the log's tail if the server died."""
        deadline = self.started + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode} before ready:\n{self.log_tail()}")
            try:
                if self.client.request("GET", "/health")[0] == 200:
                    self.ready_s = time.monotonic() - self.started
                    return self.ready_s
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"server not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM the front end (it stops the engine); SIGKILL the whole group if it does not exit in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # invariant: no engine is left holding the GPU
                self.proc.wait()
        return self.proc.returncode
