"""The log backup commands of the BR stand-in, following BR's command-line contract:

- `br log start --task-name=T --pd=… --storage=… [--start-ts=N]`: writes `backupmeta` (kvproto BackupMeta
  with start_version) and a first log file `v1/<date>/<ts>.log` under the storage; fails if the task runs.
- `br log pause|resume|stop --task-name=T --pd=… [--storage=…]`: changes the task's state; pause needs a
  running task, resume a paused one, stop an existing one.
- `br log truncate --until=N --storage=…`: deletes the log files older than N and records N in
  `v1/truncate-until`.
The task's state is kept in `standin-log-tasks/<task>.json` under the storage, and, as BR does
(`br/pkg/streamhelper/models.go` for the keys, `client.go` for PutTask and PauseV2), in PD's etcd at --pd (when one answers there): `/tidb/br-stream/info/<task>` (the
task info, protobuf `StreamBackupTaskInfo`: start_ts 2, name 4, table_filter 5), `ranges/<task>/<start key>`
(one range), `pause/<task>` (BR's PauseV2 JSON with severity REGULAR_OPERATION, no payload); stop deletes
every key of the task (info, ranges, checkpoint/<task>/…, pause, last-error, storage-checkpoint). BR writes
no checkpoint: the advancer writes `checkpoint/<task>/central_global` (8 bytes, big-endian), which tests play.
Exit status 0 on success, 1 with an [ERROR] line and an `Error:` line on stderr on failure.

Switch: BR_STANDIN_LOG_FAIL=<sub-command> fails that sub-command."""
import json
import struct
import os
import sys
import time


