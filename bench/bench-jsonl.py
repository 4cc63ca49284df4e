#!/usr/bin/env python3
"""End-to-end benchmark of imgwd with two jsonl communities on loopback TCP.

Starts imgwd (-f) from the build tree with a private configuration, then
runs bench/jsonl-load (after a short warm-up):

  (a) flat out: COUNT messages written as fast as imgwd takes them, a
      receiver reading in parallel; prints messages/s end to end;
  (b) paced at half the rate (a) reached: prints p50/p99/max latency;
  (c) paced at --also-rate (default 50000/s, half the 100000/s aim), so
      that runs on different machines compare at one fixed load.

Figures only; nothing here fails on timing.  On a 2-core machine the
load generator competes with imgwd for CPU; the CPU seconds of both are
printed so the reader can judge.

    bench-jsonl.py [--imgwd PATH] [--load PATH] [--connectors DIR]
                   [--count N] [--paced-seconds S] [--rate R]
                   [--also-rate R] [--body BYTES]
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def wait_port(port, proc, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("imgwd exited with %d while starting" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("imgwd does not listen on port %d" % port)


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def run_load(args, pid, extra, label):
    cmd = [args.load] + extra + ["-l", label]
    c0 = cpu_seconds(pid)
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.monotonic() - t0
    c1 = cpu_seconds(pid)
    sys.stdout.write(p.stdout)
    if p.stderr:
        sys.stdout.write("".join("  (jsonl-load) " + l for l in p.stderr.splitlines(True)))
    print("[%s] imgwd CPU %.2f s over %.2f s wall (%.0f%% of one core), RSS %d KiB"
          % (label, c1 - c0, wall, 100.0 * (c1 - c0) / wall if wall else 0.0,
             rss_kb(pid)))
    sys.stdout.flush()
    if p.returncode != 0:
        raise RuntimeError("jsonl-load exited with %d" % p.returncode)
    return p.stdout


def parse_rate(out):
    for line in out.splitlines():
        if "msg/s end to end" in line:
            return float(line.split(" msg/s")[0].rsplit(" ", 1)[1])
    return 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--imgwd", default=os.environ.get("IMGWD", "./imgwd"))
    ap.add_argument("--load", default=os.environ.get("JSONL_LOAD", "./bench/jsonl-load"))
    ap.add_argument("--connectors", default=os.environ.get("IMGW_CONNECTORS",
                                                           os.path.abspath("connectors")))
    ap.add_argument("--count", type=int, default=1000000,
                    help="messages in the flat-out run (default 1000000)")
    ap.add_argument("--paced-seconds", type=float, default=10.0,
                    help="length of the paced run (default 10)")
    ap.add_argument("--rate", type=int, default=0,
                    help="rate of the paced run (default: half of the flat-out rate)")
    ap.add_argument("--also-rate", type=int, default=50000,
                    help="a second paced run at this rate (default 50000; 0: none)")
    ap.add_argument("--body", type=int, default=64, help="body bytes (default 64)")
    ap.add_argument("--store", default="none",
                    help="none (dsn = none: no policies, no audit; the "
                    "default), sqlite (the default SQLite file in a scratch "
                    "folder), or an ODBC connection string whose schema "
                    "`imgwctl db init` made")
    ap.add_argument("--policies", type=int, default=0,
                    help="with a store: this many rules written with imgwctl "
                    "policy (block-user, block-domain and wildcards for "
                    "partner and '*'; none match the traffic) and partner's "
                    "audit_level metadata")
    ap.add_argument("--imgwctl", default=os.environ.get("IMGWCTL", "./imgwctl"))
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="imgw-bench-")
    p1, p2 = free_port(), free_port()
    conf = os.path.join(tmp, "imgwd.conf")
    with open(conf, "w") as f:
        f.write("""[gateway]
node = bench
connectors = %s
control = %s
log-level = warning
queue-size = 2000000

[community corp]
connector = jsonl
local = yes
domains = corp.example
listen = tcp:127.0.0.1:%d

[community partner]
connector = jsonl
domains = partner.example
listen = tcp:127.0.0.1:%d
max-output = 67108864
""" % (args.connectors, os.path.join(tmp, "imgwd.sock"), p1, p2))
        f.write("\n[store]\nstate = %s\n" % os.path.join(tmp, "state"))
        if args.store != "sqlite":
            f.write("dsn = %s\n" % args.store)
    if args.store != "none":
        if args.store != "sqlite":
            # an audit table left by an earlier run would only slow inserts
            subprocess.run([args.imgwctl, "-c", conf, "db", "init"],
                           capture_output=True)
        else:
            os.makedirs(os.path.join(tmp, "state"), exist_ok=True)
            subprocess.run([args.imgwctl, "-c", conf, "db", "init"],
                           check=True, capture_output=True)
        pol = [("set", "partner", "audit_level", "metadata")]
        for i in range(args.policies):
            comm = "*" if i % 3 == 0 else "partner"
            if i % 10 < 6:
                pol.append(("add", comm, "block-user",
                            "user%d@spam.example" % i))
            elif i % 10 < 9:
                pol.append(("add", comm, "block-domain", "dom%d.example" % i))
            else:
                pol.append(("add", comm, "block-domain",
                            "*.wild%d.example" % i))
        for cmd in pol:
            subprocess.run([args.imgwctl, "-c", conf, "policy"] + list(cmd),
                           check=True, capture_output=True)

    log = open(os.path.join(tmp, "imgwd.log"), "wb")
    proc = subprocess.Popen([args.imgwd, "-f", "-c", conf], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=log)
    ok = False
    try:
        wait_port(p1, proc)
        wait_port(p2, proc)
        common = ["-s", "tcp:127.0.0.1:%d" % p1, "-r", "tcp:127.0.0.1:%d" % p2,
                  "-b", str(args.body)]
        print("== bench-jsonl: imgwd with two jsonl communities on loopback TCP, "
              "%d cores; store %s, %d policy rules ==" % (
                  os.cpu_count(), args.store if len(args.store) < 20 else
                  args.store.split(";")[0], args.policies))
        # a short warm-up so that the first run does not pay for page faults
        run_load(args, proc.pid, common + ["-n", "20000"], "warm-up")
        out = run_load(args, proc.pid, common + ["-n", str(args.count)], "flat-out")
        rate = args.rate or int(parse_rate(out) / 2)
        if args.paced_seconds <= 0:
            ok = True
            return 0
        if rate <= 0:
            raise RuntimeError("no rate from the flat-out run")
        n = max(1000, int(rate * args.paced_seconds))
        run_load(args, proc.pid, common + ["-n", str(n), "-R", str(rate)],
                 "paced-half")
        if args.also_rate > 0:
            n = max(1000, int(args.also_rate * args.paced_seconds))
            run_load(args, proc.pid, common + ["-n", str(n), "-R", str(args.also_rate)],
                     "paced-%d" % args.also_rate)
        ok = True
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        if ok:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("imgwd log kept in %s" % os.path.join(tmp, "imgwd.log"))
            with open(os.path.join(tmp, "imgwd.log"), "rb") as f:
                sys.stdout.write(f.read()[-4000:].decode("utf-8", "replace"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
