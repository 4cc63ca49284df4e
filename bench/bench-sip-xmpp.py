#!/usr/bin/env python3
"""bench-sip-xmpp: SIP MESSAGE -> XMPP, imgwd against Kamailio's xmpp module.

    bench/bench-sip-xmpp.py [--seconds N] [--rates R1,R2,...] [--children N]
                            [--store none|default] [--quiet S]
                            [--backlog-ms MS] [--smoke]

One run measures two gateways doing the same job with the same load
generator, the same private Prosody and the same XMPP sink:

  kamailio  sipp -> Kamailio with its xmpp module, attached to Prosody as
            an XEP-0114 component (bench/kamailio-xmpp.cfg.in, --children
            UDP workers, default 4) -> Prosody -> sink: the reference;
  imgwd     sipp -> imgwd (sip community on UDP -> xmpp community in
            component mode) -> Prosody -> sink.

sipp runs bench/uac-xmpp-load.xml: one MESSAGE per call from
bob@sip.example, 202 expected, a body "load message N DATE TIME EPOCH" (sipp's
[timestamp]).  The sink is one c2s client (alice@xmpp.example) on one
Python thread: it counts the <message/> stanzas and their distinct N, and
takes the delivery latency (SIP send to XMPP receipt) from EPOCH.  For each
pipeline and each rate (--rates, --seconds each) it prints: calls, failed
transactions, retransmissions, messages at the sink, the gateway's CPU per
message (user+system of all its processes: Kamailio's whole process tree,
walked in /proc; imgwd is one process), Prosody's and the sink's CPU per
message, sipp's response time p50/p99 (whole milliseconds, sipp's
resolution) and the delivery latency p50/p99; "sent" is the rate sipp
really kept (calls over its run time).  A pipeline stops at its first
rate with a failed transaction or a message missing at the sink.  Then
the highest clean rate of each, the highest whose delivery p99 also
stayed under --backlog-ms (a backlog builds long before anything fails),
and imgwd's figures as ratios to Kamailio's: both rates, and CPU per
message, rtd p99 and delivery latency at each rate both passed.

imgwd's SIP stack keeps a finished UDP transaction for Timer J (32 s), so
its runs start 35 s apart (--quiet); Kamailio's tm keeps it 5 s.  The
pipelines alternate, one rate at a time.  imgwd runs with --store none
(no audit, no policies: Kamailio keeps no records either) unless --store
default (the shipped SQLite store, metadata audit of every message).
Prosody logs warnings only.

Figures, not assertions: nothing fails on timing.  On 2 cores sipp,
Prosody (one Lua thread), the gateway and the sink compete; Prosody is
likely the ceiling of both pipelines, which is why the gateway's CPU per
message is the figure that tells them apart.

--smoke: both pipelines at 50/s for 2 s; checks that every MESSAGE reached
the sink with its body and the from/to each gateway's mapping promises
(tests/sip/t-sip-bench-xmpp.py runs the same check); exit 1 when not.
Needs sipp (sip-tester), prosody, kamailio and kamailio-xmpp-modules.
"""

import argparse
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path[:0] = [os.path.join(TOP, "tests", d) for d in ("integration", "sip", "xmpp")]
os.environ.setdefault("IMGWD", os.path.join(TOP, "imgwd"))
os.environ.setdefault("IMGWCTL", os.path.join(TOP, "imgwctl"))
os.environ.setdefault("IMGW_CONNECTORS", os.path.join(TOP, "connectors"))
os.environ.setdefault("IMGW_SRCDIR", TOP)

import imgwtest as T  # noqa: E402
import siptest as S  # noqa: E402
import xmpptest as X  # noqa: E402

SCENARIO = os.path.join(HERE, "uac-xmpp-load.xml")
TEMPLATE = os.path.join(HERE, "kamailio-xmpp.cfg.in")
SENDER = "bob@sip.example"
SINK = "alice"
SINK_JID = "%s@%s" % (SINK, X.DOMAIN)
KAM_GATEWAY = "kam-gw.example"          # SIP domain of Kamailio's gateway
KAM_COMPONENT = "kam.xmpp.example"      # its XMPP domain at Prosody
KAM_SECRET = "kamailio-component-secret"

