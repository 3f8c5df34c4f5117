"""moto's server (the version pinned in Tests/requirements.txt), run as `python3 moto_server.py -H HOST -p PORT`.

One difference from `moto_server`: STS AssumeRoleWithWebIdentity is an unsigned call in AWS (the web
identity token is the proof), but moto answers an unsigned one with an error page when signature
checks are on (INITIAL_NO_AUTH_ACTION_COUNT). This wrapper lets that one action through unsigned, as
AWS does; every other request, its SigV4 check included, is moto's own."""
import sys

from moto.core import authorization
from moto.server import main

_authenticate = authorization.ActionAuthenticatorMixin._authenticate_and_authorize_action


def authenticate(self, iam_request_cls, resource="*"):
    querystring = getattr(self, "querystring", None) or {}
    if querystring.get("Action") == ["AssumeRoleWithWebIdentity"] and "Authorization" not in self.headers:
        return None
    return _authenticate(self, iam_request_cls, resource)


authorization.ActionAuthenticatorMixin._authenticate_and_authorize_action = authenticate

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
