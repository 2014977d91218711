"""Real file servers on 127.0.0.1 for the file connector tests: FTP, SFTP, S3 (moto) and HTTP.

Each server runs for the whole session, on a free port, serving one directory of test files (S3: a bucket
holding the same files). FTP, SFTP and HTTP run in threads of the pytest process; moto's S3 server runs as a
subprocess with IAM authentication on, so that a wrong secret key is really refused. The platform under test
reaches them over 127.0.0.1 like any remote system: nothing here is mocked.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import gzip
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncssh
import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import requests
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import ThreadedFTPServer

HOST = "127.0.0.1"
FTP_USER, FTP_PASSWORD = "ftp-it", "ftp-Secret-2718"
#: A second FTP user of the same root, allowed to write (the exporter tests); the first one only reads.
FTP_WRITER, FTP_WRITER_PASSWORD = "ftp-rw", "ftp-Secret-1414"
SFTP_USER, SFTP_PASSWORD = "sftp-it", "sftp-Secret-3141"
HTTP_USER, HTTP_PASSWORD, HTTP_TOKEN = "http-it", "http-Secret-1618", "bearer-Token-5772"
S3_BUCKET = "lake"
#: Directory name (below pytest's base temp dir) given to the platform as its allowed local root.
LOCAL_ROOTS_DIR = "local-roots"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def closed_port() -> int:
    """A port nothing listens on (bound then released, so connections are refused)."""
    return free_port()


# -- test files ----------------------------------------------------------------------------------------------
#: The reference CSV every connector type reads in the cross-connector test.
ORDERS_CSV = (
    "order_id,customer,amount,paid,ordered_at\n"
    "1,Ada,12.5,true,2024-01-02 10:00:00\n"
    "2,Bob,7.25,false,2024-01-03 11:30:00\n"
    "3,Chloé,100.0,true,2024-01-04 09:15:00\n"
    "4,Dan,,false,2024-01-05 18:45:00\n"
)


def write_test_files(root: Path) -> dict[str, bytes]:
    """Write the test files under ``root``; return ``{relative path: bytes}`` of every file."""
    files: dict[str, bytes] = {}

    def put(rel: str, data: bytes) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        files[rel] = data

    put("orders.csv", ORDERS_CSV.encode())
    # Semicolons, Latin-1, decimal commas and no header: what a French spreadsheet exports.
    put(
        "formats/latin1.csv",
        "1;Hélène;3,5;2024-03-01\n2;Zoë;10,25;2024-03-02\n3;Émile;0,75;2024-03-03\n".encode("latin-1"),
    )
    table = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "name": ["a", "b", "c"],
            "score": [0.5, 1.5, None],
            "at": pa.array(
                [1_700_000_000_000_000, 1_700_000_100_000_000, 1_700_000_200_000_000], pa.timestamp("us")
            ),
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    put("formats/data.parquet", sink.getvalue())
    put(
        "formats/events.jsonl",
        b'{"id": 1, "kind": "click", "value": 1.5, "ok": true}\n'
        b'{"id": 2, "kind": "view", "value": null, "ok": false}\n'
        b'{"id": 3, "kind": "click", "value": 2.0, "ok": true}\n',
    )
    put("formats/orders.csv.gz", gzip.compress(ORDERS_CSV.encode()))
    put("formats/orders.zip", _zip({"orders.csv": ORDERS_CSV}))
    put("formats/tabs.tsv", b"a\tb\n1\tx\n2\ty\n")
    put("formats/export.data", ORDERS_CSV.encode())  # CSV under a name that does not say so
    put(
        "formats/nested.zip",
        _zip(
            {
                "2024/a.csv": "id,value\n1,10\n",
                "2024/b.csv": "value,id\n20,2\n",
                "notes/readme.md": "not data\n",
            }
        ),
    )
    # Three monthly files read as one dataset through a glob.
    for month, rows in (("01", "1,10\n2,20\n"), ("02", "3,30\n"), ("03", "4,40\n5,50\n6,60\n")):
        put(f"monthly/2024-{month}.csv", f"id,value\n{rows}".encode())
    put("monthly/readme.txt", b"not part of the glob\n")
    # Unreadable files.
    put("broken/not-parquet.parquet", b"this is plain text, not Parquet\n" * 10)
    put("broken/not-gzip.csv.gz", b"this is not gzip data at all\n" * 10)
    put("broken/report.xlsx", b"PK\x03\x04 not really a spreadsheet")
    put("broken/bad.jsonl", b'{"id": 1}\n{this is not json\n')
    put("broken/empty.csv", b"")
    # Integers for a whole first block, then a word: fails while streaming, after rows were read.
    put("broken/late-conflict.csv", b"n\n" + b"".join(b"%d\n" % i for i in range(40_000)) + b"oops\n")
    return files


def _zip(members: dict[str, str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return out.getvalue()


# -- FTP -----------------------------------------------------------------------------------------------------
@dataclass
class FTPServerInfo:
    host: str
    port: int
    username: str
    password: str
    writer: str = FTP_WRITER
    writer_password: str = FTP_WRITER_PASSWORD


def start_ftp(root: Path) -> tuple[FTPServerInfo, Any]:
    """pyftpdlib serving ``root`` to a read-only user and to a user allowed to write, in a thread."""
    authorizer = DummyAuthorizer()
    authorizer.add_user(FTP_USER, FTP_PASSWORD, str(root), perm="elr")
    authorizer.add_user(FTP_WRITER, FTP_WRITER_PASSWORD, str(root), perm="elradfmw")
    handler = type(
        "ITHandler",
        (FTPHandler,),
        {"authorizer": authorizer, "banner": "previsio test FTP", "permit_foreign_addresses": False},
    )
    server = ThreadedFTPServer((HOST, 0), handler)
    port = server.socket.getsockname()[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.5}, daemon=True)
    thread.start()
    return FTPServerInfo(HOST, port, FTP_USER, FTP_PASSWORD), server


# -- SFTP ----------------------------------------------------------------------------------------------------
@dataclass
class SFTPServerInfo:
    host: str
    port: int
    username: str
    password: str
    private_key: str
    host_key: str
    wrong_private_key: str


class _SSHServer(asyncssh.SSHServer):
    def __init__(self, client_key: asyncssh.SSHKey) -> None:
        self.client_key = client_key

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == SFTP_USER and password == SFTP_PASSWORD

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return username == SFTP_USER and key.public_data == self.client_key.public_data


class SFTPServerThread:
    """An asyncssh SFTP server chrooted to a directory, on its own event loop thread."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._server: Any = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def start() -> None:
            self._server = await asyncssh.create_server(
                partial(_SSHServer, self.client_key),
                HOST,
                0,
                server_host_keys=[self.host_key],
                sftp_factory=partial(asyncssh.SFTPServer, chroot=str(self.root)),
                allow_scp=False,
            )
            self.port = self._server.sockets[0].getsockname()[1]
            self._ready.set()

        self.loop.run_until_complete(start())
        self.loop.run_forever()

    def start(self) -> SFTPServerInfo:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the SFTP test server did not start")
        wrong = asyncssh.generate_private_key("ssh-ed25519")
        return SFTPServerInfo(
            HOST,
            self.port,
            SFTP_USER,
            SFTP_PASSWORD,
            private_key=self.client_key.export_private_key("openssh").decode(),
            host_key=self.host_key.export_public_key("openssh").decode().strip(),
            wrong_private_key=wrong.export_private_key("openssh").decode(),
        )

    def stop(self) -> None:
        def close() -> None:
            self._server.close()
            self.loop.stop()

        self.loop.call_soon_threadsafe(close)
        self._thread.join(10)


