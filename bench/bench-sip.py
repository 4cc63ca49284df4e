#!/usr/bin/env python3
"""bench-sip: sipp MESSAGE load over UDP into imgwd, to a jsonl sink.

    bench/bench-sip.py [--seconds N] [--rates R1,R2,...]

Starts imgwd (from $IMGWD, else ./imgwd) with a jsonl community whose one
client binds "*" and reads everything, and a sip community; sipp
(tests/sip/uac-load.xml) sends MESSAGEs at each rate for N seconds
(default 5).  Prints, per rate: calls, failed, retransmissions, imgwd CPU
per message, p50/p99 response time (sipp's rtd); then the highest rate
with zero failed transactions and every message at the sink, and p50/p99
at half that rate.  sipp reports response times in whole milliseconds (0 means under 1 ms).
Figures, not assertions: run it on a quiet machine.
Two sipp processes alone top out near 6,800 transactions/s on 2 cores
(PEERS.md), so the client saturates early.
"""

import argparse
import os
import socket
import sys
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.join(TOP, "tests", "sip")
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
sys.path.insert(0, HERE)
os.environ.setdefault("IMGWD", os.path.join(TOP, "imgwd"))
os.environ.setdefault("IMGWCTL", os.path.join(TOP, "imgwctl"))
os.environ.setdefault("IMGW_CONNECTORS", os.path.join(TOP, "connectors"))
os.environ.setdefault("IMGW_SRCDIR", TOP)

import imgwtest as T  # noqa: E402
import siptest as S  # noqa: E402


class Sink(threading.Thread):
    def __init__(self, addr):
        super().__init__(daemon=True)
        self.sock = T.connect(addr)
        self.sock.sendall(b'{"type":"bind","user":"*"}\n')
        self.count = 0
        self.stop = False

    def run(self):
        buf = b""
        self.sock.settimeout(0.5)
        while not self.stop:
            try:
                d = self.sock.recv(1 << 20)
            except socket.timeout:
                continue
            except OSError:
                return
            if not d:
                return
            buf += d
            n = buf.count(b"\n")
            self.count += n
            buf = buf[buf.rfind(b"\n") + 1:]


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return int(parts[11]) + int(parts[12])


def run_rate(t, gw, sink, rate, seconds):
    before = sink.count
    c0 = cpu_ticks(gw.pid())
    r = S.sipp_load(t, os.path.join(HERE, "uac-load.xml"), gw.sip_port, rate, seconds,
                    {"from": "bob@sip.example", "to": "alice@corp.example"},
                    "r%d" % rate)
    calls = r["calls"]
    deadline = time.monotonic() + 5
    while sink.count - before < calls and time.monotonic() < deadline:
        time.sleep(0.05)
    c1 = cpu_ticks(gw.pid())
    got = sink.count - before
    failed, retrans, rtts = r["failed"], r["retrans"], r["rtts"]
    hz = os.sysconf("SC_CLK_TCK")
    cpu_us = (c1 - c0) / hz * 1e6 / max(1, got)
    ok = r["rc"] == 0 and failed == 0 and got >= calls
    print("rate %6d/s  calls %7d  at sink %7d  failed %5d  retrans %5d  "
          "imgwd cpu %6.1f us/msg  rtd p50 %6.2f ms  p99 %7.2f ms  %s"
          % (rate, calls, got, failed, retrans, cpu_us, S.pct(rtts, 0.5),
             S.pct(rtts, 0.99), "ok" if ok else "FAILED"), flush=True)
    return ok, S.pct(rtts, 0.5), S.pct(rtts, 0.99)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rates", default="500,1000,2000,3000,4000,5000,6000")
    args = ap.parse_args()
    if S.SIPP is None:
        print("bench-sip: sipp is not installed (apt-get install sip-tester)")
        return 1
    t = T.Test(alarm=3600, name="bench-sip")
    gw = S.gateway(t, {"max-pending": 100000}, start=False)
    gw.log_level = "notice"
    gw.start()
    sink = Sink(gw.listen("corp"))
    sink.start()
    time.sleep(0.3)
    best = 0
    for i, rate in enumerate(int(r) for r in args.rates.split(",")):
        if i > 0:
            time.sleep(35)	# Timer J: start each rate from a quiet stack
        ok, _, _ = run_rate(t, gw, sink, rate, args.seconds)
        if not ok:
            break
        best = rate
    print("highest rate with zero failed transactions: %d MESSAGE/s" % best)
    if best:
        # let the finished transactions of the runs above expire (Timer J,
        # 32 s on UDP) so the half-rate run starts from a quiet stack
        time.sleep(35)
        _, p50, p99 = run_rate(t, gw, sink, best // 2, args.seconds)
        print("at half of it (%d/s): p50 %.2f ms, p99 %.2f ms" % (best // 2, p50, p99))
    sink.stop = True
    gw.term()
    t.finished = True
    T.shutil.rmtree(t.dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
