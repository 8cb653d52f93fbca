"""The database's writer lock: one writer at a time, on a local folder and on S3-compatible object storage.

- A local folder: an ``flock`` on a file in it. The kernel releases it when its process dies, so a killed
  writer never leaves a stale lock.
- ``s3://bucket/prefix`` (AWS or any S3-compatible store): a *lease* object next to the tables, written with
  S3's conditional requests. ``PUT If-None-Match: *`` creates it only if nobody holds it; the holder renews
  it (``PUT If-Match: <its ETag>``) every third of the lease; a lease not renewed for ``lease_s`` seconds
  (its writer was killed, or lost the network) is broken by the next writer with ``PUT If-Match`` on the
  stale ETag, so two waiters cannot both take it. Expiry is judged on the store's clock (the object's
  ``Last-Modified`` against the response's ``Date``), never by comparing machines' clocks. A holder that
  finds its lease broken, or could not renew it for most of ``lease_s`` (a stall, a network outage), marks
  the lock ``lost`` and the store refuses its next write.
- Other object stores (``gs://``, ``az://`` …) have no lock here: writing to them is refused with a message
  saying so, rather than letting two writers race.

The S3 client is boto3 (the ``docrag[s3]`` extra), configured like LanceDB: ``storage_options`` keys
(``aws_endpoint``, ``aws_access_key_id``, ``aws_secret_access_key``, ``aws_session_token``, ``aws_region``)
or the usual environment (``AWS_ENDPOINT_URL``/``AWS_ENDPOINT``, ``AWS_ACCESS_KEY_ID`` …).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

__all__ = ["LOCK_FILE", "LockError", "LockTimeout", "hold_writer_lock", "s3_client"]

LOCK_FILE = ".docrag-writer.lock"
LEASE_S = 60.0  # an S3 lease not renewed for this long is stale


class LockError(RuntimeError):
    """The lock cannot be taken or kept (no lock for this kind of URI, the store refused the request)."""


class LockTimeout(LockError):
    """Another process holds the lock."""


def _holder() -> str:
    return f"pid {os.getpid()} on {socket.gethostname()} (since {time.strftime('%H:%M:%S')})"


@contextlib.contextmanager
def hold_writer_lock(
    uri: str,
    storage_options: Mapping[str, str] | None = None,
    wait_s: float | None = None,
    on_wait: Callable[[str], None] | None = None,
    lease_s: float | None = None,
) -> Iterator[Any]:
    """Hold the writer lock of the database at ``uri`` (wait ``wait_s`` seconds, None: as long as it takes;
    ``on_wait`` hears who holds it, once). Yields the lock (``.lost`` is True if an S3 lease was broken)."""
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    if not scheme or scheme == "file":
        with _file_lock(uri.split("://", 1)[-1], wait_s, on_wait) as lock:
            yield lock
    elif scheme in ("s3", "s3a"):
        lock = _S3Lease(uri, storage_options or {}, lease_s or LEASE_S)
        lock.acquire(wait_s, on_wait)
        try:
            yield lock
        finally:
            lock.release()
    else:
        raise LockError(
            f"{uri}: docrag has no writer lock for {scheme}:// storage, so it does not write there; "
            "index into a local folder or an s3:// bucket (S3-compatible stores work too)"
        )


class _Held:
    lost = False


@contextlib.contextmanager
def _file_lock(folder: str, wait_s: float | None, on_wait: Callable[[str], None] | None) -> Iterator[_Held]:
    import fcntl

    Path(folder).mkdir(parents=True, exist_ok=True)
    path = Path(folder) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise LockError(f"{folder}: cannot create the writer lock ({exc.strerror})") from None
    try:
        deadline = None if wait_s is None else time.monotonic() + wait_s
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = os.pread(fd, 512, 0).decode("utf-8", "replace").strip() or "another process"
                if deadline is not None and time.monotonic() >= deadline:
                    raise LockTimeout(f"{folder} is being written by {holder}; try again when it is done") from None
                if not told and on_wait is not None:
                    on_wait(holder)
                    told = True
                time.sleep(0.2)
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, _holder().encode(), 0)
        yield _Held()
    finally:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # releases the flock


def _option(options: Mapping[str, str], *names: str) -> str | None:
    lowered = {k.lower(): v for k, v in options.items()}
    for name in names:
        if lowered.get(name):
            return str(lowered[name])
    for name in names:  # the environment: AWS_* names only
        if name.startswith("aws_") and os.environ.get(name.upper()):
            return os.environ[name.upper()]
    return None


def s3_client(storage_options: Mapping[str, str] | None = None, timeout_s: float = 30.0, attempts: int = 3) -> Any:
    """A boto3 S3 client configured from LanceDB-style ``storage_options`` or the environment."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise LockError("writing to s3:// needs boto3 for the writer lock: pip install 'docrag[s3]'") from None
    opts = storage_options or {}
    endpoint = _option(opts, "aws_endpoint_url", "aws_endpoint", "endpoint_url", "endpoint")
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=_option(opts, "aws_access_key_id", "access_key_id"),
        aws_secret_access_key=_option(opts, "aws_secret_access_key", "secret_access_key"),
        aws_session_token=_option(opts, "aws_session_token", "session_token"),
        region_name=_option(opts, "aws_region", "region", "aws_default_region"),
        config=Config(
            retries={"max_attempts": attempts, "mode": "standard"},
            connect_timeout=min(10.0, timeout_s),
            read_timeout=timeout_s,
        ),
    )


