#!/usr/bin/env python3
"""Jira REST API stand-in: the upstream behind jira-entra-guard in the local stack.

It answers a small, Jira-shaped subset of the REST API (myself, search, issue,
project, status) and records every request exactly as it arrived, so tests can
see what the gateway forwarded (or that it forwarded nothing):

  GET  /_standin/requests   -> {"requests": [{"method", "path", "headers", "body_length",
                                              "body_b64", ...}]}
  POST /_standin/reset      -> clears the record

It performs no authentication of its own. Standard library only.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlsplit

from loopback_server import is_loopback, serve

JIRA_CT = "application/json;charset=UTF-8"
MAX_BODY = 8 * 1024 * 1024

PROJECTS = {
    "OPS": {"id": "10100", "name": "Operations", "lead": "ops.lead"},
    "SEC": {"id": "10200", "name": "Security", "lead": "sec.lead"},
    "DEV": {"id": "10300", "name": "Development", "lead": "dev.lead"},
}
ISSUE_KEY_RE = re.compile(r"^([A-Z][A-Z0-9]*)-([1-9][0-9]?)$")
STATUSES = ["Open", "In Progress", "Resolved", "Closed"]
ISSUE_NOT_FOUND = "Issue does not exist or you do not have permission to see it."
API_VERSIONS = ("2", "latest")


def jira_error(messages: list[str], errors: dict | None = None) -> dict:
    return {"errorMessages": messages, "errors": errors or {}}


class JiraData:
    """Deterministic issue and project data plus the request record."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.created = 0
        self.per_project: dict[str, int] = {}

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.created = 0
            self.per_project.clear()

    @staticmethod
    def issue_ref(key: str) -> tuple[str, int] | None:
        m = ISSUE_KEY_RE.match(key)
        if not m or m.group(1) not in PROJECTS:
            return None
        return m.group(1), int(m.group(2))

    @staticmethod
    def key_for_id(issue_id: str) -> str | None:
        if not issue_id.isdigit():
            return None
        num = int(issue_id)
        for project, info in PROJECTS.items():
            base = int(info["id"]) * 10
            if base < num < base + 100:
                return f"{project}-{num - base}"
        return None

    @staticmethod
    def project_json(base: str, key: str) -> dict:
        info = PROJECTS[key]
        return {
            "expand": "description,lead,url,projectKeys",
            "self": f"{base}/rest/api/2/project/{info['id']}",
            "id": info["id"],
            "key": key,
            "name": info["name"],
            "description": f"{info['name']} project",
            "lead": {"name": info["lead"], "displayName": info["lead"].replace(".", " ").title(),
                     "active": True},
            "projectTypeKey": "software",
            "archived": False,
            "issueTypes": [
                {"id": "10001", "name": "Task", "subtask": False},
                {"id": "10004", "name": "Bug", "subtask": False},
            ],
        }

    @staticmethod
    def issue_json(base: str, project: str, number: int) -> dict:
        info = PROJECTS[project]
        issue_id = str(int(info["id"]) * 10 + number)
        key = f"{project}-{number}"
        status = STATUSES[number % len(STATUSES)]
        return {
            "expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
            "id": issue_id,
            "self": f"{base}/rest/api/2/issue/{issue_id}",
            "key": key,
            "fields": {
                "summary": f"{info['name']} task {number}",
                "issuetype": {"id": "10001", "name": "Task", "subtask": False},
                "project": {"id": info["id"], "key": project, "name": info["name"],
                            "self": f"{base}/rest/api/2/project/{info['id']}"},
                "status": {"name": status, "id": str(1 + STATUSES.index(status))},
                "priority": {"name": "Medium", "id": "3"},
                "assignee": {"name": info["lead"], "displayName": info["lead"].replace(".", " ").title()},
                "reporter": {"name": "jira.admin", "displayName": "Jira Admin"},
                "labels": [project.lower()],
                "created": "2024-01-15T09:30:00.000+0000",
                "updated": "2024-02-01T16:45:00.000+0000",
                "description": f"Demo issue {key} served by the Jira stand-in.",
            },
        }


