"""moto's server with one fix to its signature check, run as `python3 moto_server.py -H HOST -p PORT`.

moto rebuilds the request URL through werkzeug before checking a SigV4 signature; werkzeug decodes
percent-escapes such as %2F in the query and %2B in the path, so moto's canonical request differs from
the one every AWS SDK signs (the AWS CLI itself is rejected by moto 5 for `list-objects-v2 --prefix a/b`).
This wrapper hands the signature check the URL exactly as it arrived (werkzeug's RAW_URI).

STS AssumeRoleWithWebIdentity is an unsigned call in AWS (the web identity token is the proof); moto
answers it with a 500 when signature checks are on, so the wrapper lets that one action through
unsigned, as AWS does. Everything else, the checks included, is moto's own."""
import sys
from urllib.parse import urlsplit

from moto.core import authorization
from moto.core.responses import BaseResponse
from moto.server import main

_setup_class = BaseResponse.setup_class


def setup_class(self, request, full_url, headers, use_raw_body=False):
    _setup_class(self, request, full_url, headers, use_raw_body)
    environ = getattr(request, "environ", None) or {}
    raw = environ.get("RAW_URI")
    if raw:
        parts = urlsplit(full_url)
        self._raw_request_uri = f"{parts.scheme}://{parts.netloc}{raw}"


_authenticate = authorization.ActionAuthenticatorMixin._authenticate_and_authorize_action


def authenticate(self, iam_request_cls, resource="*"):
    querystring = getattr(self, "querystring", None) or {}
    if querystring.get("Action") == ["AssumeRoleWithWebIdentity"] and "Authorization" not in self.headers:
        return None
    raw = getattr(self, "_raw_request_uri", None)
    if raw is None:
        return _authenticate(self, iam_request_cls, resource)
    decoded, self.uri = self.uri, raw
    try:
        return _authenticate(self, iam_request_cls, resource)
    finally:
        self.uri = decoded


BaseResponse.setup_class = setup_class
authorization.ActionAuthenticatorMixin._authenticate_and_authorize_action = authenticate

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