class _S3Lease:
    def __init__(self, uri: str, storage_options: Mapping[str, str], lease_s: float) -> None:
        rest = uri.split("://", 1)[1]
        self.bucket, _, prefix = rest.partition("/")
        self.key = f"{prefix.strip('/')}/{LOCK_FILE}".lstrip("/")
        self.uri, self.lease_s = uri, lease_s
        self.client = s3_client(storage_options)
        # Renewals get a client of their own that gives up well inside the lease (the loop retries).
        self.renew_client = s3_client(storage_options, timeout_s=max(1.0, lease_s / 6), attempts=1)
        self.etag: str | None = None
        self.renewed = time.monotonic()  # when the lease was last written (this machine's clock)
        self.lost = False
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def _error(self, exc: Exception) -> str:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        return code or exc.__class__.__name__

    def _put(self, client: Any = None, **condition: str) -> str | None:
        """Write our lease with ``condition``; our new ETag, or None if the condition failed."""
        body = json.dumps({"holder": _holder(), "lease_s": self.lease_s}).encode()
        try:
            r = (client or self.client).put_object(Bucket=self.bucket, Key=self.key, Body=body, **condition)
        except Exception as exc:
            code = self._error(exc)
            if code in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
                return None
            raise LockError(f"{self.uri}: cannot write the writer lock ({code}: {str(exc)[:200]})") from None
        return r["ETag"]

    def _current(self) -> tuple[str, str, bool] | None:
        """(holder, ETag, stale) of the lease there now; None if there is none."""
        try:
            r = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except Exception as exc:
            if self._error(exc) in ("NoSuchKey", "404"):
                return None
            raise LockError(f"{self.uri}: cannot read the writer lock ({self._error(exc)})") from None
        try:
            info = json.loads(r["Body"].read())
            holder, lease = str(info.get("holder", "another process")), float(info.get("lease_s", LEASE_S))
        except (ValueError, TypeError, AttributeError):
            holder, lease = "another process", LEASE_S
        date = r.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
        now = parsedate_to_datetime(date) if date else None
        stale = now is not None and (now - r["LastModified"]).total_seconds() > lease
        return holder, r["ETag"], stale

    def acquire(self, wait_s: float | None, on_wait: Callable[[str], None] | None) -> None:
        deadline = None if wait_s is None else time.monotonic() + wait_s
        told = False
        while True:
            etag = self._put(IfNoneMatch="*")
            if etag is None:
                current = self._current()
                if current is None:
                    continue  # released meanwhile
                holder, their_etag, stale = current
                if stale:  # its writer stopped renewing: take it over (only one waiter's If-Match wins)
                    etag = self._put(IfMatch=their_etag)
                if etag is None:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise LockTimeout(f"{self.uri} is being written by {holder}; try again when it is done")
                    if not told and on_wait is not None:
                        on_wait(holder)
                        told = True
                    time.sleep(min(1.0, self.lease_s / 10))
                    continue
            self.etag, self.renewed = etag, time.monotonic()
            break
        self._renewer = threading.Thread(target=self._renew, name="docrag-lock-lease", daemon=True)
        self._renewer.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            sent = time.monotonic()
            try:
                etag = self._put(self.renew_client, IfMatch=self.etag or "")
            except LockError:
                etag = ""  # the store is unreachable for now: try again before the lease runs out
            if etag is None:  # somebody broke our lease: we stalled past it
                self.lost = True
                return
            if etag:
                self.etag, self.renewed = etag, sent
            elif time.monotonic() - self.renewed > self.lease_s * 0.8:
                # Not renewed for most of the lease: another writer may take it over any moment. Stop here.
                self.lost = True
                return

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=30)
        if self.etag and not self.lost:
            with contextlib.suppress(Exception):
                self.client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=self.etag)
