"""A local S3 emulator for the object-storage tests: moto's server on 127.0.0.1 (no other address).

``S3Server`` starts ``python -m moto.server`` on a free port, waits until it answers and makes a bucket.
``options`` are LanceDB-style ``storage_options`` for it; ``env`` the same as AWS_* variables, for the CLI.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid

__all__ = ["S3Server"]


class S3Server:
    def __init__(self, bucket: str = "docrag-test") -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.bucket = bucket
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import atexit

        import boto3

        atexit.register(self.stop)  # also when the test run is interrupted
        self.client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            region_name="us-east-1",
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                self.client.list_buckets()
                break
            except Exception:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("the moto S3 server did not start") from None
                time.sleep(0.1)
        self.client.create_bucket(Bucket=bucket)

    @property
    def options(self) -> dict[str, str]:
        return {
            "aws_endpoint": self.endpoint,
            "aws_access_key_id": "test",
            "aws_secret_access_key": "test",
            "aws_region": "us-east-1",
            "allow_http": "true",
        }

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "AWS_ENDPOINT": self.endpoint,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ALLOW_HTTP": "true",
        }

    def uri(self, name: str = "") -> str:
        """A fresh database URI in the bucket."""
        return f"s3://{self.bucket}/{name or 'db'}-{uuid.uuid4().hex[:8]}"

    def keys(self, prefix: str) -> list[str]:
        out = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            out += [o["Key"] for o in page.get("Contents", [])]
        return out

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