MESSAGE_RE = re.compile(rb"<message[\s>].*?</message>", re.S)
# "load message N DATE\tTIME\tEPOCH" ([timestamp]); CR LF may follow
LOAD_RE = re.compile(rb"load message (\d+) [^<\t]*\t[^<\t]*\t(\d+\.\d+)")
BODY_RE = re.compile(r"^load message (\d+) \d{4}-\d\d-\d\d\t\d\d:\d\d:\d\d\.\d{6}\t"
                     r"(\d+\.\d{6})\r?\n?$")


def missing():
    """Why the bench cannot run here, or None."""
    if S.SIPP is None:
        return "sipp is not installed (apt-get install sip-tester)"
    if not X.have_prosody():
        return "prosody is not installed (apt-get install prosody)"
    return S.kamailio_missing(("xmpp.so",), "kamailio-xmpp-modules")


def proc_tree(root):
    """{pid: CPU ticks} of root and all its descendants: user + system,
    and that of their children already reaped."""
    kids, ticks = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                parts = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        kids.setdefault(int(parts[1]), []).append(int(d))
        ticks[int(d)] = sum(int(x) for x in parts[11:15])
    out, todo = {}, [root]
    while todo:
        p = todo.pop()
        out[p] = ticks.get(p, 0)
        todo += kids.get(p, [])
    return out


def tree_cpu(root):
    """CPU seconds of root and all its descendants."""
    return sum(proc_tree(root).values()) / os.sysconf("SC_CLK_TCK")


class Prosody(X.Prosody):
    """The tests' private Prosody with a second component, Kamailio's."""

    def __init__(self, t, log_level="warn", **kw):
        self.log_level = log_level
        super().__init__(t, **kw)

    def write_config(self):
        super().write_config()
        with open(self.conf) as f:
            text = f.read()
        # the tests log every stanza (debug); a benchmark must not
        text = text.replace("log = { debug = ", "log = { %s = " % self.log_level)
        text += 'Component "%s"\n    component_secret = %s\n' % (
            KAM_COMPONENT, X.lua_str(KAM_SECRET))
        with open(self.conf, "w") as f:
            f.write(text)


class Sink(threading.Thread):
    """alice@xmpp.example on one thread: counts the <message/> stanzas of
    the load, their distinct numbers and delivery latencies; with keep,
    the stanzas themselves too."""

    def __init__(self, t, pro):
        super().__init__(daemon=True)
        self.client = X.Client(t, pro, SINK, "sink-pw", resource="sink")
        self.client.quiet(0.2)
        self.sock = self.client.sock
        self.lock = threading.Lock()
        self.stop = False
        self.cpu = 0.0
        self.begin()

    def begin(self, keep=False):
        with self.lock:
            self.keep = keep
            self.stanzas = []
            self.seen = set()
            self.dups = 0
            self.lat = []

    def distinct(self):
        with self.lock:
            return len(self.seen)

    def run(self):
        buf = b""
        self.sock.setblocking(False)
        while not self.stop:
            try:
                r, _, _ = select.select([self.sock], [], [], 0.2)
                if not r:
                    continue
                d = self.sock.recv(1 << 20)
                # Prosody writes with Nagle on (server_epoll's default):
                # ACK at once, or each stanza after the first of a burst
                # waits for our delayed ACK (up to 40 ms), whichever
                # gateway sent it
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            except BlockingIOError:
                continue
            except (OSError, ValueError):
                return      # closed at the end
            if not d:
                return
            now = time.time()
            buf += d
            cut = buf.rfind(b">")
            if cut < 0:
                continue
            with self.lock:
                if self.keep:
                    # whole stanzas only: cut after the last </message>
                    end = buf.rfind(b"</message>")
                    if end < 0:
                        continue
                    cut = end + len(b"</message>") - 1
                    self.stanzas += MESSAGE_RE.findall(buf, 0, cut + 1)
                for m in LOAD_RE.finditer(buf, 0, cut + 1):
                    n = int(m.group(1))
                    if n in self.seen:
                        self.dups += 1
                    else:
                        self.seen.add(n)
                    self.lat.append(now - float(m.group(2)))
                self.cpu = time.thread_time()
            buf = buf[cut + 1:]


