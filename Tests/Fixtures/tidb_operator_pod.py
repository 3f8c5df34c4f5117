#!/usr/bin/env python3
"""A pod of TiDB Operator's backup-manager image, as it was running when its controllers were switched
off: it runs the tool, then reports the way TiDB Operator's backup-manager reports (its status updaters,
pkg/controller/backup_status_updater.go and restore_status_updater.go in pingcap/tidb-operator, read the
object and write it back whole, status included, with an Update of the main resource; its CRDs have no
status subresource, so that is how its status was ever written) and exits 0.

After the takeover the CRDs have a status subresource, so the API server answers that Update with 200
and keeps the old status: what this pod reports never arrives, as with a real in-flight pod.

    tidb_operator_pod.py backup  NAMESPACE NAME STORAGE_URL SECONDS   br backup full, then Complete
    tidb_operator_pod.py restore NAMESPACE NAME STORAGE_URL SECONDS   br restore full, then Complete
    tidb_operator_pod.py clean   NAMESPACE NAME DIRECTORY   SECONDS   delete the data, then Clean
    tidb_operator_pod.py hold    NAMESPACE NAME -           SECONDS   just runs (a pod left to TiDB Operator)

The API is reached with kubectl and the KUBECONFIG the job runner gives every pod.
"""
import json
import os
import shutil
import subprocess
import sys
import time


def kubectl(*args, stdin=None):
    return subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True, check=True).stdout


def report(kind, namespace, name, condition, extra):
    """GET the object, set the phase, append the condition and the fields, PUT it back whole."""
    obj = json.loads(kubectl("get", kind, name, "-n", namespace, "-o", "json"))
    status = obj.setdefault("status", {})
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    status["phase"] = condition
    status.setdefault("conditions", []).append({"type": condition, "status": "True", "lastTransitionTime": now})
    status.update(extra)
    status["timeCompleted"] = now
    out = kubectl("replace", "-f", "-", "-o", "json", stdin=json.dumps(obj))
    print(f"reported {condition} on {kind} {namespace}/{name} with a whole-object update; the server kept phase "
          f"{json.loads(out).get('status', {}).get('phase')!r}", flush=True)


def main(argv):
    mode, namespace, name, target, seconds = argv[1], argv[2], argv[3], argv[4], float(argv[5])
    time.sleep(seconds)
    if mode == "hold":
        return 0
    if mode in ("backup", "restore"):
        br = subprocess.run(["br", mode, "full", "--pd=127.0.0.1:2379", f"--storage={target}"])
        if br.returncode != 0:
            return br.returncode
        report(mode, namespace, name, "Complete", {"commitTs": "1"} if mode == "backup" else {})
        return 0
    if mode == "clean":
        shutil.rmtree(target, ignore_errors=True)
        report("backup", namespace, name, "Clean", {})
        return 0
    print(f"unknown mode {mode}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
