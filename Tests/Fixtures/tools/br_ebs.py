"""The EBS volume-snapshot commands of the BR stand-in, following BR's command-line contract:

- `br operator pause-gc-and-schedulers --pd=…`: logs "Schedulers are paused.", "GC is paused." and
  "All ready.", then holds the pause until SIGTERM / SIGINT, when it resumes both and exits 0.
- `br backup full --type=aws-ebs --volume-file=F --operator-paused-gc-and-scheduler=true --pd=… --storage=…`:
  reads the cluster metadata F, creates one EC2 snapshot per volume (through boto3, so against whatever
  AWS_ENDPOINT_URL names), waits for them, writes `backupmeta` (BR's EBS JSON) to the storage, logs
  "EBS backup success" with resolved_ts. When it fails after creating snapshots it deletes them, as BR does.
- Progress, as BR's progressFileWriterRoutine (`br/pkg/task/common.go`) writes it in volume-snapshot mode: the percentage with two
  decimals in `progress.txt` of the working directory (`--progress-file`), removed when the command ends; no
  progress lines on stdout.

Test switches (environment):
- BR_STANDIN_GC_LOG=path: one JSON line per pause and resume ({"event", "time", "pid"}), so a test can check
  that the pause never outlives the backup; with it, a backup refuses to run unless the pause is held.
- BR_STANDIN_INIT_FAIL=1: pause-gc-and-schedulers fails before pausing.
- BR_STANDIN_INIT_EXIT_AFTER=N: pause-gc-and-schedulers resumes and exits 0 on its own after N seconds.
- BR_STANDIN_EBS_FAIL_AFTER=N: the backup fails after creating N snapshots (deleting them first).
- BR_STANDIN_EBS_HANG=N: the backup sleeps N seconds after the snapshots are created, before backupmeta.
- BR_STANDIN_EBS_WAIT=N: the backup sleeps N seconds before the first snapshot."""
import json
import os
import signal
import sys
import time


def gc_event(event):
    path = os.environ.get("BR_STANDIN_GC_LOG")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"event": event, "time": time.time(), "pid": os.getpid()}) + "\n")


