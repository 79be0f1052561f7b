"""Real servers on loopback for tests: moto's S3 server and an MLflow tracking server, plus
two misbehaving ones: a socket that accepts connections and never answers, and a proxy in
front of a real server that stops answering chosen requests (a server that hangs midway)."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

BIN = Path(sys.executable).parent
S3_KEY, S3_SECRET = "test-access-key", "test-secret-key"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1)
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


@contextmanager
def _process(
    command: list[str],
    ready_url: str,
    env: dict[str, str],
    log: Path | None,
    timeout_s: float = 120,
) -> Iterator[None]:
    output = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    server = subprocess.Popen(
        command, stdout=output, stderr=subprocess.STDOUT, env={**os.environ, **env}
    )
    try:
        deadline = time.monotonic() + timeout_s
        while not _answers(ready_url):
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(f"{command[0]} did not start (see {log})")
            time.sleep(0.3)
        yield
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        if log:
            output.close()  # type: ignore[union-attr]


@contextmanager
def moto_server(**env: str) -> Iterator[str]:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with _process(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], endpoint, env, None
    ):
        yield endpoint


def create_bucket(endpoint: str, bucket: str) -> None:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_KEY,
        aws_secret_access_key=S3_SECRET,
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=bucket)


@contextmanager
def mlflow_server(directory: Path, s3_endpoint: str, bucket: str) -> Iterator[str]:
    """MLflow with a SQLite backend, proxying artifacts to ``s3://bucket/artifacts``.

    Only the server holds storage credentials; clients talk to it alone.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        str(BIN / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{directory / 'mlflow.db'}",
        "--artifacts-destination",
        f"s3://{bucket}/artifacts",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    env = {
        "MLFLOW_S3_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": S3_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with _process(command, f"{url}/health", env, directory / "mlflow-server.log"):
        yield url


@contextmanager
def silent_server() -> Iterator[str]:
    """A loopback port whose connections the kernel accepts and nobody ever answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


HOP_HEADERS = {"host", "connection", "keep-alive", "transfer-encoding", "content-length"}


@contextmanager
def stalling_proxy(target: str, stall: Callable[[str, str], bool]) -> Iterator[str]:
    """An HTTP proxy on loopback that forwards to ``target``, except that requests for
    which ``stall(method, path)`` is true are read and never answered."""
    upstream = urlsplit(target)
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _forward(self) -> None:
            body = self._body()
            if stall(self.command, self.path):
                release.wait(120)
                self.close_connection = True
                return
            connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
            connection.request(self.command, self.path, body=body or None, headers=headers)
            response = connection.getresponse()
            data = response.read()
            connection.close()
            self.send_response(response.status)
            for key, value in response.getheaders():
                if key.lower() not in HOP_HEADERS:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        release.set()
        server.shutdown()
        server.server_close()
