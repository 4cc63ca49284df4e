#!/usr/bin/env python3
"""XMPP through imgwd against Prosody alone: messages/s and latency.

Starts a private Prosody (tests/xmpp/xmpptest.py) with the users alice and
carol, and imgwd -f from the build tree with the XMPP community in
component mode and a local jsonl community corp.example.  Two round trips,
measured in the same run by the same client:

  gateway    alice -> Prosody -> imgwd (component) -> jsonl bot@corp.example,
             which echoes each message back: -> imgwd -> Prosody -> alice;
  reference  alice -> Prosody -> carol, who echoes it: -> Prosody -> alice
             (user to user, Prosody alone, the same number of hops through
             Prosody's routing: two).

Each path runs flat out with --window messages in flight (messages/s over
--seconds), then paced at one rate for both (--rate, default half the
slower flat-out figure) for p50/p90/p99/max latency.  The message id
carries the send time; the echo keeps the id.  Printed: both figures and
the ratio gateway/reference, and the CPU seconds of imgwd, Prosody and
this client, so that the reader can see who was the bottleneck (2 cores:
they compete).

The client is one Python thread on raw sockets with select(): pre-built
stanzas, ids found with a byte regex (no XML parser), jsonl echo lines
built by hand; logins go through xmpptest.Client.  Figures only; nothing
fails on timing.

    bench-xmpp.py [--imgwd PATH] [--connectors DIR] [--seconds S]
                  [--window N] [--rate R] [--body BYTES]
"""

import argparse
import json
import os
import re
import select
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)

ID_RE = re.compile(rb"id=['\"]b(\d+)\.(\d+)['\"]")
JSON_ID_RE = re.compile(rb'"id":\s*"b(\d+)\.(\d+)"')


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def self_cpu():
    t = os.times()
    return t.user + t.system


class Bench:
    """The little of imgwtest.Test that Prosody, Gateway and the clients
    use: a folder, diagnostics, cleanup."""

    def __init__(self, folder):
        self.dir = folder
        self.clients = []
        self.gateways = []
        self.servers = []

    def track(self, server):
        """imgwtest.Test.track: Prosody registers itself here."""
        self.servers.append(server)
        return server

    def path(self, name):
        return os.path.join(self.dir, name)

    def diag(self, msg):
        for line in str(msg).splitlines():
            print("# " + line)

    def _cleanup(self):
        for c in self.clients:
            c.close()
        for g in self.gateways:
            g.kill()
        for srv in self.servers:
            srv.halt()

    def _dump_logs(self):
        pass


class Sock:
    """A non-blocking socket with an output buffer."""

    def __init__(self, sock):
        self.s = sock
        self.s.setblocking(False)
        self.out = bytearray()
        self.inb = b""

    def flush(self):
        while self.out:
            try:
                n = self.s.send(self.out)
            except BlockingIOError:
                return
            del self.out[:n]

    def read(self):
        try:
            d = self.s.recv(1 << 20)
        except BlockingIOError:
            return b""
        if not d:
            raise RuntimeError("connection closed by the peer")
        return d


