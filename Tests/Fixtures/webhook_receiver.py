"""A webhook receiver for the notification tests: records every POST it accepts.

    python3 webhook_receiver.py --port P [--fail-first N]

POST /hook: the first N requests answer 500 (to test retries); then each body is kept with its
X-Tidb-Backup-Signature header and answered 204. GET /received: the kept ones as a JSON list;
GET /attempts: how many POSTs arrived in all."""
import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
received = []
attempts = 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--fail-first", type=int, default=0)
    args = parser.parse_args()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            global attempts
            body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
            with lock:
                attempts += 1
                fail = attempts <= args.fail_first
                if not fail:
                    received.append({"signature": self.headers.get("X-Tidb-Backup-Signature"), "path": self.path,
                                     "raw": body.decode(), "body": json.loads(body or b"null")})
            self.send_response(500 if fail else 204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self):
            with lock:
                data = json.dumps(received if self.path == "/received" else {"attempts": attempts}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