class Pipeline:
    """One gateway between sipp and Prosody."""

    def __init__(self, name, gw, port, to, want_from, quiet):
        self.name = name
        self.gw = gw                # an imgwtest.Server
        self.port = port            # its SIP UDP port
        self.to = to                # the Request-URI's user@host
        self.want_from = want_from  # the sender's JID at the sink
        self.quiet = quiet          # seconds between two runs
        self.last_end = 0.0


class Bench:
    """Prosody, Kamailio, imgwd and the sink, started on a test's folder."""

    def __init__(self, t, children=4, store="none", prosody_log="warn"):
        self.t = t
        self.pro = Prosody(t, users={SINK: "sink-pw"}, log_level=prosody_log)
        self.sink = Sink(t, self.pro)
        self.sink.start()
        port = S.free_port_both()
        conf = X.gateway_config(self.pro, T.free_port())
        conf["gateway"] = {"log-level": "warning"}
        if store == "none":
            conf["store"] = {"dsn": "none"}
        conf["community sipc"] = {
            "connector": "sip", "domains": "sip.example",
            "listen": "udp:127.0.0.1:%d" % port, "trusted": "127.0.0.1/32",
        }
        gw = S.SipGateway(t, conf)
        gw.sip_port = port
        t.gateways.append(gw)
        gw.start()
        gw.wait_status(lambda s: (gw.community("xmpp", s) or {}).get("state") == "running")
        self.imgwd = gw
        user, dom = SENDER.split("@")
        imgwd = Pipeline("imgwd", gw, port, SINK_JID, X.gwjid(SENDER), quiet=35)
        self.probe(imgwd)
        self.shim = None
        kam = self.kamailio(children, None)
        kamp = Pipeline("kamailio", kam, kam.port, "%s*%s@%s" % (SINK, X.DOMAIN, KAM_GATEWAY),
                        "%s*%s@%s" % (user, dom, KAM_COMPONENT), quiet=6)
        try:
            if not kam.alive():
                raise T.Timeout("kamailio exited")
            self.probe(kamp, timeout=5)
        except (T.Timeout, OSError):
            if "exited by a signal 11" not in kam.log():
                raise
            # kamailio issue #4154: see bench/kamailio-xmpp-shim.c
            kill_tree(kam)
            self.shim = build_shim(t)
            kam = kamp.gw = self.kamailio(children, self.shim)
            kamp.port = kam.port
            self.probe(kamp)
        self.pipelines = [kamp, imgwd]

    def kamailio(self, children, shim):
        env = None
        if shim:
            env = dict(os.environ, LD_PRELOAD=shim)
        kam = S.Kamailio(t=self.t, template=TEMPLATE, env=env,
                         name="kamailio-shim" if shim else "kamailio", subst={
                             "CHILDREN": children, "GATEWAY": KAM_GATEWAY,
                             "COMPONENT": KAM_COMPONENT, "SECRET": KAM_SECRET,
                             "XMPP_PORT": self.pro.component_port})
        self.t.track(kam)
        try:
            kam.start(timeout=15 if shim else 5)
        except (RuntimeError, T.Timeout):
            if shim:
                raise
            # the module as shipped: its process died, and Kamailio with
            # it, or half of it (the caller reads why in its log)
        return kam

    def probe(self, p, timeout=20):
        """Wait until a MESSAGE through p reaches the sink (Kamailio's
        XMPP process connects to Prosody on its own time)."""
        ep = S.Endpoint("udp")
        deadline = time.monotonic() + timeout
        try:
            n = 0
            while time.monotonic() < deadline:
                n += 1
                body = "probe %s %d" % (p.name, n)
                self.sink.begin(keep=True)
                ep.send(S.request("MESSAGE", "sip:" + p.to, ep, frm=SENDER, body=body),
                        p.port)
                ep.recv(1)
                t1 = time.monotonic() + 1
                while time.monotonic() < t1:
                    with self.sink.lock:
                        if any(body.encode() in s for s in self.sink.stanzas):
                            return
                    time.sleep(0.02)
            raise T.Timeout("%s: no probe MESSAGE reached the sink in %d s"
                            % (p.name, timeout))
        finally:
            ep.close()
            self.sink.begin()

    def run(self, p, rate, seconds, keep=False):
        """One paced sipp run through p; a dict of figures."""
        wait = p.last_end + p.quiet - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        sink = self.sink
        sink.begin(keep)
        g0, p0, s0 = tree_cpu(p.gw.proc.pid), tree_cpu(self.pro.proc.pid), sink.cpu
        t0 = time.monotonic()
        r = S.sipp_load(self.t, SCENARIO, p.port, rate, seconds,
                        {"from": SENDER, "to": p.to}, "%s-%d" % (p.name, rate))
        # until every message is there, or nothing more came for 3 s
        last, since = -1, time.monotonic()
        while time.monotonic() - since < 3:
            got = sink.distinct()
            if got >= r["calls"]:
                break
            if got != last:
                last, since = got, time.monotonic()
            time.sleep(0.05)
        wall = time.monotonic() - t0
        g1, p1, s1 = tree_cpu(p.gw.proc.pid), tree_cpu(self.pro.proc.pid), sink.cpu
        p.last_end = time.monotonic()
        with sink.lock:
            got, dups, lat = len(sink.seen), sink.dups, sorted(sink.lat)
            stanzas = list(sink.stanzas)
        n = max(1, got)
        r.update(pipeline=p.name, rate=rate, got=got, dups=dups, lat=lat, wall=wall,
                 stanzas=stanzas, gw_cpu=g1 - g0, pro_cpu=p1 - p0,
                 sink_cpu=s1 - s0, gw_us=(g1 - g0) * 1e6 / n,
                 pro_us=(p1 - p0) * 1e6 / n, sink_us=(s1 - s0) * 1e6 / n,
                 gw_procs=len(proc_tree(p.gw.proc.pid)))
        r["ok"] = r["rc"] == 0 and r["failed"] == 0 and got >= r["calls"]
        return r


