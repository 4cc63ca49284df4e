#!/usr/bin/env python3
"""SIGTERM drains; imgwctl stop and SIGINT stop cleanly.

1. Events accepted and waiting in a queue (the recipient does not read
   yet) when SIGTERM arrives are all delivered or answered with an error,
   exactly once; imgwd exits 0 within seconds and removes its control
   socket.
2. SIGTERM while a client is still streaming: what the gateway took is a
   gap-free prefix of the stream, each delivered or answered exactly once.
3. `imgwctl stop` stops imgwd with exit status 0; so does SIGINT.
"""

import os
import signal
import threading
import time

import imgwtest as T

ALICE = "alice@corp.example"
BOB = "bob@partner.example"


def config(t, queue=None, max_output=4096):
    return {
        "community corp": {
            "connector": "jsonl", "local": True, "domains": "corp.example",
            "listen": "tcp:127.0.0.1:%d" % T.free_port(),
        },
        "community partner": {
            "connector": "jsonl", "domains": "partner.example",
            "listen": "unix:" + t.path("partner-%d.sock" % T.free_port()),
            "max-output": max_output, "queue-size": queue,
        },
    }


def line(i, pad=0):
    return T.json.dumps({"type": "message", "from": ALICE, "to": BOB, "id": str(i),
                         "body": "m%07d%s" % (i, "." * pad)})


class Collector(threading.Thread):
    """Reads a client until EOF or the deadline, keeping every object."""

    def __init__(self, client, deadline, start_event=None):
        super().__init__(daemon=True)
        self.c = client
        self.deadline = deadline
        self.go = start_event
        self.got = []

    def run(self):
        if self.go is not None:
            self.go.wait(max(0, self.deadline - time.monotonic()))
        while time.monotonic() < self.deadline:
            o = self.c.recv(timeout=min(1.0, max(0.01, self.deadline - time.monotonic())))
            if o is None:
                if self.c.eof:
                    return
                continue
            self.got.append(o)

    def count(self, kind):
        return sum(1 for o in list(self.got) if o.get("type") == kind)


def outcome(t, what, delivered, errors, n_sent, prefix_only):
    """Check delivered + errored ids: no duplicates, (a prefix of) 0..n-1."""
    d_ids = [int(o["id"]) for o in delivered if str(o.get("id", "")).isdigit()]
    e_ids = [int(o["id"]) for o in errors if str(o.get("id", "")).isdigit()]
    both = d_ids + e_ids
    t.diag("%s: %d delivered, %d answered with an error, %d sent" %
           (what, len(d_ids), len(e_ids), n_sent))
    conds = sorted(set(o.get("condition") for o in errors))
    if conds:
        t.diag("%s: error conditions %s" % (what, conds))
    t.is_(len(both) - len(set(both)), 0, "%s: nothing delivered or answered twice" % what)
    t.is_(d_ids, sorted(d_ids), "%s: delivered in the order sent" % what)
    k = len(set(both))
    if prefix_only:
        t.is_(sorted(set(both)), list(range(k)),
              "%s: what the gateway took is a gap-free prefix, all of it accounted for" % what)
    else:
        missing = sorted(set(range(n_sent)) - set(both))
        t.is_(missing[:10], [], "%s: every message delivered or answered (%d lost)"
              % (what, len(missing)))
    return k


