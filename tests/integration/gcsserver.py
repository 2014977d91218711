"""A real Google Cloud Storage server for the tests: ``gcp-storage-emulator`` (PyPI), in memory, on 127.0.0.1.

Beside it runs a tiny OAuth token service, so that a connector with a service account key goes through the
whole credentials path (a signed JWT traded for an access token) without leaving the machine: the test keys
name it as their ``token_uri``.
"""

from __future__ import annotations

import atexit
import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fileservers import HOST, free_port, stop_process

GCS_BUCKET = "gcs-lake"
GCS_PROJECT = "previsio-it"


@dataclass
class GCSServerInfo:
    """The emulator's endpoint, its bucket, and the token service that test keys point to."""

    endpoint: str
    bucket: str
    token_uri: str
    token_requests: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def put(self, name: str, data: bytes) -> None:
        """Store an object in the bucket."""
        url = f"{self.endpoint}/upload/storage/v1/b/{self.bucket}/o"
        resp = requests.post(url, params={"uploadType": "media", "name": name}, data=data, timeout=10)
        resp.raise_for_status()

    def get(self, name: str) -> bytes:
        """Read an object of the bucket."""
        url = f"{self.endpoint}/storage/v1/b/{self.bucket}/o/{quote(name, safe='')}"
        resp = requests.get(url, params={"alt": "media"}, timeout=10)
        resp.raise_for_status()
        return resp.content

    def names(self, prefix: str = "") -> list[str]:
        """Names of the bucket's objects under ``prefix``."""
        url = f"{self.endpoint}/storage/v1/b/{self.bucket}/o"
        resp = requests.get(url, params={"prefix": prefix}, timeout=10)
        resp.raise_for_status()
        return sorted(item["name"] for item in resp.json().get("items", []))

    def service_account_key(self, token_uri: str | None = None) -> dict[str, Any]:
        """A new service account key (a fresh RSA key) whose tokens come from the local token service."""
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        return {
            "type": "service_account",
            "project_id": GCS_PROJECT,
            "private_key_id": "it-key",
            "private_key": pem,
            "client_email": f"it@{GCS_PROJECT}.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": token_uri or self.token_uri,
        }


def _token_handler(seen: list[str]) -> type[BaseHTTPRequestHandler]:
    class TokenHandler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            seen.append(body)
            answer = json.dumps(
                {"access_token": "it-access-token", "expires_in": 3600, "token_type": "Bearer"}
            )
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer.encode())

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
            pass

    return TokenHandler


def start_gcs(log_dir: Path) -> GCSServerInfo:
    """Start the emulator (in memory) and the token service; create the bucket."""
    port = free_port()
    endpoint = f"http://{HOST}:{port}"
    log = open(log_dir / "gcs-emulator.log", "ab")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gcp_storage_emulator",
            "start",
            "--host",
            HOST,
            "--port",
            str(port),
            "--in-memory",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the GCS emulator exited with {process.returncode}")
        try:
            requests.get(f"{endpoint}/storage/v1/b", params={"project": GCS_PROJECT}, timeout=2)
            break
        except requests.RequestException:
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("the GCS emulator did not start in 60 s") from None
            time.sleep(0.1)
    seen: list[str] = []
    tokens = ThreadingHTTPServer((HOST, 0), _token_handler(seen))
    threading.Thread(target=tokens.serve_forever, daemon=True).start()
    info = GCSServerInfo(
        endpoint, GCS_BUCKET, f"http://{HOST}:{tokens.server_address[1]}/token", seen, process
    )
    requests.post(
        f"{endpoint}/storage/v1/b", params={"project": GCS_PROJECT}, json={"name": GCS_BUCKET}, timeout=10
    ).raise_for_status()

    def stop() -> None:
        tokens.shutdown()
        stop_process(process)
        log.close()

    atexit.register(stop)
    return info


_SESSION: dict[str, GCSServerInfo] = {}


def session_gcs_server(base: Path) -> GCSServerInfo:
    """The emulator of this test process, started on first use and stopped when the process exits."""
    if "gcs" not in _SESSION:
        _SESSION["gcs"] = start_gcs(base)
    return _SESSION["gcs"]
