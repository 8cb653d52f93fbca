"""Where a database lies: local folders and object storage URIs, object storage's errors in a few words, and
what LanceDB's layout on a local disk says without LanceDB (a table is ``<name>.lance/``; each version of it a
manifest in ``_versions/``, named ``u64::MAX - version`` or, in older datasets, ``version``)."""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["is_uri", "short_error", "storage_reason", "table_versions_on_disk"]

_U64 = (1 << 64) - 1


def short_error(exc: BaseException, width: int = 240) -> str:
    """One line of an error for a user: no Rust source locations, at most ``width`` characters."""
    text = re.sub(r",?\s*/\S+\.rs:\d+:\d+\)?", "", " ".join(str(exc).split())) or exc.__class__.__name__
    return text if len(text) <= width else text[: width - 1] + "…"


_S3_CODES = {
    "NoSuchBucket": "the bucket does not exist",
    "AccessDenied": "access denied: check the credentials and the bucket's policy",
    "InvalidAccessKeyId": "the access key is not known to the store: check the credentials",
    "SignatureDoesNotMatch": "the secret key is wrong: check the credentials",
    "ExpiredToken": "the session token has expired",
}


def storage_reason(exc: BaseException) -> str:
    """Object storage's error in a few words (the object store's own messages run to a screenful)."""
    text = str(exc)
    code = re.search(r"<Code>(\w+)</Code>", text)
    if code:
        return _S3_CODES.get(code.group(1), code.group(1))
    if re.search(r"Failed to get AWS credentials|FailedToLoadToken|NoCredentials", text):
        return "no credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or storage_options)"
    if re.search(r"did not match any known pattern", text):
        return "not a storage URI docrag can open: write s3://bucket/prefix"
    if "http://" in text and re.search(r"allow_http|AllowHttp|HTTP scheme is not allowed", text, re.I):
        return "the endpoint is http://: set AWS_ALLOW_HTTP=true (or allow_http in storage_options)"
    if re.search(r"ConnectionRefused|tcp connect error|dns error|Connect, ConnectError|timed out", text):
        host = re.search(r"uri: Some\((\w+://[^/)]+)", text)
        return f"cannot reach the storage endpoint{' ' + host.group(1) if host else ''}"
    return short_error(exc)


def is_uri(db: str | Path) -> bool:
    """Whether ``db`` names object storage (s3://…) rather than a folder."""
    return "://" in str(db)


def table_versions_on_disk(uri: str | Path, names: list[str]) -> dict[str, int] | None:
    """The latest version of each table of a local database, read from its manifests' names (no LanceDB
    import: a listing of one folder per table); None when a table is missing."""
    out = {}
    for name in names:
        try:
            entries = os.listdir(Path(uri) / f"{name}.lance" / "_versions")
        except OSError:
            return None
        best = -1
        for entry in entries:
            stem, _, ext = entry.partition(".")
            if ext != "manifest" or not stem.isdigit():
                continue
            n = int(stem)
            best = max(best, _U64 - n if n >= 1 << 63 else n)
        if best < 0:
            return None
        out[name] = best
    return out
