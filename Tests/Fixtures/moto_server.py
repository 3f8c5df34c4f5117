"""moto's server (the version pinned in Tests/requirements.txt), run as `python3 moto_server.py -H HOST -p PORT`.

One difference from `moto_server`: STS AssumeRoleWithWebIdentity is an unsigned call in AWS (the web
identity token is the proof), but moto answers an unsigned one with an error page when signature
checks are on (INITIAL_NO_AUTH_ACTION_COUNT). This wrapper lets that one action through unsigned, as
AWS does; every other request, its SigV4 check included, is moto's own.

Two: in AWS every EC2 snapshot can be read through the EBS direct APIs (ListSnapshotBlocks,
ListChangedBlocks); moto only knows snapshots started through the EBS direct API itself. This wrapper
registers each snapshot that EC2 CreateSnapshot makes with moto's EBS backend. moto's volumes hold no
data, so the blocks a snapshot holds are what the volume's tag `moto-test:blocks` says at that moment
(`<index>:<content>,…`, e.g. `0:a,1:b`); without the tag the snapshot has no blocks.

Three: moto checks the signature of an EBS direct GET as if its query parameters were a form body
(it hashes them as the payload), so even boto3's calls are refused. The canonical request of a GET has
an empty payload; this wrapper verifies EBS GETs that way. The check itself stays moto's."""
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

from moto.iam import access_control

_create_aws_request = access_control.IAMRequestBase._create_aws_request


def create_aws_request(self):
    if self._service == "ebs" and self._method == "GET":
        saved = self._data
        self._data = b""
        try:
            return _create_aws_request(self)
        finally:
            self._data = saved
    return _create_aws_request(self)


access_control.IAMRequestBase._create_aws_request = create_aws_request

from moto.ebs.models import EBSSnapshot, ebs_backends
from moto.ec2.models import elastic_block_store

_create_snapshot = elastic_block_store.EBSBackend.create_snapshot


def create_snapshot(self, volume_id, description, owner_id=None, from_ami=None):
    snapshot = _create_snapshot(self, volume_id, description, owner_id=owner_id, from_ami=from_ami)
    ebs = ebs_backends[self.account_id][self.region_name]
    registered = EBSSnapshot(self.account_id, snapshot)
    registered.status = "completed"
    registered.block_size = 524288
    spec = self.tags.get(volume_id, {}).get("moto-test:blocks", "")
    for entry in filter(None, spec.split(",")):
        index, _, content = entry.partition(":")
        registered.put_block(int(index), content.encode(), None, None, None)
    ebs.snapshots[snapshot.id] = registered
    return snapshot


elastic_block_store.EBSBackend.create_snapshot = create_snapshot

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
