#!/usr/bin/env python3
"""bench-sip: sipp MESSAGE load into imgwd over UDP and TLS, to a jsonl sink.

    bench/bench-sip.py [--seconds N] [--rates R1,R2,...]
                       [--transport udp|tls|both] [--settle S] [--keep]

Starts imgwd (from $IMGWD, else ./imgwd) with a jsonl community whose one
client binds "*" and reads everything, and a sip community listening on
UDP and TLS; sipp (tests/sip/uac-load.xml) sends MESSAGEs at each rate
for N seconds (default 5) along each path:

  udp-direct  sipp -UDP-> imgwd                       (--transport udp)
  udp-kam     sipp -UDP-> Kamailio -UDP-> imgwd       (--transport tls)
  tls-kam     sipp -UDP-> Kamailio -TLS-> imgwd       (--transport tls)

(both, the default: all three).  Debian's sipp has no TLS, so TLS needs
a relay: a private Kamailio from tests/sip/kamailio-tls.cfg.in (tm,
mutual TLS with certificates from a private CA, as in
tests/sip/t-sip-tls-kamailio.py); udp-kam runs the same relay with a UDP
leg to imgwd, so that imgwd's TLS cost is the difference between udp-kam
and tls-kam, and Kamailio's share is not counted as imgwd's.

Prints, per path and rate: calls, messages at the sink, failed
transactions, retransmissions, imgwd CPU per message and Kamailio CPU
per message (its main and forked processes summed, from /proc), p50/p99
response time at sipp (its rtd: the whole round trip, through Kamailio
where there is one); then per path the highest rate with zero failed
transactions and every message at the sink, and p50/p99 and CPU at half
that rate.  sipp reports response times in whole milliseconds (0 means
under 1 ms).  Between rates it waits --settle seconds (35: Timer J keeps
finished UDP server transactions 32 s) so each starts from a quiet stack.
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


def tree_ticks(pid):
    """CPU ticks of pid and of every process below it (Kamailio forks its
    workers from the main process)."""
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            total += cpu_ticks(p)
        except OSError:
            pass
        todo += kids.get(p, [])
    return total


PATHS = {"udp": ("udp-direct",), "tls": ("udp-kam", "tls-kam"),
         "both": ("udp-direct", "udp-kam", "tls-kam")}


def run_rate(t, path, gw, kam, sink, rate, seconds):
    """One sipp run along `path` (to imgwd, or to the relay kam)."""
    before = sink.count
    c0 = cpu_ticks(gw.pid())
    k0 = tree_ticks(kam.proc.pid) if kam else 0
    r = S.sipp_load(t, os.path.join(HERE, "uac-load.xml"),
                    kam.port if kam else gw.sip_port, rate, seconds,
                    {"from": "bob@sip.example", "to": "alice@corp.example"},
                    "%s-r%d" % (path, rate))
    calls = r["calls"]
    deadline = time.monotonic() + 5
    while sink.count - before < calls and time.monotonic() < deadline:
        time.sleep(0.05)
    c1 = cpu_ticks(gw.pid())
    k1 = tree_ticks(kam.proc.pid) if kam else 0
    got = sink.count - before
    failed, retrans, rtts = r["failed"], r["retrans"], r["rtts"]
    hz = os.sysconf("SC_CLK_TCK")
    cpu_us = (c1 - c0) / hz * 1e6 / max(1, got)
    kam_us = (k1 - k0) / hz * 1e6 / max(1, got)
    ok = r["rc"] == 0 and failed == 0 and got >= calls
    res = {"rate": rate, "ok": ok, "p50": S.pct(rtts, 0.5), "p99": S.pct(rtts, 0.99),
           "imgwd": cpu_us, "kam": kam_us if kam else None}
    print("%-10s rate %5d/s  calls %6d  at sink %6d  failed %5d  retrans %5d  "
          "imgwd %6.1f us/msg  kamailio %s  rtd p50 %5.2f ms  p99 %7.2f ms  %s"
          % (path, rate, calls, got, failed, retrans, cpu_us,
             "%6.1f us/msg" % kam_us if kam else "     - us/msg", res["p50"],
             res["p99"], "ok" if ok else "FAILED"), flush=True)
    return res


def relay(t, path, gw):
    """The Kamailio relay of `path`, started, or None for udp-direct."""
    if path == "udp-direct":
        return None
    tls = path == "tls-kam"
    kam = S.kamailio_tls_relay(t, "sip.example", gw.tls_port if tls else gw.sip_port,
                               "tls" if tls else "udp", name="kamailio-" + path)
    kam.start()
    return kam


COUNTERS = ("sip-requests-in", "sip-retransmissions-in", "sip-tcp-connections",
            "sip-tls-handshakes", "sip-tls-failures", "sip-stream-messages-in")


def counters(gw):
    c = (gw.community("sipc") or {}).get("counters", {})
    return {k: c.get(k, 0) for k in COUNTERS}


def run_path(t, path, gw, sink, rates, seconds, settle):
    kam = relay(t, path, gw)
    best = None
    c0 = counters(gw)
    try:
        for i, rate in enumerate(rates):
            if i > 0:
                time.sleep(settle)
            res = run_rate(t, path, gw, kam, sink, rate, seconds)
            if not res["ok"]:
                break
            best = res
        half = None
        if best:
            time.sleep(settle)
            half = run_rate(t, path, gw, kam, sink, best["rate"] // 2, seconds)
    finally:
        if kam:
            kam.stop()
    c1 = counters(gw)
    print("%-10s imgwd counters: %s" % (path, ", ".join(
        "%s +%d" % (k, c1[k] - c0[k]) for k in COUNTERS)), flush=True)
    time.sleep(settle)
    return best, half


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rates", default="500,1000,2000,3000,4000,5000,6000")
    ap.add_argument("--transport", choices=sorted(PATHS), default="both")
    ap.add_argument("--settle", type=int, default=35)
    ap.add_argument("--keep", action="store_true",
                    help="keep the scratch folder (sipp's error logs, Kamailio's log)")
    args = ap.parse_args()
    if S.SIPP is None:
        print("bench-sip: sipp is not installed (apt-get install sip-tester)")
        return 1
    paths = PATHS[args.transport]
    if args.transport != "udp":
        why = S.kamailio_missing(("tls.so", "tm.so"), "kamailio-tls-modules")
        if why or T.shutil.which("openssl") is None:
            print("bench-sip: %s" % (why or "openssl is not installed"))
            return 1
    t = T.Test(alarm=7200, name="bench-sip")
    extra = {"max-pending": 100000}
    port, tls_port = S.free_port_both(), None
    if args.transport != "udp":
        # UDP for udp-direct and udp-kam, TLS (mutual) for tls-kam
        S.make_certs(t, ("corp.example", "sip.example"))
        tls_port = S.free_port_both()
        extra.update({
            "listen": "udp:127.0.0.1:%d tls:127.0.0.1:%d" % (port, tls_port),
            "tls-cert": t.path("corp.example.pem"), "tls-key": t.path("corp.example.key"),
            "tls-ca": t.path("ca.pem"), "tls-client-cert": "yes",
            "tls-names": "sip.example"})
    gw = S.gateway(t, extra, port=port, start=False)
    gw.tls_port = tls_port
    gw.log_level = "notice"
    gw.start()
    sink = Sink(gw.listen("corp"))
    sink.start()
    time.sleep(0.3)
    rates = [int(r) for r in args.rates.split(",")]
    summary = []
    for path in paths:
        best, half = run_path(t, path, gw, sink, rates, args.seconds, args.settle)
        summary.append((path, best, half))
    print()
    print("path        highest rate   at half: rate  p50 ms  p99 ms  "
          "imgwd us/msg  kamailio us/msg")
    for path, best, half in summary:
        if not best:
            print("%-10s  none ok at %d/s" % (path, rates[0]))
            continue
        print("%-10s  %8d/s     %8d/s  %6.2f  %6.2f  %12.1f  %15s"
              % (path, best["rate"], half["rate"], half["p50"], half["p99"],
                 half["imgwd"], "-" if half["kam"] is None else "%.1f" % half["kam"]))
    sink.stop = True
    gw.term()
    t.finished = True
    if args.keep:
        print("kept %s" % t.dir)
    else:
        T.shutil.rmtree(t.dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
