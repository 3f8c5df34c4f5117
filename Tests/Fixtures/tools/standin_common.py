"""Shared pieces of the Dumpling and TiDB Lightning stand-ins: log lines in the tools' text format,
the MySQL-protocol client (the `mariadb` command, password through MYSQL_PWD so it is never in an
argv), the table filter of TiDB's table-filter rules, and the behaviour switches."""
import fnmatch
import json
import os
import re
import signal
import subprocess
import sys
import time

SYSTEM = re.compile(r"^(mysql|sys|test|INFORMATION_SCHEMA|PERFORMANCE_SCHEMA|METRICS_SCHEMA|INSPECTION_SCHEMA)$", re.I)


def log(level, message, **fields):
    now = time.strftime("%Y/%m/%d %H:%M:%S.000 +00:00", time.gmtime())
    extra = "".join(f' [{k}={json.dumps(v) if isinstance(v, str) and (" " in v or not v) else v}]' for k, v in fields.items())
    print(f'[{now}] [{level}] [standin.go:1] ["{message}"]{extra}', flush=True)


def record_argv(tool):
    path = os.environ.get("STANDIN_ARGV_FILE")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"tool": tool, "argv": sys.argv[1:]}) + "\n")


def switches(prefix):
    """FAIL=1 exits 1 with an error line; HANG=N sleeps N seconds first; DIE=1 kills itself mid-way."""
    hang = float(os.environ.get(prefix + "_HANG", "0") or 0)
    if hang:
        time.sleep(hang)
    return os.environ.get(prefix + "_FAIL") == "1", os.environ.get(prefix + "_DIE") == "1"


def die():
    os.kill(os.getpid(), signal.SIGKILL)


class Client:
    def __init__(self, host, port, user, password):
        self.base = ["mariadb", "--no-defaults", "-h", host, "-P", str(port), "-u", user, "--protocol=TCP"]
        self.env = dict(os.environ, MYSQL_PWD=password)

    def query(self, sql, database=None):
        cmd = self.base + ["-N", "-B", "-e", sql] + ([database] if database else [])
        done = subprocess.run(cmd, env=self.env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip())
        return [line.split("\t") for line in done.stdout.splitlines()]

    def run_file(self, path, database=None):
        with open(path) as f:
            done = subprocess.run(self.base + ([database] if database else []), env=self.env, stdin=f, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip())


def compile_filter(rules):
    """TiDB table-filter rules: `db.table` with wildcards, `/regex/` parts, `!` to exclude; the last
    matching rule decides; nothing matches → excluded."""
    compiled = []
    for rule in rules:
        negate = rule.startswith("!")
        body = rule[1:] if negate else rule
        m = re.match(r"^(/.*?/|[^.]+)\.(/.*/|.+)$", body)
        if not m:
            raise ValueError(f"invalid table filter rule {rule!r}")

        def part(p):
            if p.startswith("/") and p.endswith("/"):
                r = re.compile(p[1:-1])
                return lambda s: r.search(s) is not None
            return lambda s, p=p: fnmatch.fnmatchcase(s.lower(), p.lower())

        compiled.append((negate, part(m.group(1)), part(m.group(2))))

    def match(db, table):
        decision = False
        for negate, d, t in compiled:
            if d(db) and t(table):
                decision = not negate
        return decision

    return match
