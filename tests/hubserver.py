"""A local HTTP server that serves checkpoint folders in the Hugging Face hub's layout (127.0.0.1 only).

Enough of the hub's API for the real ``huggingface_hub`` client (``HF_ENDPOINT=http://127.0.0.1:PORT``):

- ``GET /api/models/{repo}/revision/{rev}``: repo info (commit ``sha``, ``siblings``);
- ``GET /api/models/{repo}/tree/{rev}[/{path}]``: the file listing (git blob ids, sizes);
- ``HEAD``/``GET /{repo}/resolve/{rev}/{file}``: the file, with ``X-Repo-Commit``, ``ETag`` and length.

A revision is the repo's commit hash or ``main``. Every request is recorded (``server.requests``) so tests can
assert what the client fetched, and that an offline run asked for nothing.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

__all__ = ["HubServer", "Repo"]


@dataclass
class Repo:
    root: Path
    sha: str = ""
    files: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.files = {
            p.relative_to(self.root).as_posix(): p.read_bytes() for p in sorted(self.root.rglob("*")) if p.is_file()
        }
        if not self.sha:  # a stable fake commit hash derived from the content
            digest = hashlib.sha1()
            for name, data in self.files.items():
                digest.update(name.encode() + b"\0" + hashlib.sha1(data).digest())
            self.sha = digest.hexdigest()

    @staticmethod
    def blob_id(data: bytes) -> str:
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubServer:
    """``with HubServer({"org/name": folder}) as hub: hub.endpoint`` — serves until the block ends."""

    def __init__(self, repos: dict[str, Path]) -> None:
        self.repos = {repo_id: Repo(Path(root)) for repo_id, root in repos.items()}
        self.requests: list[tuple[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_HEAD(self) -> None:
                server._handle(self, body=False)

            def do_GET(self) -> None:
                server._handle(self, body=True)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def sha(self, repo_id: str) -> str:
        return self.repos[repo_id].sha

    def downloads(self) -> list[str]:
        """Paths of the files fetched with GET."""
        return [p for m, p in self.requests if m == "GET" and "/resolve/" in p]

    def __enter__(self) -> HubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- routing -------------------------------------------------------------------------------------------
    def _find(self, parts: list[str]) -> tuple[str, Repo, list[str]] | None:
        """Split ``org/name/<verb>/...`` into the repo and the rest (repo ids have one slash)."""
        if len(parts) < 3:
            return None
        repo_id = "/".join(parts[:2])
        repo = self.repos.get(repo_id)
        return (repo_id, repo, parts[2:]) if repo is not None else None

    def _handle(self, h: BaseHTTPRequestHandler, *, body: bool) -> None:
        path = urlparse(h.path).path
        self.requests.append((h.command, path))
        parts = [unquote(p) for p in path.strip("/").split("/")]
        api = parts[:2] == ["api", "models"]
        found = self._find(parts[2:] if api else parts)
        if found is None:
            return self._error(h, 404, "RepoNotFound", "Repository not found")
        repo_id, repo, rest = found
        verb, rev, tail = rest[0], (rest[1] if len(rest) > 1 else "main"), "/".join(rest[2:])
        if rev not in ("main", repo.sha):
            return self._error(h, 404, "RevisionNotFound", f"Invalid rev id: {rev}")
        if api and verb == "revision":
            info = {
                "id": repo_id,
                "modelId": repo_id,
                "sha": repo.sha,
                "private": False,
                "siblings": [{"rfilename": name} for name in repo.files],
            }
            return self._send(h, json.dumps(info).encode(), "application/json", body=body)
        if api and verb == "tree":
            prefix = tail.rstrip("/") + "/" if tail else ""
            listing = [
                {"type": "file", "oid": Repo.blob_id(data), "size": len(data), "path": name}
                for name, data in repo.files.items()
                if name.startswith(prefix)
            ]
            return self._send(h, json.dumps(listing).encode(), "application/json", body=body)
        if not api and verb == "resolve" and tail in repo.files:
            data = repo.files[tail]
            headers = {"X-Repo-Commit": repo.sha, "ETag": f'"{Repo.blob_id(data)}"'}
            return self._send(h, data, "application/octet-stream", body=body, headers=headers)
        return self._error(h, 404, "EntryNotFound", f"{tail} not found")

    @staticmethod
    def _send(
        h: BaseHTTPRequestHandler, data: bytes, ctype: str, *, body: bool, headers: dict[str, str] | None = None
    ) -> None:
        h.send_response(200)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        if body:
            h.wfile.write(data)

    @staticmethod
    def _error(h: BaseHTTPRequestHandler, status: int, code: str, message: str) -> None:
        data = json.dumps({"error": message}).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.send_header("X-Error-Code", code)
        h.send_header("X-Error-Message", message)
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)
