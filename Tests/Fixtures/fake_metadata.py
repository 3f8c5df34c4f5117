#!/usr/bin/env python3
"""Token services for tests, each checking what the real one checks.

  Google OAuth token endpoint   POST /token             JWT-bearer grant; the RS256 assertion is
                                                        verified with --google-public-key (cryptography)
  GCE metadata server           GET /computeMetadata/v1/instance/service-accounts/default/token
                                                        requires Metadata-Flavor: Google
  AWS instance metadata (IMDS)  PUT /latest/api/token, GET /latest/meta-data/iam/security-credentials/[role]
                                                        --imds-v2-only refuses requests without the token
  Microsoft identity platform   POST /<tenant>/oauth2/v2.0/token   client-credentials grant with
                                                        --azure-client-id / --azure-client-secret

GET /requests answers the requests seen so far (method, path, a few headers) as JSON.
"""
import argparse, base64, json, secrets, sys, threading, time, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--google-public-key")
p.add_argument("--aws-access-key-id", default="")
p.add_argument("--aws-secret-access-key", default="")
p.add_argument("--aws-role", default="pod-role")
p.add_argument("--imds-v2-only", action="store_true")
p.add_argument("--azure-client-id", default="")
p.add_argument("--azure-client-secret", default="")
args = p.parse_args()

public_key = None
if args.google_public_key:
    with open(args.google_public_key, "rb") as f:
        public_key = serialization.load_pem_public_key(f.read())

seen = []
imds_tokens = set()
lock = threading.Lock()


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else (json.dumps(body) if not isinstance(body, str) else body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def record(self):
        with lock:
            seen.append({"method": self.command, "path": self.path,
                         "metadataFlavor": self.headers.get("Metadata-Flavor"),
                         "imdsToken": self.headers.get("X-aws-ec2-metadata-token") is not None})

    def form(self):
        n = int(self.headers.get("Content-Length") or 0)
        return {k: v[0] for k, v in urllib.parse.parse_qs(self.rfile.read(n).decode()).items()}

    def do_GET(self):
        self.record()
        path = self.path.split("?")[0]
        if path == "/requests":
            with lock:
                return self.reply(200, seen)
        if path == "/computeMetadata/v1/instance/service-accounts/default/token":
            if self.headers.get("Metadata-Flavor") != "Google":
                return self.reply(403, "Missing Metadata-Flavor:Google header.", "text/plain")
            return self.reply(200, {"access_token": "ya29.metadata-" + secrets.token_hex(4), "expires_in": 3599, "token_type": "Bearer"})
        if path.startswith("/latest/meta-data/iam/security-credentials/"):
            token = self.headers.get("X-aws-ec2-metadata-token")
            if args.imds_v2_only and token not in imds_tokens:
                return self.reply(401, "", "text/plain")
            role = path[len("/latest/meta-data/iam/security-credentials/"):]
            if role == "":
                return self.reply(200, args.aws_role, "text/plain")
            if role != args.aws_role:
                return self.reply(404, "", "text/plain")
            expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
            return self.reply(200, {"Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": args.aws_access_key_id,
                                    "SecretAccessKey": args.aws_secret_access_key, "Expiration": expires})
        self.reply(404, {"error": "not_found"})

    def do_PUT(self):
        self.record()
        if self.path == "/latest/api/token":
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            if not ttl or not ttl.isdigit() or not (1 <= int(ttl) <= 21600):
                return self.reply(400, "", "text/plain")
            token = secrets.token_hex(16)
            with lock:
                imds_tokens.add(token)
            return self.reply(200, token, "text/plain")
        self.reply(404, {"error": "not_found"})

    def do_POST(self):
        self.record()
        path = self.path.split("?")[0]
        if path == "/token":
            return self.google_token()
        parts = path.strip("/").split("/")
        if len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "token"]:
            return self.azure_token(parts[0])
        self.reply(404, {"error": "not_found"})

    def google_token(self):
        form = self.form()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return self.reply(400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"})
        try:
            header_b64, claims_b64, sig_b64 = form["assertion"].split(".")
            header = json.loads(b64url_decode(header_b64))
            claims = json.loads(b64url_decode(claims_b64))
            if header.get("alg") != "RS256":
                raise ValueError("alg is not RS256")
            public_key.verify(b64url_decode(sig_b64), f"{header_b64}.{claims_b64}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return self.reply(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
        except Exception as e:  # malformed assertion
            return self.reply(400, {"error": "invalid_grant", "error_description": f"Invalid JWT: {e}"})
        audience = f"http://127.0.0.1:{args.port}/token"
        now = time.time()
        problems = []
        if claims.get("aud") != audience:
            problems.append("aud")
        if "devstorage" not in claims.get("scope", ""):
            problems.append("scope")
        if not claims.get("iss", "").endswith(".iam.gserviceaccount.com"):
            problems.append("iss")
        if claims.get("exp", 0) - claims.get("iat", 0) != 3600 or abs(claims.get("iat", 0) - now) > 300:
            problems.append("iat/exp")
        if problems:
            return self.reply(400, {"error": "invalid_grant", "error_description": "Invalid JWT claims: " + ",".join(problems)})
        self.reply(200, {"access_token": "ya29.sa-" + secrets.token_hex(4), "expires_in": 3599, "token_type": "Bearer"})

    def azure_token(self, tenant):
        form = self.form()
        if form.get("grant_type") != "client_credentials" or form.get("scope") != "https://storage.azure.com/.default":
            return self.reply(400, {"error": "invalid_request", "error_description": "AADSTS900144: grant_type or scope"})
        if form.get("client_id") != args.azure_client_id or form.get("client_secret") != args.azure_client_secret:
            return self.reply(401, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."})
        self.reply(200, {"token_type": "Bearer", "expires_in": 3599, "access_token": f"aad-{tenant}-" + secrets.token_hex(4)})


ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()