def kill_tree(server):
    """SIGKILL a server's process and all its descendants (a Kamailio
    whose main process died of a crashed child can leave workers)."""
    if server.proc is None:
        return
    for pid in proc_tree(server.proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    server.halt()


def build_shim(t):
    """bench/kamailio-xmpp-shim.c compiled into the test's folder."""
    out = t.path("kamailio-xmpp-shim.so")
    cc = os.environ.get("CC", "cc")
    p = subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", out,
                        os.path.join(HERE, "kamailio-xmpp-shim.c"), "-ldl"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("%s kamailio-xmpp-shim.c: %s" % (cc, (p.stdout + p.stderr).decode()))
    return out


def check(p, r):
    """What the smoke run checks of pipeline p's run r: a list of
    (ok, description, diagnostics)."""
    out = [(r["rc"] == 0 and r["failed"] == 0,
            "%s: sipp got a 202 for each of %d MESSAGEs" % (p.name, r["calls"]),
            "sipp exit %s, %s failed" % (r["rc"], r["failed"])),
           (r["got"] == r["calls"] and r["dups"] == 0,
            "%s: each of them reached the XMPP sink once" % p.name,
            "%d distinct at the sink, %d duplicates" % (r["got"], r["dups"]))]
    import xml.etree.ElementTree as ET
    bad_body, bad_from, bad_to, numbers = [], [], [], set()
    for raw in r["stanzas"]:
        el = ET.fromstring(raw.replace(b"<message", b"<message xmlns='jabber:client'", 1)
                           if b"xmlns=" not in raw.split(b">", 1)[0] else raw)
        body = X.text_of(el, "body")
        m = BODY_RE.match(body or "")
        if m is None:
            bad_body.append(body)
        else:
            numbers.add(int(m.group(1)))
        if el.get("from") != p.want_from:
            bad_from.append(el.get("from"))
        if (el.get("to") or "").split("/")[0] != SINK_JID:
            bad_to.append(el.get("to"))
    out.append((not bad_body and numbers == set(range(1, r["calls"] + 1)),
                "%s: the bodies are sipp's, numbers 1..%d" % (p.name, r["calls"]),
                "bad: %r; numbers missing: %r" % (
                    bad_body[:3], sorted(set(range(1, r["calls"] + 1)) - numbers)[:10])))
    out.append((not bad_from and r["stanzas"],
                "%s: from is %s" % (p.name, p.want_from), "got %r" % bad_from[:3]))
    out.append((not bad_to and r["stanzas"],
                "%s: to is %s" % (p.name, SINK_JID), "got %r" % bad_to[:3]))
    return out


def show(r):
    print("%-8s %6d/s (sent %5.0f/s)  calls %7d  failed %5d  retrans %5d  at sink %7d%s  "
          "CPU us/msg: gateway %7.1f (%d procs)  prosody %6.1f  sink %5.1f  sipp %5.1f  "
          "rtd p50/p99 %.0f/%.0f ms  delivery p50/p99 %.2f/%.2f ms  %s" % (
              r["pipeline"], r["rate"], r["calls"] / r["elapsed"], r["calls"], r["failed"],
              r["retrans"], r["got"],
              " (+%d dup)" % r["dups"] if r["dups"] else "", r["gw_us"], r["gw_procs"],
              r["pro_us"], r["sink_us"], r["sipp_cpu"] * 1e6 / max(1, r["calls"]),
              S.pct(r["rtts"], 0.5), S.pct(r["rtts"], 0.99),
              S.pct(r["lat"], 0.5) * 1e3, S.pct(r["lat"], 0.99) * 1e3,
              "ok" if r["ok"] else "FAILED"), flush=True)


def ratio(a, b):
    return "%.2f" % (a / b) if b else "n/a (Kamailio's is 0)"


def summary(results, backlog_ms):
    best, limited, steady = {}, {}, {}
    for name in ("kamailio", "imgwd"):
        mine = [r for r in results if r["pipeline"] == name]
        best[name] = max((r["rate"] for r in mine if r["ok"]), default=0)
        steady[name] = max((r["rate"] for r in mine if r["ok"] and
                            S.pct(r["lat"], 0.99) * 1e3 < backlog_ms), default=0)
        limited[name] = any(not r["ok"] for r in mine)
        print("%s: highest rate with zero failed transactions and every message "
              "at the sink: %d MESSAGE/s%s; and with delivery p99 under %g ms: %d/s"
              % (name, best[name], "" if limited[name] else " (every rate tried passed)",
                 backlog_ms, steady[name]))
    by = {(r["pipeline"], r["rate"]): r for r in results}
    common = sorted(rate for (name, rate), r in by.items()
                    if name == "imgwd" and r["ok"] and by.get(("kamailio", rate), {}).get("ok"))
    print("== imgwd / Kamailio ==")
    note = ""
    if not limited["kamailio"] and not limited["imgwd"]:
        note = " (both passed every rate tried: raise --rates)"
    elif not limited["kamailio"] or not limited["imgwd"]:
        note = " (a bound: one of them passed every rate tried)"
    print("max rate: %s%s; with delivery p99 under %g ms: %s" % (
        ratio(best["imgwd"], best["kamailio"]), note, backlog_ms,
        ratio(steady["imgwd"], steady["kamailio"])))
    for rate in common:
        i, k = by[("imgwd", rate)], by[("kamailio", rate)]
        print("at %5d/s: gateway CPU per message %s (%.1f / %.1f us), Prosody's %s, "
              "rtd p99 %s, delivery p50 %s, p99 %s" % (
                  rate, ratio(i["gw_us"], k["gw_us"]), i["gw_us"], k["gw_us"],
                  ratio(i["pro_us"], k["pro_us"]),
                  ratio(S.pct(i["rtts"], 0.99), S.pct(k["rtts"], 0.99)),
                  ratio(S.pct(i["lat"], 0.5), S.pct(k["lat"], 0.5)),
                  ratio(S.pct(i["lat"], 0.99), S.pct(k["lat"], 0.99))))
    if not common:
        print("no rate that both passed")


def machine():
    return "%d cores, %s, load average %s" % (
        os.cpu_count(), T.cpu_model(), " ".join("%.2f" % x for x in os.getloadavg()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 epilog=__doc__.split("\n", 2)[2],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--rates", default="250,500,1000,2000,3000,4000,5000,6000,7000,8000,10000")
    ap.add_argument("--children", type=int, default=4,
                    help="Kamailio's UDP worker processes (default 4)")
    ap.add_argument("--store", choices=("none", "default"), default="none",
                    help="imgwd's store: none, or the shipped SQLite + audit")
    ap.add_argument("--quiet", type=float, default=35,
                    help="seconds between two imgwd runs (Timer J)")
    ap.add_argument("--backlog-ms", type=float, default=100,
                    help="a delivery p99 above this is a backlog (default 100)")
    ap.add_argument("--smoke", action="store_true",
                    help="50/s for 2 s through both, and check what arrives")
    args = ap.parse_args()
    why = missing()
    if why:
        print("bench-sip-xmpp: " + why)
        return 77 if args.smoke else 1
    t = T.Test(alarm=7200, name="bench-sip-xmpp")
    try:
        rc = (smoke if args.smoke else bench)(t, args)
    except BaseException:
        t.failed += 1
        raise
    finally:
        t._cleanup()
        t.finished = True
        if t.failed:
            print("# kept %s" % t.dir)
        else:
            T.shutil.rmtree(t.dir, ignore_errors=True)
    return rc


def shim_note(b):
    if b.shim:
        print("# Kamailio's xmpp module crashed on Prosody's stream header "
              "(kamailio issue #4154); it runs with bench/kamailio-xmpp-shim.c "
              "preloaded", flush=True)


def smoke(t, args):
    b = Bench(t, children=2, store=args.store, prosody_log="info")
    shim_note(b)
    for p in b.pipelines:
        r = b.run(p, 50, 2, keep=True)
        show(r)
        for ok, desc, diag in check(p, r):
            t.ok(ok, desc, diag)
    return 1 if t.failed else 0


def bench(t, args):
    print("== bench-sip-xmpp: %s; Kamailio children %d; imgwd store %s ==" % (
        machine(), args.children, args.store), flush=True)
    b = Bench(t, children=args.children, store=args.store)
    shim_note(b)
    b.pipelines[1].quiet = args.quiet
    results = []
    live = list(b.pipelines)
    for rate in (int(x) for x in args.rates.split(",")):
        for p in list(live):
            r = b.run(p, rate, args.seconds)
            show(r)
            results.append(r)
            if not r["ok"]:
                live.remove(p)
        if not live:
            break
    summary(results, args.backlog_ms)
    for name in ("sipc", "xmpp"):
        c = b.imgwd.community(name) or {}
        print("# imgwd %s counters: %s" % (name, c.get("counters")))
    print("# imgwd errors: %s" % {k: v for k, v in b.imgwd.status().get("counters", {}).items()
                                  if k.startswith("errors.") and v})
    print("# %s" % machine())
    return 0


if __name__ == "__main__":
    sys.exit(main())
