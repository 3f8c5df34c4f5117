"""An HTTP proxy that injects faults in front of another server (moto in the fault suite).

    python3 fault_proxy.py --port PORT --target http://127.0.0.1:MOTO_PORT

Requests are forwarded unchanged (the Host header too, so SigV4 signatures still verify). The
control endpoint sets what the next requests get:

    POST /__fault__?mode=503&count=5      the next 5 requests: 503 SlowDown (S3's throttling answer)
    POST /__fault__?mode=500&count=-1     every request: 500 InternalError, until changed
    POST /__fault__?mode=slow&seconds=3&count=4   the next 4 requests wait 3 s before being forwarded
    POST /__fault__?mode=ok               forward everything
    GET  /__fault__                       JSON counters: forwarded, injected
"""
import argparse
import http.client
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

state = {"mode": "ok", "count": 0, "seconds": 0.0, "forwarded": 0, "injected": 0}
lock = threading.Lock()

ERRORS = {
    "503": (503, "SlowDown", "Please reduce your request rate."),
    "500": (500, "InternalError", "We encountered an internal error. Please try again."),
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def control(self):
        query = parse_qs(urlsplit(self.path).query)
        with lock:
            if self.command == "POST":
                state["mode"] = query.get("mode", ["ok"])[0]
                state["count"] = int(query.get("count", ["-1"])[0])
                state["seconds"] = float(query.get("seconds", ["0"])[0])
            body = json.dumps(state).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def fault(self):
        """The fault for this request, if any (and counts it down)."""
        with lock:
            mode, count = state["mode"], state["count"]
            if mode == "ok" or count == 0:
                return None, 0.0
            if count > 0:
                state["count"] = count - 1
            state["injected"] += 1
            return mode, state["seconds"]

    def handle_any(self):
        if self.path.startswith("/__fault__"):
            return self.control()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        mode, seconds = self.fault()
        if mode in ERRORS:
            status, code, message = ERRORS[mode]
            payload = f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message></Error>'.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        if mode == "slow":
            time.sleep(seconds)
        target = urlsplit(self.server.target)
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
        conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for name, value in self.headers.items():
            if name.lower() not in ("connection", "keep-alive", "transfer-encoding"):
                conn.putheader(name, value)
        conn.endheaders(body)
        response = conn.getresponse()
        data = response.read()
        with lock:
            state["forwarded"] += 1
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        conn.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--target", required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.target = args.target
    server.serve_forever()


if __name__ == "__main__":
    main()
