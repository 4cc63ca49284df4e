"""What the store tests share: a gateway with two jsonl communities and a
store, traffic with the traces the receiver saw, and the audit log as
imgwctl reads it back."""

import json
import os
import subprocess
import threading
import time

import imgwtest as T


def config(t, store=None, extra=None, substest=False):
    """Two jsonl communities (corp local, partner) on free ports, [store]
    as given, optionally a substest community (subs.example)."""
    conf = {
        "gateway": {"queue-size": 100000},
        "community corp": {"connector": "jsonl", "local": True,
                           "domains": "corp.example",
                           "listen": "tcp:127.0.0.1:%d" % T.free_port()},
        "community partner": {"connector": "jsonl",
                              "domains": "partner.example",
                              "listen": "tcp:127.0.0.1:%d" % T.free_port()},
    }
    if substest:
        conf["community subs"] = {"connector": "substest",
                                  "domains": "subs.example"}
    if store is not None:
        conf["store"] = dict(store)
    if extra:
        conf.update(extra)
    return conf


def connectors_dir(t):
    """The build tree's connectors plus the substest test connector."""
    d = t.path("connectors")
    if not os.path.isdir(d):
        os.makedirs(d)
        for n in os.listdir(T.CONNECTORS):
            os.symlink(os.path.join(os.path.abspath(T.CONNECTORS), n),
                       os.path.join(d, n))
        so = os.path.join(T.BUILDDIR, "tests", "store", ".libs", "substest.so")
        if os.path.exists(so):
            os.symlink(so, os.path.join(d, "substest.so"))
    return d


class Traffic:
    """alice@corp.example sends messages to bob@partner.example; bob's
    client collects the traces of what arrives."""

    def __init__(self, t, gw):
        self.t = t
        self.gw = gw
        self.connect()
        self.sent = 0
        self.traces = set()
        self.errors = 0

    def connect(self):
        self.alice = self.t.client(self.gw.listen("corp"))
        self.alice.bind("alice@corp.example")
        self.bob = self.t.client(self.gw.listen("partner"))
        self.bob.bind("bob@partner.example")

    def send(self, n, rate=None):
        start = time.monotonic()
        for i in range(n):
            self.sent += 1
            try:
                self.alice.send({"type": "message", "from": "alice@corp.example",
                                 "to": "bob@partner.example",
                                 "id": "m%d" % self.sent,
                                 "body": "hello %d" % self.sent})
            except OSError:
                return False
            if rate:
                ahead = start + (i + 1) / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
        return True

    def collect(self, timeout=5, want=None):
        """Read what bob got until quiet (or `want` traces in all)."""
        while True:
            o = self.bob.recv(timeout)
            if o is None:
                return len(self.traces)
            if o.get("type") == "message" and o.get("trace"):
                self.traces.add(o["trace"])
            elif o.get("type") == "error":
                self.errors += 1
            if want is not None and len(self.traces) >= want:
                return len(self.traces)


def audit_rows(gw, extra=()):
    """The audit log as imgwctl log query --json reads it (all of it)."""
    rc, out, err = gw.ctl("-c", gw.conf_path, "log", "query", "--json",
                          "--limit", "10000000", *extra, sock=False,
                          timeout=120)
    if rc != 0:
        raise RuntimeError("imgwctl log query: %d %s" % (rc, err))
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def audit(gw):
    return gw.status().get("audit", {})


def wait_written(gw, timeout=60):
    """Wait until the audit has nothing pending; returns its status."""
    deadline = time.monotonic() + timeout
    while True:
        a = audit(gw)
        if a.get("pending", 1) == 0 and a.get("queued", 1) == 0:
            return a
        if time.monotonic() > deadline:
            return a
        time.sleep(0.1)


def ctl(gw, *args):
    return gw.ctl("-c", gw.conf_path, *args, sock=False, timeout=120)


def once_each(t, rows, traces, what):
    """Every trace bob received is in the log, and none twice."""
    seen = {}
    for r in rows:
        seen[r["trace"]] = seen.get(r["trace"], 0) + 1
    twice = [k for k, v in seen.items() if v > 1]
    missing = [k for k in traces if k not in seen]
    t.ok(not twice, "%s: no audit record twice" % what,
         "%d traces twice, e.g. %s" % (len(twice), twice[:5]))
    t.ok(not missing, "%s: every delivered message has its record (%d)"
         % (what, len(traces)),
         "%d missing, e.g. %s" % (len(missing), missing[:5]))


def subs_roundtrip(t, dsn, what):
    """Subscriptions through substest, then a restart reads them back."""
    store = {"flush-ms": 50}
    if dsn is not None:
        store["dsn"] = dsn
    gw = t.gateway(config(t, store, substest=True), name="subs-" + what,
                   connectors=connectors_dir(t), start=False)
    gw.write_config(config(t, store, substest=True))
    if dsn is not None:
        rc, out, err = ctl(gw, "db", "init")
        if rc != 0 and "already has" not in err:
            t.ok(False, "%s: db init" % what, err)
    gw.start()
    c = gw.community("subs")
    if c is None or c.get("state") != "running":
        t.ok(False, "%s: the substest connector runs" % what, repr(c))
        return
    t.ok(True, "%s: the substest connector (ABI 1.1) runs" % what)
    alice = t.client(gw.listen("corp"))
    alice.bind("alice@corp.example")
    for w in ("alice@corp.example",):
        for p in ("x@subs.example", "y@subs.example", "z@subs.example"):
            alice.send({"type": "subscribe", "from": w, "to": p})
    alice.send({"type": "subscribed", "from": "alice@corp.example",
                "to": "x@subs.example"})
    alice.send({"type": "unsubscribe", "from": "alice@corp.example",
                "to": "z@subs.example"})
    st = gw.wait_status(lambda s: gw.community("subs", s)["counters"].get(
        "stored", 0) >= 5 and s["store"].get("jobs_queued", 1) == 0)
    t.is_(gw.community("subs", st)["counters"].get("stored"), 5,
          "%s: five changes handed to the store" % what)
    t.is_(st["store"].get("sub_failed"), 0, "%s: none failed" % what)
    t.is_(gw.term(), 0, "%s: stopped" % what)
    gw.start()
    st = gw.wait_status(lambda s: gw.community("subs", s)["counters"].get(
        "listed", 0) >= 1)
    ctr = gw.community("subs", st)["counters"]
    # alice -> x and y pending (z removed), x -> alice active
    t.is_(ctr.get("restored"), 3, "%s: after the restart three subscriptions "
          "are known" % what)
    t.is_(ctr.get("restored.pending"), 2, "%s: two pending" % what)
    t.is_(ctr.get("restored.active"), 1, "%s: one active" % what)
    log = gw.log()
    t.like(log, "restored x@subs.example -> alice@corp.example active "
           "expires=4102444800000 data={\"dialog\":\"x\\u00e9\"}",
           "%s: state, expiry and opaque data kept" % what)
    t.like(log, "restored alice@corp.example -> y@subs.example pending "
           "expires=0 data=(null)", "%s: no expiry, no data" % what)
    t.is_(gw.term(), 0, "%s: stopped again" % what)