class Path:
    """One round trip: alice sends, the echo side sends back, alice reads."""

    def __init__(self, name, alice, echo, mkmsg, echo_cb):
        self.name = name
        self.alice = alice          # Sock
        self.echo = echo            # Sock
        self.mkmsg = mkmsg          # (id) -> bytes for alice to send
        self.echo_cb = echo_cb      # (Sock echo, bytes data) -> None

    def run(self, seconds, window=None, rate=None, warmup=0.0):
        """Flat out (window in flight) or paced (rate/s).  Returns
        (messages/s, sorted latencies in s, sent, received)."""
        seq = 0
        inflight = 0
        lat = []
        got = 0
        t0 = time.monotonic()
        t_measure = t0 + warmup
        t_end = t_measure + seconds
        counted = 0
        abuf = b""
        interval = 1.0 / rate if rate else 0
        next_send = t0
        socks = [self.alice.s, self.echo.s]
        while True:
            now = time.monotonic()
            if now >= t_end:
                break
            # send
            if rate:
                while next_send <= now and seq < 10**9:
                    seq += 1
                    self.alice.out += self.mkmsg("b%d.%d" % (seq, time.monotonic_ns()))
                    inflight += 1
                    next_send += interval
            else:
                while inflight < window:
                    seq += 1
                    self.alice.out += self.mkmsg("b%d.%d" % (seq, time.monotonic_ns()))
                    inflight += 1
            self.alice.flush()
            self.echo.flush()
            wl = [s.s for s in (self.alice, self.echo) if s.out]
            timeout = max(0.0, min(next_send - now, 0.05)) if rate else 0.05
            r, w, _ = select.select(socks, wl, [], timeout)
            for s in r:
                if s is self.echo.s:
                    self.echo_cb(self.echo, self.echo.read())
                    continue
                abuf += self.alice.read()
                cut = abuf.rfind(b">")
                if cut < 0:
                    continue
                chunk, abuf = abuf[:cut + 1], abuf[cut + 1:]
                now_ns = time.monotonic_ns()
                tnow = time.monotonic()
                for m in ID_RE.finditer(chunk):
                    inflight -= 1
                    got += 1
                    if tnow >= t_measure:
                        counted += 1
                        lat.append((now_ns - int(m.group(2))) / 1e9)
        # drain what is in flight so the next run starts clean
        deadline = time.monotonic() + 10
        while inflight > 0 and time.monotonic() < deadline:
            self.alice.flush()
            self.echo.flush()
            r, _, _ = select.select(socks, [], [], 0.05)
            for s in r:
                if s is self.echo.s:
                    self.echo_cb(self.echo, self.echo.read())
                else:
                    abuf += self.alice.read()
                    cut = abuf.rfind(b">")
                    if cut >= 0:
                        inflight -= len(ID_RE.findall(abuf[:cut + 1]))
                        abuf = abuf[cut + 1:]
        lat.sort()
        return counted / seconds, lat, seq, got, inflight


