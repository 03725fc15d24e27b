"""The local S3 + SQS server: moto on loopback, with state that survives restarts.

moto keeps everything in memory. This process runs moto's server in a thread and mirrors every
bucket's objects into a state folder (a manifest plus one blob per object). An upload (PUT or POST) or a
delete is answered only after its blob and manifest entry are on disk (fsync), and so are the queue
messages it sent: a `kill -9` right after a 204 loses neither the object nor its event. A full
comparison also runs every `--interval` seconds and on shutdown (for anything else that changed).
The queues' messages are kept in the state folder from when they are sent until they are deleted, and
sent again on start. On start the objects are restored *before* the bucket notifications are applied,
so a restore never makes new upload events. Then it (re)applies the setup of docs/design.md: both images
buckets, CORS, the event queue and its dead-letter queue, and the buckets' notifications of
`ObjectCreated` under originals and renditions to that queue.

In front of moto sits `devstack.s3auth.S3Gateway`, which checks what S3 checks and moto does not: a
presigned POST's signature, expiry and every policy condition (with S3's own errors), and a SigV4
signature by the local access key on every other request. The server accepts one access key: the
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY of its environment (`local` / `local` when unset), the same
variables every process of the local stack signs with.

Run: python -m devstack.s3server --port 8001 --state-dir .local/s3
It prints one line `READY <endpoint>` when it serves, and stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.s3auth import POST_OBJECT_KEY, Credentials, S3Gateway
from yoctogram_common import keys

log = logging.getLogger("devstack.s3server")

ACCOUNT_ID = "123456789012"  # moto's default account
REGION = "us-west-2"
EVENT_QUEUE = "yoctogram-events"
DEAD_LETTER_QUEUE = "yoctogram-events-dlq"
PREFIXES = tuple(
    keys.folder_prefix(privacy, folder) for privacy in keys.PRIVACIES for folder in keys.SERVED_FOLDERS
)
"""Where created objects are reported to the event queue (as the EventBridge rules do in AWS)."""


@dataclass(frozen=True)
class Layout:
    """Names of the local buckets and queues (the same names the app is given)."""

    public_bucket: str = "yoctogram-public-images"
    private_bucket: str = "yoctogram-private-images"
    event_queue: str = EVENT_QUEUE
    dead_letter_queue: str = DEAD_LETTER_QUEUE
    allowed_origin: str = "*"

    @property
    def buckets(self) -> tuple[str, str]:
        return (self.public_bucket, self.private_bucket)


def client(service: str, endpoint_url: str) -> Any:
    """A boto3 client for the local server (the local credentials of this environment, fixed region).

    SigV4 throughout, as the app's own client: boto3's default presigned POST is still SigV2, which S3
    (and so the local server) no longer accepts.
    """
    import boto3  # imported on first use: it is slow to import, and not every process needs it
    from botocore.config import Config

    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID") or "local",
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY") or "local",
        config=Config(signature_version="s3v4") if service == "s3" else None,
    )


def queue_url(endpoint_url: str, name: str = EVENT_QUEUE) -> str:
    """The URL of a local queue (the same form moto returns)."""
    return f"{endpoint_url}/{ACCOUNT_ID}/{name}"


def apply_setup(endpoint_url: str, layout: Layout) -> None:
    """Create what docs/design.md needs (idempotent): buckets, CORS, queues, notifications."""
    s3 = client("s3", endpoint_url)
    sqs = client("sqs", endpoint_url)
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for bucket in layout.buckets:
        if bucket not in existing:
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_bucket_cors(
            Bucket=bucket,
            CORSConfiguration={
                "CORSRules": [
                    {
                        "AllowedMethods": ["POST", "GET", "HEAD"],
                        "AllowedOrigins": [layout.allowed_origin],
                        "AllowedHeaders": ["*"],
                        "MaxAgeSeconds": 3000,
                    }
                ]
            },
        )
    dlq_url = sqs.create_queue(QueueName=layout.dead_letter_queue)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events_url = sqs.create_queue(
        QueueName=layout.event_queue,
        Attributes={
            "VisibilityTimeout": "30",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
        },
    )["QueueUrl"]
    events_arn = sqs.get_queue_attributes(QueueUrl=events_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    for bucket in layout.buckets:
        s3.put_bucket_notification_configuration(
            Bucket=bucket,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {
                        "Id": f"objects-{prefix.replace('/', '-').strip('-')}",
                        "QueueArn": events_arn,
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}},
                    }
                    for prefix in PREFIXES
                ]
            },
        )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that it is on disk when this returns (a crash leaves old or new)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    tmp.replace(path)
    _fsync_dir(path.parent)


class Snapshot:
    """Mirror of every object on the server in `state_dir` (manifest.json + blobs/)."""

    def __init__(self, state_dir: Path, endpoint_url: str) -> None:
        self.state_dir = state_dir
        self.blobs = state_dir / "blobs"
        self.manifest_path = state_dir / "manifest.json"
        self.endpoint_url = endpoint_url
        self.blobs.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._client: Any = None
        self.restoring = False
        self.manifest: dict[str, dict[str, dict[str, Any]]] = self._load()

    @property
    def s3(self) -> Any:
        if self._client is None:  # one client (thread-safe), made on first use: making one is slow
            self._client = client("s3", self.endpoint_url)
        return self._client

    def _load(self) -> dict[str, dict[str, dict[str, Any]]]:
        if not self.manifest_path.exists():
            return {}
        try:
            return dict(json.loads(self.manifest_path.read_text()))
        except (OSError, json.JSONDecodeError) as error:
            log.error("unreadable S3 snapshot manifest %s (%s); starting empty", self.manifest_path, error)
            return {}

    @staticmethod
    def _blob_name(bucket: str, key: str, etag: str) -> str:
        return hashlib.sha256(f"{bucket}\0{key}\0{etag}".encode()).hexdigest()

    def restore(self) -> int:
        """Put every saved object back on the (empty, new) server; return how many."""
        s3 = client("s3", self.endpoint_url)
        count = 0
        self.restoring = True  # what is put back is on disk already: no write per object (DurableWrites)
        for bucket, objects in self.manifest.items():
            with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
                s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
            for key, entry in objects.items():
                blob = self.blobs / entry["blob"]
                if not blob.exists():
                    log.error("snapshot blob of s3://%s/%s is missing; skipped", bucket, key)
                    continue
                extra: dict[str, Any] = {"Metadata": entry.get("metadata", {})}
                for field in ("ContentType", "CacheControl"):
                    if entry.get(field):
                        extra[field] = entry[field]
                s3.put_object(Bucket=bucket, Key=key, Body=blob.read_bytes(), **extra)
                count += 1
        self.restoring = False
        # The re-put objects get new ETags only if moto computes them differently; save a fresh view.
        self.save()
        return count

    @staticmethod
    def _entry(etag: str, blob_name: str, got: dict[str, Any]) -> dict[str, Any]:
        return {
            "etag": etag,
            "blob": blob_name,
            "ContentType": got.get("ContentType"),
            "CacheControl": got.get("CacheControl"),
            "metadata": got.get("Metadata", {}),
        }

    def _write_manifest(self, manifest: dict[str, dict[str, dict[str, Any]]]) -> None:
        write_durably(self.manifest_path, json.dumps(manifest, indent=1, sort_keys=True).encode())
        self.manifest = manifest

    def persist(self, bucket: str, key: str) -> None:
        """Put one object's current state on disk now (its blob and manifest entry, or its removal)."""
        if self.restoring:
            return
        with self._lock:
            objects = dict(self.manifest.get(bucket, {}))
            try:
                got = self.s3.get_object(Bucket=bucket, Key=key)
            except (self.s3.exceptions.NoSuchKey, self.s3.exceptions.NoSuchBucket):
                if objects.pop(key, None) is None:
                    return
            else:
                etag = got["ETag"]
                blob_name = self._blob_name(bucket, key, etag)
                write_durably(self.blobs / blob_name, got["Body"].read())
                objects[key] = self._entry(etag, blob_name, got)
            self._write_manifest({**self.manifest, bucket: objects})

    def save(self) -> None:
        """Write objects that are new or changed since the last save, drop deleted ones."""
        with self._lock:
            s3 = self.s3
            current: dict[str, dict[str, dict[str, Any]]] = {}
            for bucket_info in s3.list_buckets().get("Buckets", []):
                bucket = bucket_info["Name"]
                known = self.manifest.get(bucket, {})
                objects: dict[str, dict[str, Any]] = {}
                for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                    for item in page.get("Contents", []):
                        key, etag = item["Key"], item["ETag"]
                        previous = known.get(key)
                        if previous and previous["etag"] == etag and (self.blobs / previous["blob"]).exists():
                            objects[key] = previous
                            continue
                        try:
                            got = s3.get_object(Bucket=bucket, Key=key)
                        except s3.exceptions.NoSuchKey:
                            continue  # deleted between list and get
                        blob_name = self._blob_name(bucket, key, etag)
                        write_durably(self.blobs / blob_name, got["Body"].read())
                        objects[key] = self._entry(etag, blob_name, got)
                current[bucket] = objects
            if current == self.manifest:
                return
            self._write_manifest(current)
            wanted = {entry["blob"] for objects in current.values() for entry in objects.values()}
            for blob in self.blobs.iterdir():
                if blob.name not in wanted:
                    blob.unlink(missing_ok=True)


