#!/usr/bin/env python3
"""An in-memory Azure Blob service for tests (no Azure emulator installs from PyPI or apt).

Path-style addressing as Azurite serves it: http://127.0.0.1:PORT/<account>/<container>/<blob>.
Authentication is checked the way the service checks it:
  * Shared Key: the expected Authorization header is computed by Microsoft's own signer
    (azure-storage-blob's SharedKeyCredentialPolicy) over the request as received, and must match;
    x-ms-date must be within 15 minutes.
  * SAS: the query must carry the configured SAS token's parameters unchanged (sig included).
  * Bearer (Azure AD): a token issued by fake_metadata.py's identity platform ("aad-" prefix), with
    x-ms-version 2017-11-09 or later.
Operations: create container, list blobs (prefix, marker, maxresults), put blob, put block, put
block list, get blob (x-ms-range), get properties (HEAD), delete blob. GET /__requests answers the
requests seen (method, path, query, x-ms-access-tier, auth scheme).
"""
import argparse, base64, email.utils, json, sys, threading, time, urllib.parse
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from azure.core.pipeline import PipelineContext, PipelineRequest
from azure.core.rest import HttpRequest
from azure.storage.blob._shared.authentication import SharedKeyCredentialPolicy

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--account", required=True)
p.add_argument("--key", required=True, help="the account key, base64")
p.add_argument("--sas", default="", help="the SAS token the service accepts")
args = p.parse_args()

lock = threading.Lock()
containers = {}   # name -> {blob name -> {"data": bytes, "tier": str}}
blocks = {}       # (container, blob) -> {block id -> bytes}
seen = []