def etcd(flags, action, key, value=None, prefix=False):
    """PUT or DELETE one key (or, with prefix, every key under it) through etcd's v3 JSON gateway at --pd;
    nothing when no etcd answers."""
    import base64
    import urllib.request
    body = {"key": base64.b64encode(key.encode()).decode()}
    if value is not None:
        body["value"] = base64.b64encode(value).decode()
    if prefix:
        end = key.encode()[:-1] + bytes([key.encode()[-1] + 1])
        body["range_end"] = base64.b64encode(end).decode()
    for endpoint in flags.get("pd", "").split(","):
        endpoint = endpoint if endpoint.startswith("http") else "http://" + endpoint
        request = urllib.request.Request(endpoint.rstrip("/") + ("/v3/kv/put" if action == "put" else "/v3/kv/deleterange"),
                                         data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(request, timeout=2).read()
            return True
        except Exception:  # noqa: BLE001
            continue
    return False


def etcd_get(flags, key):
    """(answered, value or None) for one key at --pd."""
    import base64
    import urllib.request
    body = json.dumps({"key": base64.b64encode(key.encode()).decode()}).encode()
    for endpoint in flags.get("pd", "").split(","):
        endpoint = endpoint if endpoint.startswith("http") else "http://" + endpoint
        request = urllib.request.Request(endpoint.rstrip("/") + "/v3/kv/range", data=body, headers={"Content-Type": "application/json"})
        try:
            answer = json.loads(urllib.request.urlopen(request, timeout=2).read())
        except Exception:  # noqa: BLE001
            continue
        kvs = answer.get("kvs") or []
        return True, (base64.b64decode(kvs[0].get("value", "")) if kvs else None)
    return False, None


def _proto_varint(v):
    out = b""
    while v >= 0x80:
        out += bytes([(v & 0x7F) | 0x80])
        v >>= 7
    return out + bytes([v])


def task_info(task, start_ts):
    """kvproto backup.StreamBackupTaskInfo (proto/brpb.proto): start_ts (2), name (4), table_filter (5), as PutTask in
    br/pkg/streamhelper/client.go writes it."""
    name, table_filter = task.encode(), b"*.*"
    return (_proto_varint(2 << 3) + _proto_varint(start_ts)
            + _proto_varint(4 << 3 | 2) + _proto_varint(len(name)) + name
            + _proto_varint(5 << 3 | 2) + _proto_varint(len(table_filter)) + table_filter)


def pause_v2():
    """What `br log pause` puts at pause/<task> (NewLocalPauseV2 in br/pkg/streamhelper/client.go): no payload."""
    return json.dumps({"severity": "REGULAR_OPERATION", "operation_hostname": os.uname().nodename, "operation_pid": os.getpid(),
                       "operation_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "payload_type": "", "payload": None}).encode()


def fail(log, message):
    log("ERROR", "log backup command failed", error=message)
    print("Error: " + message, file=sys.stderr)
    return 1


def task_key(task):
    return f"standin-log-tasks/{task}.json"


def read_task(storage, task):
    try:
        return json.loads(storage.read(task_key(task)))
    except Exception:  # noqa: BLE001
        return None


def run(log, sub, flags, storage, backupmeta):
    if os.environ.get("BR_STANDIN_LOG_FAIL") == sub:
        return fail(log, f"[BR:Stream:ErrStreamLogTaskExist]injected failure of log {sub}")
    task = flags.get("task-name", "")
    if sub == "truncate":
        until = int(flags.get("until", "0") or 0)
        if until <= 0:
            return fail(log, "--until is required")
        removed = 0
        for name in storage.list("v1/"):
            base = name.rsplit("/", 1)[-1]
            if base.endswith(".log") and base[:-4].isdigit() and int(base[:-4]) < until:
                storage.delete(name)
                removed += 1
        storage.write("v1/truncate-until", str(until).encode())
        log("INFO", "truncate log backup done", until=until, removed_files=removed)
        return 0
    if not task:
        return fail(log, "--task-name is required")
    state = read_task(storage, task)
    # As BR does, believe PD's etcd about the task when it answers: TiKV pauses a task on errors.
    answered, info = etcd_get(flags, f"/tidb/br-stream/info/{task}")
    if answered and state:
        if info is None:
            state["state"] = "stopped"
        else:
            state["state"] = "paused" if etcd_get(flags, f"/tidb/br-stream/pause/{task}")[1] is not None else "running"
    now_ts = int(time.time() * 1000) << 18
    if sub == "start":
        if state and state["state"] != "stopped":
            return fail(log, f"[BR:Stream:ErrStreamLogTaskExist]stream task {task} already exists")
        start_ts = int(flags.get("start-ts") or now_ts)
        storage.write("backupmeta", backupmeta([], start_ts, with_size=False))
        storage.write(f"v1/{time.strftime('%Y%m%d', time.gmtime())}/{start_ts}.log", b"standin log data")
        storage.write(task_key(task), json.dumps({"state": "running", "start_ts": start_ts}).encode())
        etcd(flags, "put", f"/tidb/br-stream/info/{task}", task_info(task, start_ts))
        etcd(flags, "put", f"/tidb/br-stream/ranges/{task}/t", b"u")
        etcd(flags, "delete", f"/tidb/br-stream/pause/{task}")
        log("INFO", "log backup task started", task=task, start_ts=start_ts)
        return 0
    if not state or state["state"] == "stopped":
        return fail(log, f"[BR:Stream:ErrStreamLogTaskNotFound]stream task {task} not found")
    wanted = {"pause": ("running", "paused"), "resume": ("paused", "running"), "stop": (None, "stopped")}[sub]
    if wanted[0] and state["state"] != wanted[0]:
        return fail(log, f"stream task {task} is {state['state']}, cannot {sub}")
    state["state"] = wanted[1]
    storage.write(task_key(task), json.dumps(state).encode())
    if sub == "pause":
        etcd(flags, "put", f"/tidb/br-stream/pause/{task}", pause_v2())
    elif sub == "resume":
        etcd(flags, "delete", f"/tidb/br-stream/pause/{task}")
    else:
        for kind in ("info", "pause"):
            etcd(flags, "delete", f"/tidb/br-stream/{kind}/{task}")
        for kind in ("ranges", "checkpoint", "last-error", "storage-checkpoint"):
            etcd(flags, "delete", f"/tidb/br-stream/{kind}/{task}/", prefix=True)
    if wanted[1] == "running":
        storage.write(f"v1/{time.strftime('%Y%m%d', time.gmtime())}/{now_ts}.log", b"standin log data")
    log("INFO", f"log backup task {sub} done", task=task)
    return 0


def meta_versions(data):
    """(start_version, end_version) of a kvproto BackupMeta (fields 5 and 6)."""
    i, out = 0, {}
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
            out[number] = value
        elif wire == 2:
            length, i = _varint(data, i)
            i += length
        else:
            raise ValueError("unexpected wire type")
    return out.get(5, 0), out.get(6, 0)


def _varint(data, i):
    shift = value = 0
    while True:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def restore_point(log, flags, storage, full_storage):
    """`br restore point --storage=<log> --restored-ts=N (--full-backup-storage=<full> | --start-ts=S)`:
    the log must start at or before the full backup (or S) and must not be truncated after it; N must
    not be before that nor after the largest global checkpoint TiKV flushed. Prints BR's progress lines
    and "restore log success"."""
    restored = int(flags.get("restored-ts", "0") or 0)
    log_start, _ = meta_versions(storage.read("backupmeta"))
    try:
        truncated = int(storage.read("v1/truncate-until").decode() or 0)
    except Exception:  # noqa: BLE001
        truncated = 0
    if full_storage is not None:
        _, base = meta_versions(full_storage.read("backupmeta"))
    else:
        base = int(flags.get("start-ts", "0") or 0)
    if base < log_start:
        return fail(log, f"[BR:Stream:ErrStreamLogNotContinuous]the log backup starts at {log_start}, after the full backup at {base}")
    if truncated > base:
        return fail(log, f"[BR:Stream:ErrStreamLogTruncated]the log backup was truncated until {truncated}, after the full backup at {base}")
    if restored < base:
        return fail(log, f"[BR:Common:ErrInvalidArgument]restored ts {restored} is before the full backup at {base}")
    # As BR's getLogInfo, getGlobalCheckpointFromStorage and checkLogRange (pingcap/tidb
    # br/pkg/task/stream.go): the log holds up to the largest global checkpoint TiKV flushed to
    # v1/global_checkpoint/<store>.ts (8 bytes, little-endian), never less than where it starts.
    log_max = max(log_start, truncated)
    for name in storage.list("v1/global_checkpoint/"):
        if name.endswith(".ts"):
            data = storage.read(name)
            if len(data) >= 8:
                log_max = max(log_max, struct.unpack("<Q", data[:8])[0])
    if restored > log_max:
        return fail(log, f"[BR:Common:ErrInvalidArgument]restore log from {base} to {restored},  but the current existed log from "
                         f"{max(log_start, truncated)} to {log_max}")
    for p in (0, 50, 100):
        print(f'[{time.strftime("%Y/%m/%d %H:%M:%S.000 +00:00", time.gmtime())}] [INFO] [progress.go:1] [progress] '
              f'[step="Restore Log"] [progress={p}%]', flush=True)
    log("INFO", "restore log success", restored_ts=restored, full_backup_ts=base, log_start_ts=log_start)
    return 0