def pct(lat, p):
    if not lat:
        return float("nan")
    return lat[min(len(lat) - 1, int(len(lat) * p / 100.0))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--imgwd", default=os.path.join(TOP, "imgwd"))
    ap.add_argument("--connectors", default=os.path.join(TOP, "connectors"))
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--window", type=int, default=200)
    ap.add_argument("--rate", type=float, default=0)
    ap.add_argument("--body", type=int, default=60)
    args = ap.parse_args()

    os.environ["IMGWD"] = os.path.abspath(args.imgwd)
    os.environ["IMGW_CONNECTORS"] = os.path.abspath(args.connectors)
    os.environ["IMGWCTL"] = os.path.join(os.path.dirname(os.environ["IMGWD"]), "imgwctl")
    sys.path[:0] = [os.path.join(TOP, "tests", "integration"),
                    os.path.join(TOP, "tests", "xmpp")]
    import tempfile
    import imgwtest as T
    import xmpptest as X

    if not X.have_prosody():
        print("bench-xmpp: prosody is not installed (Debian package prosody)")
        return 0
    folder = tempfile.mkdtemp(prefix="imgw-bench-xmpp-")
    b = Bench(folder)
    pro = X.Prosody(b, users={"alice": "alice-pw", "carol": "carol-pw"})
    try:
        return run(args, b, T, X, pro)
    finally:
        b._cleanup()
        pro.kill()


def run(args, b, T, X, pro):
    corp = T.free_port()
    conf = X.gateway_config(pro, corp)
    conf["gateway"] = {"log-level": "warning", "queue-size": 2000000}
    gw = T.Gateway(b, conf, name="imgwd")
    b.gateways.append(gw)
    gw.start()
    gw.wait_status(lambda s: gw.community("xmpp", s)["state"] == "running")

    body = ("x" * args.body).encode()
    alice_c = X.Client(b, pro, "alice", "alice-pw", resource="bench")
    carol_c = X.Client(b, pro, "carol", "carol-pw", resource="bench")
    bot = T.Client(b, "tcp:127.0.0.1:%d" % corp)
    bot.bind("bot@corp.example")
    alice_c.quiet(0.3)
    carol_c.quiet(0.1)
    alice = Sock(alice_c.sock)
    carol = Sock(carol_c.sock)
    botsock = Sock(bot.sock)
    alice_full = alice_c.jid.encode()
    botj = X.gwjid("bot@corp.example").encode()

    def to_carol(id_):
        return (b"<message to='carol@xmpp.example/bench' type='chat' id='" +
                id_.encode() + b"'><body>" + body + b"</body></message>")

    def to_bot(id_):
        return (b"<message to='" + botj + b"' type='chat' id='" + id_.encode() +
                b"'><body>" + body + b"</body></message>")

    carol_state = {"buf": b""}

    def carol_echo(s, data):
        buf = carol_state["buf"] + data
        cut = buf.rfind(b">")
        if cut < 0:
            carol_state["buf"] = buf
            return
        for m in ID_RE.finditer(buf, 0, cut + 1):
            s.out += (b"<message to='" + alice_full + b"' type='chat' id='b" +
                      m.group(1) + b"." + m.group(2) + b"'><body>" + body +
                      b"</body></message>")
        carol_state["buf"] = buf[cut + 1:]

    bot_state = {"buf": b""}
    line_head = b'{"type":"message","from":"bot@corp.example","to":"' + \
        alice_full + b'","body":"' + body + b'","id":"b'

    def bot_echo(s, data):
        buf = bot_state["buf"] + data
        cut = buf.rfind(b"\n")
        if cut < 0:
            bot_state["buf"] = buf
            return
        for m in JSON_ID_RE.finditer(buf, 0, cut + 1):
            s.out += line_head + m.group(1) + b"." + m.group(2) + b'"}\n'
        bot_state["buf"] = buf[cut + 1:]

    paths = [Path("reference", alice, carol, to_carol, carol_echo),
             Path("gateway", alice, botsock, to_bot, bot_echo)]
    procs = {"imgwd": gw.pid(), "prosody": pro.proc.pid}
    print("== machine: %d cores, %s; Prosody %s; body %d bytes ==" % (
        os.cpu_count(), T.cpu_model(), "0.12", args.body))

    def measure(p, **kw):
        c0 = {k: cpu_seconds(v) for k, v in procs.items()}
        s0 = self_cpu()
        t0 = time.monotonic()
        rate, lat, sent, got, left = p.run(**kw)
        wall = time.monotonic() - t0
        cpu = {k: cpu_seconds(v) - c0[k] for k, v in procs.items()}
        cpu["client"] = self_cpu() - s0
        return rate, lat, sent, got, left, wall, cpu

    def show(label, p, res):
        rate, lat, sent, got, left, wall, cpu = res
        print("[%-9s %-8s] %8.0f msg/s round trips; latency p50 %.2f ms p90 %.2f "
              "p99 %.2f max %.2f (%d samples); CPU over %.1f s: %s%s" % (
                  p.name, label, rate, pct(lat, 50) * 1e3, pct(lat, 90) * 1e3,
                  pct(lat, 99) * 1e3, (lat[-1] if lat else 0) * 1e3, len(lat), wall,
                  ", ".join("%s %.2f s" % kv for kv in cpu.items()),
                  "" if left == 0 else "; %d not back" % left))
        sys.stdout.flush()

    flat = {}
    for p in paths:
        p.run(seconds=1.0, window=args.window)        # warm-up
        res = measure(p, seconds=args.seconds, window=args.window)
        flat[p.name] = res[0]
        show("flat-out", p, res)
    rate = args.rate or 0.5 * min(flat.values())
    paced = {}
    for p in paths:
        res = measure(p, seconds=args.seconds, rate=rate)
        paced[p.name] = res[1]
        show("%.0f/s" % rate, p, res)
    print("== ratio gateway/reference: throughput %.2f; at %.0f/s p50 latency %.2f, "
          "p99 %.2f ==" % (flat["gateway"] / flat["reference"], rate,
                           pct(paced["gateway"], 50) / pct(paced["reference"], 50),
                           pct(paced["gateway"], 99) / pct(paced["reference"], 99)))
    c = gw.community("xmpp")["counters"]
    print("# connector counters: %s" % json.dumps(c, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