def gc_paused_now():
    path = os.environ.get("BR_STANDIN_GC_LOG")
    if not path:
        return True
    try:
        with open(path) as f:
            events = [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return False
    paused = {e["pid"] for e in events if e["event"] == "paused"}
    resumed = {e["pid"] for e in events if e["event"] == "resumed"}
    return bool(paused - resumed)


def pause_gc_and_schedulers(log, flags):
    if "pd" not in flags:
        print("Error: flag --pd is required", file=sys.stderr)
        return 1
    if os.environ.get("BR_STANDIN_INIT_FAIL") == "1":
        log("ERROR", "failed to pause GC", error="[BR:PD:ErrPDInvalidResponse]cannot connect to PD")
        print("Error: [BR:PD:ErrPDInvalidResponse]cannot connect to PD", file=sys.stderr)
        return 1
    stop = {"signal": None}

    def handler(signum, _frame):
        stop["signal"] = signum

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    gc_event("paused")
    log("INFO", "Schedulers are paused.")
    log("INFO", "GC is paused.")
    log("INFO", "All ready.")
    limit = float(os.environ.get("BR_STANDIN_INIT_EXIT_AFTER", "0") or 0)
    started = time.time()
    while stop["signal"] is None and not (limit and time.time() - started >= limit):
        time.sleep(0.05)
    log("INFO", "Resuming GC and schedulers.", reason="signal" if stop["signal"] else "exit")
    gc_event("resumed")
    return 0


class ProgressFile:
    """BR's progress file: `%.2f` of done / total, rewritten as work is done, removed at the end."""

    def __init__(self, flags, total):
        self.path = flags.get("progress-file") or "progress.txt"
        self.total = max(total, 1)
        self.step(0)

    def step(self, done):
        with open(self.path, "w") as f:
            f.write("%.2f" % (100.0 * done / self.total))
        # BR rewrites it every 500 ms; a pause lets a reader polling each second see it move.
        time.sleep(float(os.environ.get("BR_STANDIN_PROGRESS_PAUSE", "0.3") or 0))

    def close(self):
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass


def ec2_client(flags):
    import boto3
    from botocore.config import Config
    region = os.environ.get("AWS_REGION") or flags.get("s3.region") or "us-east-1"
    return boto3.client("ec2", region_name=region, config=Config(retries={"mode": "standard", "max_attempts": 8}))


def backup_ebs(log, flags, storage):
    if flags.get("operator-paused-gc-and-scheduler") == "true" and not gc_paused_now():
        log("ERROR", "GC is not paused by the operator", error="[BR:Common:ErrInvalidArgument]gc and schedulers are not paused")
        print("Error: [BR:Common:ErrInvalidArgument]gc and schedulers are not paused", file=sys.stderr)
        return 1
    with open(flags["volume-file"]) as f:
        meta = json.load(f)
    ec2 = ec2_client(flags)
    wait = float(os.environ.get("BR_STANDIN_EBS_WAIT", "0") or 0)
    if wait:
        time.sleep(wait)
        if flags.get("operator-paused-gc-and-scheduler") == "true" and not gc_paused_now():
            log("ERROR", "GC is not paused by the operator", error="[BR:Common:ErrInvalidArgument]gc and schedulers are not paused")
            print("Error: [BR:Common:ErrInvalidArgument]gc and schedulers are not paused", file=sys.stderr)
            return 1
    resolved_ts = int(time.time() * 1000) << 18
    fail_after = int(os.environ.get("BR_STANDIN_EBS_FAIL_AFTER", "-1") or -1)
    created = []
    volumes = [v for store in meta["tikv"]["stores"] for v in store["volumes"]]
    progress_file = ProgressFile(flags, len(volumes))
    try:
        return _backup_volumes(log, flags, storage, meta, ec2, volumes, created, fail_after, resolved_ts, progress_file)
    finally:
        progress_file.close()


def _backup_volumes(log, flags, storage, meta, ec2, volumes, created, fail_after, resolved_ts, progress_file):
    for i, volume in enumerate(volumes):
        if i == fail_after:
            for snapshot in created:
                ec2.delete_snapshot(SnapshotId=snapshot)
            log("ERROR", "failed to create snapshot", volume_id=volume["volume_id"], error="[BR:Common:ErrUnknown]SnapshotCreationPerVolumeRateExceeded")
            print("Error: failed to create snapshot of " + volume["volume_id"], file=sys.stderr)
            return 1
        answer = ec2.create_snapshot(VolumeId=volume["volume_id"], Description=f"TiDB BR snapshot of store volume {volume['volume_id']}",
                                     TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "TiDBCluster-BR-Snapshot", "Value": "new"}]}])
        volume["snapshot_id"] = answer["SnapshotId"]
        described = ec2.describe_volumes(VolumeIds=[volume["volume_id"]])["Volumes"][0]
        volume["volume_az"] = described["AvailabilityZone"]
        created.append(answer["SnapshotId"])
        log("INFO", "snapshot created", volume_id=volume["volume_id"], snapshot_id=answer["SnapshotId"])
        progress_file.step(i + 1)
    hang = float(os.environ.get("BR_STANDIN_EBS_HANG", "0") or 0)
    if hang:
        time.sleep(hang)
    states = ec2.describe_snapshots(SnapshotIds=created)["Snapshots"] if created else []
    log("INFO", "all snapshots finished", count=len(states), completed=sum(1 for s in states if s["State"] == "completed"))
    meta["cluster_info"] = {"cluster_version": "v8.5.0", "full_backup_type": "aws-ebs", "resolved_ts": resolved_ts,
                            "replicas": {"tikv": meta["tikv"]["replicas"], "pd": meta["pd"]["replicas"], "tidb": meta["tidb"]["replicas"]}}
    meta["region"] = ec2.meta.region_name
    storage.write("backupmeta", json.dumps(meta).encode())
    log("INFO", "EBS backup success", resolved_ts=resolved_ts, snapshots=len(created))
    return 0


