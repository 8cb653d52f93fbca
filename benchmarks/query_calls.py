"""What a warm query asks of LanceDB: calls per query on a local folder and on s3:// (a moto server here).

    python benchmarks/query_calls.py [--corpus examples] [--profile lite] [--no-s3] [--no-save]

The corpus, but for its last file, is indexed; an ``Index`` is opened and searched once (cold: the model
loads, the tables open). Then, with LanceDB's methods counted:

- ``warm``: a second query on that Index;
- ``after add``: the last file added through the same Index, then a query.

Counted: connection calls (``open_table``, ``list_tables``/``table_names``), table calls (``count_rows``,
``version``, ``schema``, ``to_arrow``, ``list_indices``) and query executions (every search LanceDB runs:
vector, full-text, plain scans and takes). On s3:// the requests that reach the object store are counted too,
by kind (GET, HEAD, PUT, LIST, DELETE): a LIST is what a ``list_tables`` or a version check costs there.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import shutil
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import append_results

QUERIES = ("which table reports the results", "how is the index computed")


class Counter:
    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()
        self.requests: collections.Counter[str] = collections.Counter()
        self.on = False

    def add(self, key: str) -> None:
        if self.on:
            self.calls[key] += 1

    def request(self, kind: str) -> None:
        if self.on:
            self.requests[kind] += 1

    @contextlib.contextmanager
    def counting(self) -> Iterator[None]:
        self.calls.clear()
        self.requests.clear()
        self.on = True
        try:
            yield
        finally:
            self.on = False


def instrument(counter: Counter) -> None:
    """Count LanceDB's synchronous API calls (the ones docrag uses)."""
    import lancedb.db as db
    import lancedb.table as t

    def wrap(cls: type, name: str, key: str) -> None:
        original = getattr(cls, name)
        if isinstance(original, property):

            def getter(self, _orig=original.fget):
                counter.add(key)
                return _orig(self)

            setattr(cls, name, property(getter, original.fset))
            return

        def method(self, *args, _orig=original, **kwargs):
            counter.add(key)
            return _orig(self, *args, **kwargs)

        setattr(cls, name, method)

    for name in ("open_table", "list_tables", "table_names", "create_table", "drop_table"):
        wrap(db.LanceDBConnection, name, f"connection.{name}")
    for name in ("count_rows", "version", "schema", "to_arrow", "list_indices", "take_offsets", "checkout_latest"):
        wrap(t.LanceTable, name, f"table.{name}")
    wrap(t.LanceTable, "_execute_query", "query")


def s3_server(counter: Counter) -> tuple[str, object]:
    """moto's S3 app on 127.0.0.1, every request counted by kind."""
    import logging

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    app = DomainDispatcherApplication(create_backend_app)

    def counted(environ, start_response):
        method, query = environ["REQUEST_METHOD"], environ.get("QUERY_STRING", "")
        kind = "LIST" if method == "GET" and ("list-type" in query or "prefix=" in query) else method
        counter.request(kind)
        return app(environ, start_response)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = make_server("127.0.0.1", port, counted, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    import boto3

    endpoint = f"http://127.0.0.1:{port}"
    boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1"
    ).create_bucket(Bucket="calls")
    os.environ.update(
        AWS_ACCESS_KEY_ID="x",
        AWS_SECRET_ACCESS_KEY="x",
        AWS_REGION="us-east-1",
        AWS_ENDPOINT=endpoint,
        AWS_ALLOW_HTTP="true",
    )
    return "s3://calls/db", server


def measure(
    db: str, files: list[Path], profile: str, config: Path | None, counter: Counter
) -> dict[str, dict[str, int]]:
    import docrag

    first, last = files[:-1], files[-1]
    docrag.open(db, profile=profile, config=config).add(first, workers=0)
    index = docrag.open(db)
    index.search(QUERIES[0], k=5)  # cold
    out = {}
    with counter.counting():
        index.search(QUERIES[1], k=5)
    out["warm"] = {**counter.calls, **{f"s3.{k}": v for k, v in counter.requests.items()}}
    index.add([last], workers=0)
    with counter.counting():
        index.search(QUERIES[0], k=5)
    out["after add"] = {**counter.calls, **{f"s3.{k}": v for k, v in counter.requests.items()}}
    return out


def table(results: dict[str, dict[str, dict[str, int]]]) -> str:
    keys = sorted({k for r in results.values() for run in r.values() for k in run})
    runs = [(where, name) for where, r in results.items() for name in r]
    head = "| call | " + " | ".join(f"{w}: {n}" for w, n in runs) + " |"
    rows = [head, "|---|" + "---:|" * len(runs)]
    for key in keys:
        rows.append(f"| {key} | " + " | ".join(str(results[w][n].get(key, 0)) for w, n in runs) + " |")
    lance = [k for k in keys if not k.startswith("s3.")]
    rows.append(
        "| **LanceDB calls** | " + " | ".join(str(sum(results[w][n].get(k, 0) for k in lance)) for w, n in runs) + " |"
    )
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=Path(__file__).parent.parent / "examples")
    ap.add_argument("--profile", default="lite")
    ap.add_argument("--config", type=Path, help="A TOML settings file (e.g. a visual model of your own).")
    ap.add_argument("--no-s3", action="store_true")
    ap.add_argument("--no-save", action="store_true")
    ap.add_argument("--label", default="", help="Said in the title (e.g. before, after).")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    files = sorted(p for p in args.corpus.iterdir() if p.suffix.lower() == ".pdf")
    if len(files) < 2:
        sys.exit(f"{args.corpus}: need at least two PDFs")
    counter = Counter()
    instrument(counter)
    results: dict[str, dict[str, dict[str, int]]] = {}
    tmp = Path(tempfile.mkdtemp(prefix="docrag-calls-"))
    try:
        results["local"] = measure(str(tmp / "db"), files, args.profile, args.config, counter)
        if not args.no_s3:
            uri, server = s3_server(counter)
            try:
                results["s3"] = measure(uri, files, args.profile, args.config, counter)
            finally:
                server.shutdown()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    title = "LanceDB calls per warm query" + (f" ({args.label})" if args.label else "")
    body = (
        f"`python benchmarks/query_calls.py --corpus {args.corpus} --profile {args.profile}"
        f"{f' --config {args.config}' if args.config else ''}`: "
        f"{len(files) - 1} documents indexed, one query on an open Index (warm), then one after `add` of another "
        f"document through the same Index.\n\n{table(results)}\n"
    )
    append_results(title, body, save=not args.no_save)


if __name__ == "__main__":
    main()