class Handler(BaseHTTPRequestHandler):
    server_version = "jira-standin"

    def version_string(self) -> str:
        return self.server_version

    protocol_version = "HTTP/1.1"
    data: JiraData  # set on the subclass in main()

    def log_request(self, code="-", size="-") -> None:
        code = getattr(code, "value", code)
        sys.stderr.write(f"jira-standin {self.command} {self._raw_target()} {code}\n")
        sys.stderr.flush()

    def log_message(self, fmt, *args) -> None:
        sys.stderr.write("jira-standin " + (fmt % args) + "\n")
        sys.stderr.flush()

    # Any method name (including non-standard ones) is handled and recorded.
    def __getattr__(self, name: str):
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)

    def _raw_target(self) -> str:
        # The request target exactly as sent on the request line (http.server may
        # rewrite self.path, e.g. collapsing a leading '//').
        parts = getattr(self, "requestline", "").split(" ")
        return parts[1] if len(parts) >= 3 else getattr(self, "path", "")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > MAX_BODY:
                    raise ValueError("body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, obj=None, extra: dict | None = None) -> None:
        body = b"" if obj is None else json.dumps(obj, separators=(",", ":")).encode("utf-8")
        self.send_response(status)
        if obj is not None:
            self.send_header("Content-Type", JIRA_CT)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-AREQUESTID", f"{int(time.time() * 1000) % 100000}x1")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _base(self) -> str:
        return f"http://{self.headers.get('Host') or '%s:%d' % self.server.server_address[:2]}"

    def _handle(self) -> None:
        raw = self._raw_target()
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self._send(400, jira_error(["Invalid request body."]))
            return
        url = urlsplit(raw)
        if url.path == "/_standin" or url.path.startswith("/_standin/"):
            self._control(url.path)
            return
        with self.data.lock:
            self.data.requests.append({
                "method": self.command,
                "path": raw,
                "headers": [[k.lower(), v] for k, v in self.headers.items()],
                "body_length": len(body),
                # The exact bytes received, so tests can prove the body was not altered.
                "body_b64": base64.b64encode(body).decode("ascii"),
                "client": self.client_address[0],
                "time": time.time(),
            })
        try:
            self._route(url.path, parse_qs(url.query), body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # keep serving; report the failure
            self.log_message("internal error: %r", exc)
            self._send(500, jira_error([f"Internal server error: {exc}"]))

    def _control(self, path: str) -> None:
        if not is_loopback(self.client_address[0]):
            self._send(403, {"error": "control endpoints are only served to loopback clients"})
            return
        if path == "/_standin/requests" and self.command == "GET":
            with self.data.lock:
                self._send(200, {"requests": list(self.data.requests)})
        elif path == "/_standin/reset" and self.command == "POST":
            self.data.reset()
            self._send(200, {"requests": []})
        elif path == "/_standin/health" and self.command == "GET":
            self._send(200, {"status": "ok"})
        else:
            self._send(404, {"error": f"unknown control endpoint {self.command} {path}"})

    def _route(self, path: str, query: dict, body: bytes) -> None:
        segs = [unquote(s) for s in path.split("/")[1:]]
        method = self.command
        base = self._base()

        if segs == ["status"] and method in ("GET", "HEAD"):
            self._send(200, {"state": "RUNNING"})
            return

        if len(segs) >= 4 and segs[:2] == ["rest", "api"] and segs[2] in API_VERSIONS:
            res = segs[3:]
            if res == ["myself"] and method in ("GET", "HEAD"):
                self._myself(base)
                return
            if res in (["search"], ["search", "jql"]) and method in ("GET", "HEAD", "POST"):
                self._search(base, query, body)
                return
            if res == ["issue"] and method == "POST":
                self._create_issue(base, body)
                return
            if res == ["issue", "bulk"] and method == "POST":
                self._bulk_create(base, body)
                return
            if res == ["issueLink"] and method == "POST":
                self._send(201)
                return
            if len(res) >= 2 and res[0] == "issue":
                self._issue(base, res[1], res[2:], method)
                return
            if len(res) >= 2 and res[0] == "project" and method in ("GET", "HEAD"):
                key = res[1].upper()
                if key not in PROJECTS:
                    key = next((k for k, v in PROJECTS.items() if v["id"] == res[1]), None)
                if key is None:
                    self._send(404, jira_error([f"No project could be found with key '{res[1]}'."]))
                    return
                self._send(200, JiraData.project_json(base, key))
                return

        self._send(404, jira_error(["null for uri: " + base + self._raw_target()]))

    def _myself(self, base: str) -> None:
        name = self.headers.get("x-jira-client") or "anonymous"
        self._send(200, {
            "self": f"{base}/rest/api/2/user?username={name}",
            "key": f"JIRAUSER-{name}",
            "name": name,
            "emailAddress": f"{name}@jira.example.invalid",
            "avatarUrls": {"48x48": f"{base}/secure/useravatar?avatarId=10122"},
            "displayName": name,
            "active": True,
            "deleted": False,
            "timeZone": "Etc/UTC",
            "locale": "en_US",
            "groups": {"size": 1, "items": []},
            "applicationRoles": {"size": 1, "items": []},
            "expand": "groups,applicationRoles",
        })

    def _search(self, base: str, query: dict, body: bytes) -> None:
        max_results = 50
        raw_max = (query.get("maxResults") or [None])[0]
        if self.command == "POST" and body:
            try:
                raw_max = json.loads(body).get("maxResults", raw_max)
            except (ValueError, AttributeError):
                self._send(400, jira_error(["The request body is not valid JSON."]))
                return
        if raw_max is not None:
            try:
                max_results = max(0, int(raw_max))
            except (TypeError, ValueError):
                self._send(400, jira_error([f"The value '{raw_max}' is invalid for maxResults."]))
                return
        issues = [JiraData.issue_json(base, "OPS", 1), JiraData.issue_json(base, "SEC", 1)]
        self._send(200, {
            "expand": "schema,names",
            "startAt": 0,
            "maxResults": max_results,
            "total": len(issues),
            "issues": issues[:max_results],
        })

    def _issue(self, base: str, ref: str, rest: list[str], method: str) -> None:
        key = ref.upper() if JiraData.issue_ref(ref.upper()) else JiraData.key_for_id(ref)
        parsed = JiraData.issue_ref(key) if key else None
        if parsed is None:
            self._send(404, jira_error([ISSUE_NOT_FOUND]))
            return
        project, number = parsed
        if rest:
            if rest == ["comment"] and method in ("GET", "HEAD"):
                self._send(200, {"startAt": 0, "maxResults": 0, "total": 0, "comments": []})
            elif rest == ["comment"] and method == "POST":
                self._send(201, {"id": "10500", "self": f"{base}/rest/api/2/issue/{key}/comment/10500",
                                 "body": "comment"})
            else:
                self._send(404, jira_error(["null for uri: " + base + self._raw_target()]))
            return
        if method in ("GET", "HEAD"):
            self._send(200, JiraData.issue_json(base, project, number))
        elif method in ("PUT", "DELETE"):
            self._send(204)
        else:
            self._send(405, jira_error([f"Method {method} is not allowed for this resource."]),
                       {"Allow": "GET,PUT,DELETE"})

    def _bulk_create(self, base: str, body: bytes) -> None:
        try:
            updates = json.loads(body or b"")["issueUpdates"]
            projects = [str(u["fields"]["project"]["key"]).upper() for u in updates]
        except (ValueError, KeyError, TypeError):
            self._send(400, jira_error(["issueUpdates with fields.project.key are required"]))
            return
        issues = []
        with self.data.lock:
            for project in projects:
                self.data.created += 1
                number = self.data.per_project.get(project, 100) + 1
                self.data.per_project[project] = number
                issue_id = str(10000 + self.data.created)
                issues.append({"id": issue_id, "key": f"{project}-{number}",
                               "self": f"{base}/rest/api/2/issue/{issue_id}"})
        self._send(201, {"issues": issues, "errors": []})

    def _create_issue(self, base: str, body: bytes) -> None:
        try:
            doc = json.loads(body or b"")
            ref = doc["fields"]["project"]
            project = str(ref["key"]).upper() if "key" in ref else next(
                k for k, v in PROJECTS.items() if v["id"] == str(ref["id"]))
        except (ValueError, KeyError, TypeError, StopIteration):
            self._send(400, jira_error([], {"project": "project is required"}))
            return
        if project not in PROJECTS:
            self._send(400, jira_error([], {"project": "valid project is required"}))
            return
        with self.data.lock:
            self.data.created += 1
            number = self.data.per_project.get(project, 100) + 1
            self.data.per_project[project] = number
            issue_id = str(10000 + self.data.created)
        self._send(201, {"id": issue_id, "key": f"{project}-{number}",
                         "self": f"{base}/rest/api/2/issue/{issue_id}"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Jira REST API stand-in (loopback only).")
    parser.add_argument("--port", type=int, default=8091, help="listen port, 0 = any free port")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    args = parser.parse_args(argv)
    if not is_loopback(args.host):
        parser.error("--host must be a loopback address")

    handler = type("BoundHandler", (Handler,), {"data": JiraData()})
    return serve("jira-standin", args.host, args.port, handler)


if __name__ == "__main__":
    sys.exit(main())