def restore_ebs(log, flags, storage):
    """`br restore full --type=aws-ebs`: with --prepare, one new volume per snapshot of backupmeta (in
    --target-az, else the snapshot's zone), their ids written to --output-file as BR's restore metadata,
    then "EBS restore success" with the size and the backup's resolved_ts (`br/pkg/task/restore_ebs_meta.go`: only this
    phase prints it); without, the data step, which ends with "Full Restore success summary" carrying
    `resolve-ts` (`br/pkg/task/restore_data.go`). Both write the progress file.

    Switches: BR_STANDIN_EBS_RESTORE_FAIL_AFTER=N fails the prepare step after creating N volumes (the
    output file lists them, as far as it got); BR_STANDIN_EBS_DATA_FAIL=1 fails the data step."""
    try:
        meta = json.loads(storage.read("backupmeta"))
    except Exception as e:  # noqa: BLE001
        log("ERROR", "failed to read backupmeta", error=str(e))
        print(f"Error: failed to read backupmeta: {e}", file=sys.stderr)
        return 1
    resolved_ts = meta.get("cluster_info", {}).get("resolved_ts", 0)
    if flags.get("prepare") is None:
        progress_file = ProgressFile(flags, 3)
        try:
            for i in range(3):
                progress_file.step(i + 1)
        finally:
            progress_file.close()
        if os.environ.get("BR_STANDIN_EBS_DATA_FAIL") == "1":
            log("ERROR", "failed to recover data", error="[BR:Restore:ErrRestoreRegionRecoverFailed]region recovery failed")
            print("Error: region recovery failed", file=sys.stderr)
            return 1
        log("INFO", "Full Restore success summary", **{"total-take": "1.2s", "resolve-ts": resolved_ts})
        return 0
    output = flags.get("output-file")
    if not output:
        print("Error: --output-file is required with --prepare", file=sys.stderr)
        return 1
    ec2 = ec2_client(flags)
    fail_after = int(os.environ.get("BR_STANDIN_EBS_RESTORE_FAIL_AFTER", "-1") or -1)
    volumes = [v for store in meta["tikv"]["stores"] for v in store["volumes"]]
    progress_file = ProgressFile(flags, len(volumes))
    try:
        return _restore_volumes(log, flags, meta, ec2, volumes, fail_after, output, resolved_ts, progress_file)
    finally:
        progress_file.close()


def _restore_volumes(log, flags, meta, ec2, volumes, fail_after, output, resolved_ts, progress_file):
    made = 0
    for i, volume in enumerate(volumes):
        if i == fail_after:
            with open(output, "w") as f:
                json.dump(meta, f)
            log("ERROR", "failed to create volume", snapshot_id=volume["snapshot_id"], error="[BR:Common:ErrUnknown]VolumeLimitExceeded")
            print("Error: failed to create volume from " + volume["snapshot_id"], file=sys.stderr)
            return 1
        zone = flags.get("target-az") or volume.get("volume_az") or (ec2.meta.region_name + "a")
        answer = ec2.create_volume(SnapshotId=volume["snapshot_id"], AvailabilityZone=zone, VolumeType="gp3",
                                   TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "TiDBCluster-BR", "Value": "new"}]}])
        volume["restore_volume_id"] = answer["VolumeId"]
        volume["volume_az"] = zone
        made += 1
        log("INFO", "volume created", snapshot_id=volume["snapshot_id"], volume_id=answer["VolumeId"])
        progress_file.step(made)
    with open(output, "w") as f:
        json.dump(meta, f)
    size = sum(int(v.get("size", 0) or 0) for v in volumes)
    log("INFO", "EBS restore success", size=size, resolved_ts=resolved_ts)
    return 0