class QueueJournal:
    """Every message of the local queues in `state_dir/queues/<queue>/<message id>.json`, from when it
    is sent until it is deleted (moto keeps queues in memory only; SQS keeps them)."""

    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir / "queues"
        self._lock = threading.Lock()
        self._replayed = False  # until the kept messages are sent again, the files are all there is

    @staticmethod
    def _queues() -> dict[str, Any]:
        from moto.sqs.models import sqs_backends

        return dict(sqs_backends[ACCOUNT_ID][REGION].queues)

    def sync(self) -> None:
        """Write the messages sent since the last sync (fsync), remove those deleted since."""
        with self._lock:
            if not self._replayed:
                return
            for name, queue in self._queues().items():
                folder = self.root / name
                folder.mkdir(parents=True, exist_ok=True)
                # every message, visible or in flight (moto's list; its public view hides in-flight ones)
                current = {message.id: message.body for message in list(queue._messages)}
                on_disk = {path.stem for path in folder.glob("*.json")}
                for message_id in current.keys() - on_disk:
                    write_durably(
                        folder / f"{message_id}.json", json.dumps({"body": current[message_id]}).encode()
                    )
                for message_id in on_disk - current.keys():
                    (folder / f"{message_id}.json").unlink(missing_ok=True)
                if on_disk - current.keys():
                    _fsync_dir(folder)

    def replay(self) -> int:
        """Send every kept message again (the queues exist by now); return how many."""
        from moto.sqs.models import sqs_backends

        backend = sqs_backends[ACCOUNT_ID][REGION]
        queues = self._queues()
        count = 0
        for folder in sorted(self.root.glob("*")) if self.root.exists() else []:
            if folder.name not in queues:
                log.error("kept messages of unknown queue %s left in %s", folder.name, folder)
                continue
            for path in sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime):
                try:
                    body = json.loads(path.read_text())["body"]
                except (OSError, ValueError, KeyError) as error:
                    log.error("unreadable kept message %s (%s); skipped", path, error)
                    continue
                backend.send_message(queue_name=folder.name, message_body=body)
                count += 1
        self._replayed = True
        self.sync()  # the new messages are kept under their new ids (written first), then the old files go
        return count


