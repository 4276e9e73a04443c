"""A stand-in for the Hugging Face Hub on 127.0.0.1: just the endpoints huggingface_hub calls to
create a repo, validate a card and upload files (what FACTS.md records). It keeps what arrives."""

from __future__ import annotations

import base64
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeHub:
    def __init__(self):
        self.files: dict[str, bytes] = {}  # path in repo -> content
        self.requests: list[tuple[str, str, str]] = []  # (method, path, Authorization header)
        self.repos: list[dict] = []
        self.branches: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output quiet
                pass

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _json(self, status: int, payload: dict | None = None) -> None:
                data = json.dumps(payload or {}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _record(self) -> None:
                hub.requests.append((self.command, self.path, self.headers.get("Authorization", "")))

            def do_HEAD(self):
                self._record()
                self._json(404)

            def do_GET(self):
                self._record()
                self._json(404)

            def do_POST(self):
                self._record()
                body = self._body()
                if self.path == "/api/repos/create":
                    request = json.loads(body)
                    hub.repos.append(request)
                    name = f"{request.get('organization') or 'me'}/{request['name']}"
                    return self._json(200, {"url": f"http://127.0.0.1/{name}"})
                if self.path == "/api/validate-yaml":
                    return self._json(200, {"errors": [], "warnings": []})
                if re.fullmatch(r"/api/models/.+/branch/.+", self.path):
                    hub.branches.append(self.path.rsplit("/", 1)[1])
                    return self._json(200, {})
                if re.fullmatch(r"/api/models/.+/preupload/.+", self.path):
                    files = json.loads(body)["files"]
                    return self._json(200, {"files": [{"path": f["path"], "uploadMode": "regular",
                                                       "shouldIgnore": False} for f in files]})
                if re.fullmatch(r"/api/models/.+/commit/.+", self.path):
                    for line in body.decode().splitlines():
                        item = json.loads(line)
                        if item["key"] == "file":
                            hub.files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                    return self._json(200, {"commitUrl": "http://127.0.0.1/me/model/commit/" + "0" * 40,
                                            "commitOid": "0" * 40})
                return self._json(404)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