# -- S3 (moto) -----------------------------------------------------------------------------------------------
@dataclass
class S3ServerInfo:
    endpoint: str
    access_key: str
    secret_key: str
    bucket: str
    process: subprocess.Popen[bytes] = field(repr=False)

    def client(self) -> Any:
        """A boto3 S3 client with the test user's credentials."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
        )


def start_s3(log_dir: Path) -> S3ServerInfo:
    """moto's standalone server in a subprocess, IAM authentication on, a user allowed s3:* and a bucket."""
    port = free_port()
    endpoint = f"http://{HOST}:{port}"
    # The first three requests (creating the user, its policy and its key) are the only unauthenticated ones.
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3", "MOTO_PORT": str(port)}
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        env.pop(var, None)
    log = open(log_dir / "moto.log", "ab")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"moto exited with {process.returncode}: {(log_dir / 'moto.log').read_text()}")
        try:
            requests.get(f"{endpoint}/moto-api/", timeout=2)
            break
        except requests.RequestException:
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("moto did not start in 60 s") from None
            time.sleep(0.1)
    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        aws_access_key_id="bootstrap",
        aws_secret_access_key="x",
        region_name="us-east-1",
    )
    iam.create_user(UserName="previsio-it")
    iam.put_user_policy(
        UserName="previsio-it",
        PolicyName="s3-all",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName="previsio-it")["AccessKey"]
    info = S3ServerInfo(endpoint, key["AccessKeyId"], key["SecretAccessKey"], S3_BUCKET, process)
    from conftest import SUITE_SECRETS  # the credentials no platform log or answer may show

    SUITE_SECRETS.add(info.secret_key)
    info.client().create_bucket(Bucket=S3_BUCKET)
    return info


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# -- HTTP ----------------------------------------------------------------------------------------------------
@dataclass
class HTTPServerInfo:
    url: str
    username: str
    password: str
    token: str


class _AuthHandler(SimpleHTTPRequestHandler):
    """Serves a directory to requests with the right basic credentials or bearer token; 401 otherwise."""

    basic = "Basic " + base64.b64encode(f"{HTTP_USER}:{HTTP_PASSWORD}".encode()).decode()
    bearer = f"Bearer {HTTP_TOKEN}"

    def _authorized(self) -> bool:
        return self.headers.get("Authorization") in (self.basic, self.bearer)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if not self._authorized():
            self._refuse()
            return
        super().do_GET()

    def do_HEAD(self) -> None:  # noqa: N802
        if not self._authorized():
            self._refuse()
            return
        super().do_HEAD()

    def _refuse(self) -> None:
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="previsio-it"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