def part_queued(t):
    """Everything accepted and queued, then SIGTERM, then the reader reads."""
    n = 20000
    gw = t.gateway(config(t, queue=n + 1000), name="queued")
    alice = t.client(gw.listen("corp"))
    alice.bind(ALICE)
    bob = t.client(gw.listen("partner"))
    bob.bind(BOB)
    tx = t.client(gw.listen("corp"))
    deadline = time.monotonic() + 40
    go = threading.Event()
    rx_bob = Collector(bob, deadline, go)		# bob reads only after SIGTERM
    rx_alice = Collector(alice, deadline)
    rx_bob.start()
    rx_alice.start()
    data = "".join(line(i, 200) + "\n" for i in range(n)).encode()
    sender = threading.Thread(target=lambda: tx.send_raw(data), daemon=True)
    sender.start()
    st = gw.wait_status(lambda s: (gw.community("corp", s) or {}).get("counters", {})
                        .get("received", 0) >= n, timeout=30, interval=0.1)
    corp = gw.community("corp", st) or {}
    partner = gw.community("partner", st) or {}
    t.is_(corp.get("counters", {}).get("received"), n,
          "queued: the gateway took all %d messages" % n)
    t.cmp_ok(partner.get("queue", 0), ">", 0,
             "queued: events wait in the partner queue (bob does not read)")
    t.diag("queued: %d events in the partner queue at SIGTERM" % partner.get("queue", 0))
    t0 = time.monotonic()
    gw.signal(signal.SIGTERM)
    time.sleep(0.2)
    go.set()
    rc = gw.wait(20)
    elapsed = time.monotonic() - t0
    t.is_(rc, 0, "queued: SIGTERM exits with status 0")
    t.cmp_ok(elapsed, "<", 8, "queued: imgwd exits within a few seconds")
    t.diag("queued: exit after %.2f s" % elapsed)
    t.ok(not os.path.exists(gw.sock), "queued: the control socket file is removed")
    rx_bob.join(10)
    rx_alice.join(10)
    sender.join(5)
    delivered = [o for o in rx_bob.got if o.get("type") == "message"]
    errors = [o for o in rx_alice.got if o.get("type") == "error"]
    outcome(t, "queued", delivered, errors, n, prefix_only=False)
    t.is_([o for o in rx_bob.got + rx_alice.got if o.get("type") not in ("message", "error")],
          [], "queued: nothing else arrived")


def part_streaming(t):
    """SIGTERM while the client is still writing its burst."""
    n = 20000
    at = 5000		# SIGTERM right after this many are written
    gw = t.gateway(config(t, max_output=None), name="streaming")
    alice = t.client(gw.listen("corp"))
    alice.bind(ALICE)
    bob = t.client(gw.listen("partner"))
    bob.bind(BOB)
    tx = t.client(gw.listen("corp"))
    deadline = time.monotonic() + 40
    rx_bob = Collector(bob, deadline)
    rx_alice = Collector(alice, deadline)
    rx_bob.start()
    rx_alice.start()
    sent = {"n": 0, "t0": None}

    def sender():
        try:
            for i in range(0, n, 100):
                tx.send_raw("".join(line(j) + "\n" for j in range(i, i + 100)).encode())
                sent["n"] = i + 100
                if sent["n"] == at:
                    sent["t0"] = time.monotonic()
                    gw.signal(signal.SIGTERM)
        except OSError:
            pass

    th = threading.Thread(target=sender, daemon=True)
    th.start()
    rc = gw.wait(20)
    elapsed = time.monotonic() - (sent["t0"] or 0)
    th.join(10)
    t.diag("streaming: SIGTERM after %d written; the client wrote %d in all"
           % (at, sent["n"]))
    t.is_(rc, 0, "streaming: SIGTERM exits with status 0")
    t.cmp_ok(elapsed, "<", 8, "streaming: imgwd exits within a few seconds")
    t.ok(not os.path.exists(gw.sock), "streaming: the control socket file is removed")
    rx_bob.join(10)
    rx_alice.join(10)
    delivered = [o for o in rx_bob.got if o.get("type") == "message"]
    errors = [o for o in rx_alice.got if o.get("type") == "error"]
    k = outcome(t, "streaming", delivered, errors, n, prefix_only=True)
    t.cmp_ok(k, ">", 0, "streaming: the gateway took part of the burst")


def part_stop(t):
    gw = t.gateway(config(t), name="stop")
    rc, out, err = gw.ctl("stop")
    t.is_(rc, 0, "imgwctl stop exits 0")
    t.is_(gw.wait(10), 0, "imgwctl stop: imgwd exits with status 0")
    t.ok(not os.path.exists(gw.sock), "imgwctl stop: the control socket file is removed")
    rc, out, err = gw.ctl("status")
    t.is_(rc, 3, "imgwctl status after stop: exit 3 (not running)")

    gw = t.gateway(config(t), name="sigint")
    gw.signal(signal.SIGINT)
    t.is_(gw.wait(10), 0, "SIGINT: imgwd exits with status 0")
    t.ok(not os.path.exists(gw.sock), "SIGINT: the control socket file is removed")


def main(t):
    part_queued(t)
    part_streaming(t)
    part_stop(t)


T.Test(alarm=180).run(main)