def error(handler, status, code, message):
    body = f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>{message}</Message></Error>'.encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/xml")
    handler.send_header("Content-Length", str(len(body)))
    handler.send_header("x-ms-error-code", code)
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if "Content-Length" not in dict(headers):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def parse(self):
        url = urllib.parse.urlsplit(self.path)
        self.query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        parts = url.path.split("/", 3)  # '', account, container, blob
        self.account = urllib.parse.unquote(parts[1]) if len(parts) > 1 else ""
        self.container = urllib.parse.unquote(parts[2]) if len(parts) > 2 else ""
        self.blob = urllib.parse.unquote(parts[3]) if len(parts) > 3 else ""
        n = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(n) if n else b""

    def authorized(self):
        auth = self.headers.get("Authorization", "")
        scheme = auth.split(" ")[0] if auth else ("sas" if "sig" in self.query else "none")
        with lock:
            seen.append({"method": self.command, "path": urllib.parse.urlsplit(self.path).path, "query": self.query,
                         "tier": self.headers.get("x-ms-access-tier"), "auth": scheme})
        if self.account != args.account:
            error(self, 404, "ResourceNotFound", "The specified resource does not exist.")
            return False
        if auth.startswith("SharedKey "):
            date = self.headers.get("x-ms-date")
            try:
                skew = abs(time.time() - email.utils.parsedate_to_datetime(date).timestamp())
            except Exception:
                skew = 1e9
            if skew > 900:
                error(self, 403, "AuthenticationFailed", "Request date header too old or missing.")
                return False
            headers = {k: v for k, v in self.headers.items() if k.lower() != "authorization"}
            request = HttpRequest(self.command, f"http://127.0.0.1:{args.port}{self.path}", headers=headers)
            pipeline_request = PipelineRequest(request, PipelineContext(None))
            SharedKeyCredentialPolicy(args.account, args.key).on_request(pipeline_request)
            if pipeline_request.http_request.headers["Authorization"] != auth:
                error(self, 403, "AuthenticationFailed",
                      "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.")
                return False
            return True
        if auth.startswith("Bearer "):
            if not auth[7:].startswith("aad-") or self.headers.get("x-ms-version", "") < "2017-11-09":
                error(self, 401, "InvalidAuthenticationInfo", "Authentication information is not given in the correct format.")
                return False
            return True
        if "sig" in self.query and args.sas:
            expected = dict(urllib.parse.parse_qsl(args.sas, keep_blank_values=True))
            if all(self.query.get(k) == v for k, v in expected.items()):
                return True
            error(self, 403, "AuthenticationFailed", "Signature did not match.")
            return False
        error(self, 401, "NoAuthenticationInformation", "Server failed to authenticate the request.")
        return False

    def handle_any(self):
        self.parse()
        if self.path == "/__requests":
            with lock:
                return self.reply(200, json.dumps(seen).encode(), [("Content-Type", "application/json")])
        if not self.authorized():
            return
        method, q = self.command, self.query
        with lock:
            if not self.blob:
                if method == "PUT" and q.get("restype") == "container":
                    if self.container in containers:
                        return error(self, 409, "ContainerAlreadyExists", "The specified container already exists.")
                    containers[self.container] = {}
                    return self.reply(201)
                if method == "GET" and q.get("restype") == "container" and q.get("comp") == "list":
                    return self.list_blobs()
                return error(self, 400, "UnsupportedHttpVerb", "The resource doesn't support the specified HTTP verb.")
            store = containers.get(self.container)
            if store is None:
                return error(self, 404, "ContainerNotFound", "The specified container does not exist.")
            key = (self.container, self.blob)
            if method == "PUT" and q.get("comp") == "block":
                blocks.setdefault(key, {})[q["blockid"]] = self.body
                return self.reply(201)
            if method == "PUT" and q.get("comp") == "blocklist":
                ids = [e.text for e in ET.fromstring(self.body)]
                staged = blocks.get(key, {})
                if any(i not in staged for i in ids):
                    return error(self, 400, "InvalidBlockList", "The specified block list is invalid.")
                store[self.blob] = {"data": b"".join(staged[i] for i in ids), "tier": self.headers.get("x-ms-access-tier") or "Hot"}
                blocks.pop(key, None)
                return self.reply(201)
            if method == "PUT":
                if self.headers.get("x-ms-blob-type") != "BlockBlob":
                    return error(self, 400, "MissingRequiredHeader", "An HTTP header that's mandatory for this request is not specified.")
                store[self.blob] = {"data": self.body, "tier": self.headers.get("x-ms-access-tier") or "Hot"}
                return self.reply(201)
            blob = store.get(self.blob)
            if blob is None:
                return error(self, 404, "BlobNotFound", "The specified blob does not exist.")
            if method == "DELETE":
                del store[self.blob]
                return self.reply(202)
            if method == "HEAD":
                return self.reply(200, b"", [("Content-Length", str(len(blob["data"]))), ("x-ms-access-tier", blob["tier"]),
                                             ("x-ms-blob-type", "BlockBlob")])
            if method == "GET":
                data = blob["data"]
                rng = self.headers.get("x-ms-range")
                if rng:
                    start, end = rng.split("=")[1].split("-")
                    start, end = int(start), min(int(end), len(data) - 1)
                    return self.reply(206, data[start:end + 1], [("Content-Range", f"bytes {start}-{end}/{len(data)}")])
                return self.reply(200, data)
        error(self, 400, "UnsupportedHttpVerb", "The resource doesn't support the specified HTTP verb.")

    def list_blobs(self):
        store = containers.get(self.container)
        if store is None:
            return error(self, 404, "ContainerNotFound", "The specified container does not exist.")
        prefix, marker = self.query.get("prefix", ""), self.query.get("marker", "")
        limit = int(self.query.get("maxresults", "5000"))
        names = sorted(n for n in store if n.startswith(prefix) and n > marker)
        page, rest = names[:limit], names[limit:]
        root = ET.Element("EnumerationResults", ServiceEndpoint=f"http://127.0.0.1:{args.port}/{args.account}", ContainerName=self.container)
        ET.SubElement(root, "Prefix").text = prefix
        ET.SubElement(root, "MaxResults").text = str(limit)
        blobs = ET.SubElement(root, "Blobs")
        for n in page:
            b = ET.SubElement(blobs, "Blob")
            ET.SubElement(b, "Name").text = n
            props = ET.SubElement(b, "Properties")
            ET.SubElement(props, "Content-Length").text = str(len(store[n]["data"]))
            ET.SubElement(props, "BlobType").text = "BlockBlob"
            ET.SubElement(props, "AccessTier").text = store[n]["tier"]
        ET.SubElement(root, "NextMarker").text = page[-1] if rest else None
        body = b'<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(root)
        self.reply(200, body, [("Content-Type", "application/xml")])

    do_GET = do_PUT = do_DELETE = do_HEAD = do_POST = handle_any


ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()
