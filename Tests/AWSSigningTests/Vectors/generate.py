"""Writes sigv4.json: SigV4 results computed by botocore, an independent implementation, for the
requests below at a fixed time. Run with: python3 generate.py > sigv4.json"""
import datetime, json
import botocore.auth as auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

FIXED = datetime.datetime(2015, 8, 30, 12, 36, 0)
auth.get_current_datetime = lambda *a, **k: FIXED

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
cases = [
    # name, service, region, method, url, headers, body, session token
    ("get-vanilla", "service", "us-east-1", "GET", "https://example.amazonaws.com/", {}, b"", None),
    ("get-query-sorted", "service", "us-east-1", "GET", "https://example.amazonaws.com/?Param2=value2&Param1=value1", {}, b"", None),
    ("get-space-path", "service", "us-east-1", "GET", "https://example.amazonaws.com/example%20space/", {}, b"", None),
    ("post-header", "service", "us-east-1", "POST", "https://example.amazonaws.com/", {"My-Header1": "  value1   with  spaces "}, b"", None),
    ("s3-put", "s3", "us-west-2", "PUT", "https://bucket.s3.us-west-2.amazonaws.com/backups/my%20folder/backupmeta",
     {"Content-Type": "application/octet-stream"}, b"hello backup", None),
    # Query values are sent canonically encoded (`/` as %2F): botocore signs the query as written in the
    # URL, the signer re-encodes it, and both agree only on canonical input, which our clients send.
    ("s3-list-session", "s3", "us-west-1", "GET", "http://127.0.0.1:5000/my-bucket?list-type=2&prefix=my-folder%2F&max-keys=1000",
     {}, b"", "FwoGZXIvYXdzEXAMPLETOKEN"),
    ("sts-post", "sts", "us-east-1", "POST", "https://sts.amazonaws.com/", {"Content-Type": "application/x-www-form-urlencoded"},
     b"Action=AssumeRoleWithWebIdentity&Version=2011-06-15", None),
]
out = []
for name, service, region, method, url, headers, body, token in cases:
    creds = Credentials("AKIDEXAMPLE", SECRET, token)
    signer = (auth.S3SigV4Auth if service == "s3" else auth.SigV4Auth)(creds, service, region)
    request = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
    signer.add_auth(request)
    out.append({
        "name": name, "service": service, "region": region, "method": method, "url": url,
        "headers": headers, "body": body.decode(), "sessionToken": token,
        "authorization": request.headers["Authorization"],
        "payloadSHA256": request.headers.get("X-Amz-Content-SHA256"),
    })
    # A presigned URL for the same request (S3 style, GET only).
    if service == "s3" and method == "GET":
        q = auth.S3SigV4QueryAuth(creds, service, region, expires=3600)
        r = AWSRequest(method="GET", url=url, headers={}, data=b"")
        q.add_auth(r)
        out[-1]["presigned"] = r.url
print(json.dumps(out, indent=2))