_S3_OBJECT_PATH = re.compile(r"^/(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(?P<key>.*))?$")
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class DurableWrites:
    """WSGI middleware: a write is answered only once what it changed is on disk.

    moto stores an object (and sends its notification to the queue) before it answers; this holds the
    answer back until the object's blob and manifest entry and the queue's new messages are fsynced.
    The body of a write's answer is small, and it is sent only after this returns.
    """

    def __init__(self, app: WSGIApp, snapshot: Snapshot, journal: QueueJournal) -> None:
        self.app = app
        self.snapshot = snapshot
        self.journal = journal

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if method not in ("PUT", "POST", "DELETE"):
            return self.app(environ, start_response)
        status: list[int] = []

        def capture(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status.append(int(line.split(" ", 1)[0]))
            return start_response(line, headers, exc_info) if exc_info else start_response(line, headers)

        answer = self.app(environ, capture)
        try:
            chunks = list(answer)  # moto has finished the request once its body is produced
        finally:
            close = getattr(answer, "close", None)
            if close is not None:
                close()
        if status and 200 <= status[-1] < 300:
            self._persist(environ, method)
        return chunks

    def _persist(self, environ: dict[str, Any], method: str) -> None:
        path = environ.get("PATH_INFO", "/")
        match = _S3_OBJECT_PATH.match(path)
        if match and match["bucket"] != ACCOUNT_ID:  # an S3 request (SQS paths are / or /<account>/<queue>)
            bucket, key = (
                match["bucket"],
                environ.get(POST_OBJECT_KEY) or match["key"],
            )  # PATH_INFO is decoded
            if key:
                self.snapshot.persist(bucket, key)
            elif method == "POST" and "delete" in environ.get("QUERY_STRING", ""):
                self.snapshot.save()  # DeleteObjects: many keys
        self.journal.sync()  # notifications it sent, or messages sent or deleted


class S3ServerProcess:
    """This server as a child process (for the tests and benchmarks).

    It accepts `credentials` (default: those of this process's environment, as `client` uses them).
    """

    def __init__(
        self,
        port: int,
        state_dir: Path | None = None,
        credentials: Credentials | None = None,
        interval: float = 0.2,
    ) -> None:
        self.port = port
        self.interval = interval
        self.endpoint_url = f"http://127.0.0.1:{port}"
        self.state_dir = state_dir
        self.credentials = credentials or Credentials.from_env()
        self.process: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 60) -> None:
        args = [
            sys.executable,
            "-u",
            "-m",
            "devstack.s3server",
            "--port",
            str(self.port),
            "--interval",
            str(self.interval),
        ]
        if self.state_dir:
            args += ["--state-dir", str(self.state_dir)]
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": self.credentials.access_key,
            "AWS_SECRET_ACCESS_KEY": self.credentials.secret_key,
        }
        self.process = subprocess.Popen(
            args,
            cwd=Path(__file__).resolve().parent.parent,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        lines = []
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line and self.process.poll() is not None:
                break
            lines.append(line)
            if line.startswith("READY"):
                # Keep draining the pipe, or a chatty server would block once its buffer is full.
                threading.Thread(target=self._drain, daemon=True).start()
                return
        raise RuntimeError("S3 server did not start:\n" + "".join(lines))

    def _drain(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for _line in self.process.stdout:
            pass

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def kill(self) -> None:
        """SIGKILL: no shutdown snapshot, as a crash or `kill -9`."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


def serve(port: int, state_dir: Path | None, layout: Layout, interval: float = 1.0) -> None:
    """Run until SIGTERM/SIGINT: restore, set up, print READY, snapshot every `interval` seconds."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    credentials = Credentials.from_env()
    # This process's own clients (setup, snapshot) sign with the credentials the server accepts.
    os.environ["AWS_ACCESS_KEY_ID"] = credentials.access_key
    os.environ["AWS_SECRET_ACCESS_KEY"] = credentials.secret_key
    snapshot = Snapshot(state_dir, f"http://127.0.0.1:{port}") if state_dir else None
    journal = QueueJournal(state_dir) if state_dir else None
    app: WSGIApp = S3Gateway(
        DomainDispatcherApplication(create_backend_app), credentials, allowed_origin=layout.allowed_origin
    )
    if snapshot and journal:
        app = DurableWrites(app, snapshot, journal)
    try:
        # Bound and listening now (a taken port fails here, at once), but served only once everything is
        # back: until then a client's connection waits in the backlog instead of being answered from a
        # half-restored state (NoSuchBucket, a missing object, an upload stored without its event).
        server = make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)
    except OSError as error:
        print(f"ERROR cannot listen on 127.0.0.1:{port}: {error}", flush=True)
        sys.exit(2)
    # This process's own clients (restore, setup, snapshots) use a private port of the same app.
    own = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    # A short poll: `shutdown` waits for the loop's next look (half a second by default, twice per stop).
    threading.Thread(
        target=own.serve_forever, kwargs={"poll_interval": 0.1}, name="s3-server-own", daemon=True
    ).start()
    own_endpoint = f"http://127.0.0.1:{own.server_address[1]}"
    if snapshot:
        snapshot.endpoint_url = own_endpoint
    restored = snapshot.restore() if snapshot else 0
    apply_setup(own_endpoint, layout)
    replayed = journal.replay() if journal else 0
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="s3-server", daemon=True
    )
    thread.start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    print(f"READY {endpoint} restored={restored} replayed={replayed}", flush=True)

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stop.wait(interval):
        if snapshot and journal:
            try:
                snapshot.save()
                journal.sync()  # messages moved to the dead-letter queue, or whose retention ended
            except Exception:  # a failed snapshot must not take the server down; retry next tick
                log.exception("S3 snapshot failed; will retry")
    if snapshot and journal:
        snapshot.save()
        journal.sync()
    server.shutdown()
    thread.join()
    own.shutdown()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--state-dir", type=Path, default=None, help="keep objects here across restarts")
    parser.add_argument("--public-bucket", default=Layout.public_bucket)
    parser.add_argument("--private-bucket", default=Layout.private_bucket)
    parser.add_argument("--allowed-origin", default="*", help="the origin allowed to POST uploads (CORS)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between snapshots")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for noisy in ("werkzeug", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    layout = Layout(
        public_bucket=args.public_bucket,
        private_bucket=args.private_bucket,
        allowed_origin=args.allowed_origin,
    )
    serve(args.port, args.state_dir, layout, args.interval)


if __name__ == "__main__":
    main()
