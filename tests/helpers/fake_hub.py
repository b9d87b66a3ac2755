"""A local HTTP server that mimics the parts of the Hugging Face Hub that `snapshot_download` uses.

Point ``HF_ENDPOINT`` at :attr:`FakeHub.endpoint`. What huggingface_hub 1.x asks for, and what is served:

* ``GET /api/models/{repo_id}/revision/{revision}`` (``HfApi.repo_info``): JSON with ``id``, ``sha``
  (the 40-hex commit) and ``siblings: [{"rfilename": ...}]``. Unknown repo: 404 with
  ``X-Error-Code: RepoNotFound``.
* ``HEAD /{repo_id}/resolve/{commit}/{filename}`` (``get_hf_file_metadata``): needs ``X-Repo-Commit``,
  an ``ETag`` and a size. Regular ("git") files answer 200 with ``ETag: "<git blob sha1>"`` and
  ``Content-Length``; LFS files (``*.safetensors``) answer 302 to an absolute "CDN" URL with
  ``X-Linked-Etag: "<sha256>"`` and ``X-Linked-Size``, as the Hub does. No ``X-Xet-*`` headers, so
  hf_xet is never used.
* ``GET /{repo_id}/resolve/{commit}/{filename}`` and ``GET /cdn/{sha256}``: the bytes; ``Range:
  bytes=N-`` answers 206 (huggingface_hub resumes a dropped download that way).

Failures to inject, per file name (:attr:`FakeHub.faults`): ``"500"`` (every GET of the file
answers 500) or ``"drop"`` (the first GET sends half the body and closes the connection; every
later GET of it gets 500, as from a hub that went down: huggingface_hub retries a dropped download
once per second, with ``Range`` only when it had received a whole 10 MB chunk).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

COMMIT = "0123456789abcdef0123456789abcdef01234567"
LFS_SUFFIXES = (".safetensors", ".bin", ".onnx")


@dataclass(frozen=True, slots=True)
class HubFile:
    name: str
    data: bytes
    lfs: bool

    @property
    def etag(self) -> str:
        if self.lfs:
            return hashlib.sha256(self.data).hexdigest()
        return hashlib.sha1(b"blob %d\0" % len(self.data) + self.data).hexdigest()  # git's blob id


@dataclass
class FakeHub:
    repos: dict[str, dict[str, HubFile]]
    endpoint: str = ""
    faults: dict[str, str] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path) as received
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _dropped: set[str] = field(default_factory=set)

    def record(self, method: str, path: str) -> None:
        with self._lock:
            self.requests.append((method, path))

    def count(self, method: str, pattern: str = "") -> int:
        """How many `method` requests had a path containing `pattern`."""
        with self._lock:
            return sum(1 for m, p in self.requests if m == method and pattern in p)

    def heal(self) -> None:
        """No more faults; forget the requests seen so far."""
        with self._lock:
            self.faults.clear()
            self.requests.clear()

    def note_drop(self, name: str) -> bool:
        """True the first time `name` is dropped."""
        with self._lock:
            first = name not in self._dropped
            self._dropped.add(name)
            return first

    def file_by_sha256(self, digest: str) -> HubFile | None:
        for files in self.repos.values():
            for hub_file in files.values():
                if hub_file.lfs and hub_file.etag == digest:
                    return hub_file
        return None


def repo_from_folder(folder: Path) -> dict[str, HubFile]:
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        files[name] = HubFile(name, path.read_bytes(), lfs=name.endswith(LFS_SUFFIXES))
    return files


_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<file>.+)$")
_INFO = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/revision/(?P<revision>[^/]+)$")
_CDN = re.compile(r"^/cdn/(?P<sha>[0-9a-f]{64})$")
_RANGE = re.compile(r"^bytes=(\d+)-$")


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub  # set on the subclass made per server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def do_GET(self) -> None:
        self._answer(head=False)

    def _answer(self, head: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        self.hub.record(self.command, path)
        if match := _INFO.match(path):
            self._repo_info(match["repo"], match["revision"])
        elif match := _RESOLVE.match(path):
            self._resolve(match["repo"], match["revision"], match["file"], head)
        elif match := _CDN.match(path):
            hub_file = self.hub.file_by_sha256(match["sha"])
            if hub_file is None:
                self._error(404, "EntryNotFound", "no such blob")
            else:
                self._content(hub_file, head, {})
        else:
            self._error(404, "", "not found")

    def _repo_files(self, repo_id: str, revision: str) -> dict[str, HubFile] | None:
        """The repository's files at `revision`; None when there is none (a 404 is sent)."""
        files = self.hub.repos.get(repo_id)
        if files is None:
            self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
            return None
        if revision not in ("main", COMMIT):
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return None
        return files

    def _repo_info(self, repo_id: str, revision: str) -> None:
        files = self._repo_files(repo_id, revision)
        if files is None:
            return
        body = {
            "_id": "fake",
            "id": repo_id,
            "modelId": repo_id,
            "author": repo_id.split("/")[0],
            "sha": COMMIT,
            "private": False,
            "gated": False,
            "disabled": False,
            "tags": [],
            "siblings": [{"rfilename": name} for name in files],
        }
        self._send(200, json.dumps(body).encode(), {"Content-Type": "application/json"})

    def _resolve(self, repo_id: str, revision: str, name: str, head: bool) -> None:
        files = self._repo_files(repo_id, revision)
        if files is None:
            return
        hub_file = files.get(name)
        if hub_file is None:
            self._error(404, "EntryNotFound", f"{name} does not exist on {revision}", {"X-Repo-Commit": COMMIT})
            return
        if hub_file.lfs:  # the Hub redirects LFS files to its CDN, telling the real etag and size
            headers = {
                "Location": f"{self.hub.endpoint}/cdn/{hub_file.etag}",
                "X-Repo-Commit": COMMIT,
                "X-Linked-Etag": f'"{hub_file.etag}"',
                "X-Linked-Size": str(len(hub_file.data)),
                "ETag": '"lfs-pointer-etag"',
            }
            self._send(302, b"", headers, head=head)
            return
        self._content(hub_file, head, {"X-Repo-Commit": COMMIT, "ETag": f'"{hub_file.etag}"'})

    def _content(self, hub_file: HubFile, head: bool, headers: dict[str, str]) -> None:
        data = hub_file.data
        fault = None if head else self.hub.faults.get(hub_file.name)
        if fault == "drop" and not self.hub.note_drop(hub_file.name):
            fault = "500"  # the retry meets a hub that is down
        start = 0
        if not head and (match := _RANGE.match(self.headers.get("Range", ""))):
            start = int(match[1])
        if fault == "500":
            self._error(500, "", "Internal Error - We're working hard to fix this as soon as possible!")
            return
        if fault == "drop":
            self.send_response(200)
            for key, value in {**headers, "Content-Length": str(len(data))}.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if start:
            headers = {**headers, "Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}
            self._send(206, data[start:], headers, head=head)
        else:
            self._send(200, data, headers, head=head)

    def _error(self, status: int, code: str, message: str, extra: dict[str, str] | None = None) -> None:
        headers = {"Content-Type": "application/json", **(extra or {})}
        if code:
            headers["X-Error-Code"] = code
        self._send(status, json.dumps({"error": message}).encode(), headers, head=self.command == "HEAD")

    def _send(self, status: int, body: bytes, headers: dict[str, str], head: bool = False) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)


@contextmanager
def serve_hub(repos: dict[str, dict[str, HubFile]]) -> Iterator[FakeHub]:
    """A :class:`FakeHub` listening on 127.0.0.1 (a free port) in a thread, for the `with` block."""
    hub = FakeHub(repos)
    handler = type("Handler", (_Handler,), {"hub": hub})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    hub.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="fake-hub", daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
