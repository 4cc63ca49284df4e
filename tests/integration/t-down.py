#!/usr/bin/env python3
"""Communities that are down: the others run on, queues hold, errors answer.

ghost: its connector .so does not exist (fails to load).  partner: jsonl
whose TCP port is taken, so it fails to start and is retried.  corp runs
all along.  Events for a down community wait in its bounded queue; past
queue-size the sender gets service-unavailable at once; once partner
comes up its queue is delivered; at SIGTERM what is still queued for ghost
is answered.  Every message gets exactly one outcome.
"""

import signal
import socket
import time

import imgwtest as T

ALICE = "alice@corp.example"


def main(t):
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    pport = taken.getsockname()[1]
    gw = T.Gateway(t, {
        "community corp": {
            "connector": "jsonl", "local": True, "domains": "corp.example",
            "listen": "tcp:127.0.0.1:%d" % T.free_port(),
        },
        "community partner": {
            "connector": "jsonl", "domains": "partner.example",
            "listen": "tcp:127.0.0.1:%d" % pport, "queue-size": 5,
        },
        "community ghost": {"connector": "nosuch", "domains": "ghost.example",
                            "queue-size": 3},
    })
    t.gateways.append(gw)
    gw.start(wait=False)
    # wait for the control socket and corp only: partner cannot listen
    deadline = time.monotonic() + 15
    while not (T.probe_addr("unix:" + gw.sock) and T.probe_addr(gw.listen("corp"))):
        if not gw.alive() or time.monotonic() > deadline:
            t.ok(False, "imgwd runs with two communities down", gw.log())
            return
        time.sleep(0.02)
    t.ok(gw.alive(), "imgwd runs with two communities down")

    st = gw.status()
    corp, partner, ghost = (gw.community(n, st) or {} for n in ("corp", "partner", "ghost"))
    t.is_(corp.get("state"), "running", "corp runs on")
    t.ok(ghost.get("state") == "down" and ghost.get("reason"),
         "ghost (no such connector) is down with a reason", ghost)
    t.ok(partner.get("state") in ("down", "starting") and partner.get("reason"),
         "partner (port taken) is down with a reason", partner)
    t.like(gw.log(), "nosuch", "the log names the connector that failed to load")

    alice = t.client(gw.listen("corp"))
    alice.bind(ALICE)

    # partner: 5 wait in its queue, 3 more are refused at once
    for i in range(8):
        alice.send({"type": "message", "from": ALICE, "to": "bob@partner.example",
                    "id": "p%d" % i, "body": "hello %d" % i})
    refused = []
    for _ in range(3):
        e = alice.expect(lambda o: o.get("type") == "error", timeout=5)
        if e is not None:
            refused.append((e.get("id"), e.get("condition")))
    t.is_(refused, [("p5", "service-unavailable"), ("p6", "service-unavailable"),
                    ("p7", "service-unavailable")],
          "past the down community's queue-size: service-unavailable at once")
    t.is_(alice.quiet(0.3), [], "the first 5 wait in the queue, unanswered")
    t.is_((gw.community("partner") or {}).get("queue"), 5, "status shows 5 queued for partner")

    # ghost: a connector that cannot load.  Whether its events wait in
    # the queue (until SIGTERM) or are refused at once, each gets exactly
    # one service-unavailable; the 4th (past queue-size 3) at once.
    for i in range(4):
        alice.send({"type": "message", "from": ALICE, "to": "bot@ghost.example",
                    "id": "g%d" % i, "body": "boo"})
    ghost_errs = {}

    def note(o):
        if o.get("type") == "error" and str(o.get("id", "")).startswith("g"):
            ghost_errs.setdefault(o["id"], []).append(o.get("condition"))
            return True
        return False
    e = alice.expect(lambda o: note(o) and o.get("id") == "g3", timeout=5)
    t.ok(e is not None, "ghost: the message past queue-size is refused at once")
    t.diag("ghost: answered before SIGTERM: %s" % sorted(ghost_errs))

    # partner comes up once its port is free, and its queue is delivered
    taken.close()
    st = gw.wait_status(lambda s: (gw.community("partner", s) or {}).get("state")
                        == "running", timeout=20, interval=0.1)
    t.is_((gw.community("partner", st) or {}).get("state"), "running",
          "partner starts on a retry once its port is free")
    got = []
    for _ in range(5):
        e = alice.expect(lambda o: not note(o) and o.get("type") == "error" and
                         str(o.get("id", "")).startswith("p"), timeout=10)
        if e is not None:
            got.append((e.get("id"), e.get("condition")))
    t.is_(got, [("p%d" % i, "recipient-unavailable") for i in range(5)],
          "the queued events reach partner in order (nobody bound there: "
          "recipient-unavailable)")

    # and partner now routes normally
    bob = t.client(gw.listen("partner"))
    bob.bind("bob@partner.example")
    alice.send({"type": "message", "from": ALICE, "to": "bob@partner.example",
                "id": "live", "body": "up now"})
    m = bob.expect(lambda o: o.get("id") == "live")
    t.is_((m or {}).get("body"), "up now", "partner delivers after its restart")

    # SIGTERM: what ghost may still hold is answered before the connection closes
    gw.signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        o = alice.recv(timeout=1)
        if o is None:
            if alice.eof:
                break
            continue
        if not note(o):
            alice.skipped.append(o)
    t.is_(ghost_errs, {"g%d" % i: ["service-unavailable"] for i in range(4)},
          "each message for the unloadable community got one service-unavailable")
    t.is_(gw.wait(10), 0, "imgwd exits 0")
    stray = [o for o in alice.skipped
             if not (o.get("type") == "error" and str(o.get("id", "")).startswith("g"))]
    t.is_(stray, [], "nothing unexpected arrived")


T.Test().run(main)