def start_http(root: Path) -> tuple[HTTPServerInfo, ThreadingHTTPServer]:
    """A threaded HTTP server of ``root`` requiring basic auth or a bearer token."""
    server = ThreadingHTTPServer((HOST, 0), partial(_AuthHandler, directory=str(root)))
    server.daemon_threads = True
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    return HTTPServerInfo(f"http://{HOST}:{port}/files", HTTP_USER, HTTP_PASSWORD, HTTP_TOKEN), server


# -- all together --------------------------------------------------------------------------------------------
@dataclass
class FileServers:
    """Every file server of the session, serving the same files."""

    files_root: Path
    outside: Path
    files: dict[str, bytes]
    ftp: FTPServerInfo
    sftp: SFTPServerInfo
    s3: S3ServerInfo
    http: HTTPServerInfo


def start_file_servers(base: Path) -> Iterator[FileServers]:
    """Start the servers over one directory tree under ``base`` (a generator: stops them when closed).

    Layout: ``base/local-roots/files`` holds the test files (the local connectors' root, the FTP and SFTP
    roots, ``/files`` on the HTTP server, and the S3 bucket's keys); ``base/outside`` holds a file that
    symbolic links inside the root point to, which no connector may read.
    """
    files_root = base / LOCAL_ROOTS_DIR / "files"
    files_root.mkdir(parents=True, exist_ok=True)
    files = write_test_files(files_root)
    outside = base / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "secret.csv").write_text("secret\nleaked\n")
    (files_root / "escape.csv").symlink_to(outside / "secret.csv")
    (files_root / "escape-dir").symlink_to(outside, target_is_directory=True)

    ftp, ftp_server = start_ftp(files_root)
    sftp_thread = SFTPServerThread(files_root)
    sftp = sftp_thread.start()
    s3 = start_s3(base)
    client = s3.client()
    for rel, data in files.items():
        client.put_object(Bucket=s3.bucket, Key=rel, Body=data)
    http, http_server = start_http(base / LOCAL_ROOTS_DIR)
    try:
        yield FileServers(files_root, outside, files, ftp, sftp, s3, http)
    finally:
        http_server.shutdown()
        stop_process(s3.process)
        sftp_thread.stop()
        ftp_server.close_all()


_SESSION: dict[str, Any] = {}


def session_file_servers(base: Path) -> FileServers:
    """The servers of this test process, started on first use and stopped when the process exits.

    A module-level singleton rather than a conftest fixture, so that every ``test_files_*`` module's
    session fixture gets the same servers.
    """
    if "servers" not in _SESSION:
        gen = start_file_servers(base)
        _SESSION["servers"] = next(gen)
        atexit.register(gen.close)
    return _SESSION["servers"]


#: The connector types under test.
FILE_TYPES = ("ftp", "sftp", "s3", "local", "http")


def make_connector(
    project: Any, kind: str, servers: FileServers, name: str | None = None, **wrong: Any
) -> Any:
    """A connector of type ``kind`` to the test servers; ``wrong`` overrides settings to make it fail.

    ``wrong`` may hold ``password``, ``host``, ``port``, ``private_key``: the value replaces the good one.
    """
    name = name or f"{kind}-connector"
    if kind == "ftp":
        s = servers.ftp
        return project.create_ftp_connector(
            name,
            host=wrong.get("host", s.host),
            port=wrong.get("port", s.port),
            username=s.username,
            password=wrong.get("password", s.password),
        )
    if kind == "sftp":
        t = servers.sftp
        if "private_key" in wrong:
            return project.create_sftp_connector(
                name,
                host=wrong.get("host", t.host),
                port=wrong.get("port", t.port),
                username=t.username,
                private_key=wrong["private_key"],
            )
        return project.create_sftp_connector(
            name,
            host=wrong.get("host", t.host),
            port=wrong.get("port", t.port),
            username=t.username,
            password=wrong.get("password", t.password),
        )
    if kind == "s3":
        b = servers.s3
        endpoint = b.endpoint
        if "host" in wrong or "port" in wrong:
            endpoint = f"http://{wrong.get('host', HOST)}:{wrong.get('port', b.endpoint.rsplit(':', 1)[1])}"
        return project.create_s3_connector(
            name,
            username=b.access_key,
            password=wrong.get("password", b.secret_key),
            host=endpoint,
            region="us-east-1",
        )
    if kind == "local":
        return project.create_local_connector(name, root=wrong.get("root", str(servers.files_root)))
    if kind == "http":
        h = servers.http
        url = h.url
        if "host" in wrong or "port" in wrong:
            good_port = h.url.split(":")[2].split("/")[0]
            url = f"http://{wrong.get('host', HOST)}:{wrong.get('port', good_port)}/files"
        return project.create_http_connector(
            name, host=url, username=h.username, password=wrong.get("password", h.password)
        )
    raise ValueError(kind)


def source_kwargs(kind: str, servers: FileServers) -> dict[str, Any]:
    """What create_datasource needs besides the path for a connector type (S3: the bucket)."""
    return {"bucket": servers.s3.bucket} if kind == "s3" else {}
