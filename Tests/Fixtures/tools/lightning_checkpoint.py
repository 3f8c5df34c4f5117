"""The checkpoint file of the TiDB Lightning stand-ins. Real Lightning's `file` driver writes a
protobuf; the stand-ins write JSON at the same path (`[checkpoint] dsn`), with the same meaning:
per table a status (`pending`, `finished`, or an error recorded with the step that failed) and the
data files (chunks) already imported, so a rerun skips finished work, and refuses to start while a
table's checkpoint holds an error until `tidb-lightning-ctl` clears it."""
import json
import os


def settings(config, data_dir):
    cp = config.get("checkpoint", {})
    enabled = cp.get("enable", True)
    driver = cp.get("driver", "file")
    if driver != "file":
        raise RuntimeError(f"the stand-ins keep checkpoints with the file driver only, not {driver}")
    path = cp.get("dsn") or "/tmp/tidb_lightning_checkpoint.pb"
    return enabled, path, cp.get("keep-after-success", False)


def load(path):
    if not path or not os.path.exists(path):
        return {"tables": {}}
    with open(path) as f:
        return json.load(f)


def save(path, state):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def failed_tables(state):
    return sorted(name for name, t in state["tables"].items() if t.get("status") == "failed")
