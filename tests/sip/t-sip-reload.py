#!/usr/bin/env python3
"""SIGHUP that changes the SIP community's options restarts only it.

imgwd with the jsonl community corp.example and the SIP community, whose
route for sip.example is a raw UDP endpoint (bob).  bob SUBSCRIBEs to
alice@corp.example and alice accepts (NOTIFY active).  Then, while alice
sends a stream of messages to bob, the SIP community's max-pending changes
and imgwd gets SIGHUP:

- the core restarts the SIP community alone ("1 kept, 1 restarted"; only
  sipc in the "restarting" line), alice's jsonl connection is not touched;
- every message alice sent reaches bob (the ones sent during the restart
  wait in the core's queue), none is answered with an error;
- bob's subscription survived through the store: once restored, imgwd
  probes alice on bob's behalf and her answer reaches bob as a NOTIFY in
  the same dialog (Call-ID, tags) with the current state in PIDF.
"""

import re
import signal
import threading
import time

import siptest as S
import imgwtest as T

N = 60


def main(t):
    ep = S.Endpoint("udp")
    sip = {"route": "sip.example=udp:127.0.0.1:%d" % ep.port, "max-pending": "4096"}
    gw = S.gateway(t, sip)
    alice = t.client(gw.listen("corp"))
    alice.bind("alice@corp.example")
    contact = "Contact: <sip:bob@127.0.0.1:%d>" % ep.port

    sub = S.request("SUBSCRIBE", "sip:alice@corp.example", ep, body=b"",
                    headers=["Event: presence", "Expires: 600", contact,
                             "Accept: application/pidf+xml"], callid="sub-r@t")
    ep.send(sub, gw.sip_port)
    r = ep.recv()
    t.is_(r and r[0], 200, "SUBSCRIBE: 200")
    got = alice.expect({"type": "subscribe"})
    t.ok(got is not None, "alice gets the subscribe")
    alice.send({"type": "subscribed", "to": "bob@sip.example"})
    ltag = None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        m = ep.recv(1)
        if m and m[0] == "NOTIFY":
            ep.send(S.answer(m, 200, "OK"), gw.sip_port)
            if "active" in m[1].get("subscription-state", ""):
                ltag = re.search(r"tag=([^;>\s]+)", m[1]["from"]).group(1)
                break
    t.ok(ltag is not None, "NOTIFY active before the reload")

    ids = ["r-%03d" % i for i in range(N)]
    state = {"error": None}

    def sender():
        try:
            for id_ in ids:
                alice.send({"type": "message", "to": "bob@sip.example", "id": id_,
                            "body": "body " + id_})
                time.sleep(0.02)
        except Exception as ex:
            state["error"] = repr(ex)

    th = threading.Thread(target=sender, daemon=True)
    th.start()
    time.sleep(0.3)
    conf = gw.sections()
    conf["community sipc"]["max-pending"] = "4000"
    gw.write_config(conf)
    gw.hup()

    bodies = set()
    deadline = time.monotonic() + 30
    while len(bodies) < N and time.monotonic() < deadline:
        m = ep.recv(1)
        if m is None:
            continue
        if m[0] in ("MESSAGE", "NOTIFY"):
            ep.send(S.answer(m, 200, "OK"), gw.sip_port)
        if m[0] == "MESSAGE":
            bodies.add(m[2].decode("utf-8", "replace"))
    th.join(10)
    t.ok(state["error"] is None, "alice sent all %d messages on the same connection"
         % N, state["error"])
    missing = [i for i in ids if "body " + i not in bodies]
    t.ok(not missing, "every message reached bob across the restart",
         "missing %d: %s" % (len(missing), missing[:20]))
    seen = []		# everything alice got meanwhile (the probe may be there)
    alice.expect(lambda e: seen.append(e) and False, timeout=1)
    err = next((e for e in seen if e.get("type") == "error"), None)
    # the MESSAGEs in flight at the restart get bob's answers (quiesce)
    # instead of a 503 for a message that did arrive
    t.ok(err is None, "no message came back as an error", repr(err))

    st = gw.wait_status(lambda s: s.get("reloads", 0) >= 1 and
                        gw.community("sipc", s)["state"] == "running", timeout=10)
    t.is_(gw.community("sipc", st)["state"], "running", "the SIP community runs again")
    log = gw.log()
    t.like(log, "1 kept, 1 restarted", "the reload kept one community, restarted one")
    restarts = [l for l in log.splitlines() if "restarting (configuration changed)" in l]
    t.ok(len(restarts) == 1 and "sipc" in restarts[0] and "corp" not in restarts[0],
         "only the SIP community restarted", repr(restarts))
    t.ok(alice.alive(), "alice's jsonl connection survived")

    # the subscription came back from the store: imgwd probes alice for
    # bob, and her answer reaches bob as a NOTIFY in the old dialog
    pr = next((e for e in seen if e.get("type") == "probe"), None) or \
        alice.expect({"type": "probe"}, timeout=5)
    t.is_(pr and pr.get("from"), "bob@sip.example",
          "the restored subscription probes alice on bob's behalf")
    alice.send({"type": "presence", "to": "bob@sip.example", "show": "dnd",
                "status": "after the reload"})
    n = None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        m = ep.recv(1)
        if m and m[0] == "NOTIFY":
            ep.send(S.answer(m, 200, "OK"), gw.sip_port)
            if b"after the reload" in m[2]:
                n = m
                break
    t.ok(n is not None, "alice's presence after the restart reaches bob as a NOTIFY")
    t.is_(n and n[1].get("call-id"), "sub-r@t", "in the subscription's dialog (Call-ID)")
    t.like(n and n[1].get("from") or "", "tag=" + (ltag or "?"),
           "with the same local tag")
    t.like(n and n[2].decode() or "", "<rpid:busy/>", "carrying the PIDF (dnd -> busy)")

    late_answer(t, gw, ep, alice)
    late_answer_at_removal(t, gw, ep, alice)
    late_answer_at_shutdown(t, gw, ep, alice)


def unanswered(t, ep, alice, body):
    """alice sends `body` to bob; bob's copy of the MESSAGE, unanswered."""
    alice.send({"type": "message", "to": "bob@sip.example", "id": body,
                "body": body})
    m = None
    deadline = time.monotonic() + 5
    while m is None and time.monotonic() < deadline:
        r = ep.recv(1)
        if r and r[0] == "MESSAGE" and body.encode() in r[2]:
            m = r
    t.ok(m is not None, "bob has the MESSAGE %r (not answered yet)" % body)
    return m


def no_error(t, alice, what):
    seen = []
    alice.expect(lambda e: seen.append(e) and False, timeout=1)
    err = next((e for e in seen if e.get("type") == "error"), None)
    t.ok(err is None, what, repr(err))


def late_answer(t, gw, ep, alice):
    """A MESSAGE bob answers only after the restart began: the restart
    waits for the answer (quiesce) and alice gets no error."""
    m = unanswered(t, ep, alice, "answered late")
    conf = gw.sections()
    conf["community sipc"]["max-pending"] = "4001"
    gw.write_config(conf)
    gw.hup()
    gw.wait_log("waiting (at most 10000 ms) for the work in flight", timeout=5)
    time.sleep(0.5)			# the restart waits meanwhile
    t.is_(gw.community("sipc", gw.status())["state"], "quiescing",
          "the SIP community waits for bob's answer (state quiescing)")
    ep.send(S.answer(m, 200, "OK"), gw.sip_port)
    st = gw.wait_status(lambda s: s.get("reloads", 0) >= 2 and
                        gw.community("sipc", s)["state"] == "running", timeout=10)
    t.is_(gw.community("sipc", st)["state"], "running",
          "then it restarts and runs")
    t.like(gw.log(), "work in flight finished", "the log says why it went on")
    no_error(t, alice, "the late-answered MESSAGE is not an error for alice")


def late_answer_at_removal(t, gw, ep, alice):
    """The SIP community leaves the configuration while bob has not
    answered: it is unloaded after his answer; then it comes back."""
    m = unanswered(t, ep, alice, "answered at removal")
    conf = gw.sections()
    sipc = conf.pop("community sipc")
    gw.write_config(conf)
    gw.hup()
    gw.wait_log("waiting (at most 10000 ms) for the work in flight", timeout=5,
                count=2)
    time.sleep(0.3)
    t.ok("unloading" not in gw.log(),
         "the removed community is not unloaded before bob answers")
    ep.send(S.answer(m, 200, "OK"), gw.sip_port)
    gw.wait_log("work in flight finished", timeout=5, count=2)
    gw.wait_log("unloading", timeout=5)
    no_error(t, alice, "the MESSAGE answered during the removal is not an error")
    conf["community sipc"] = sipc
    gw.write_config(conf)
    gw.hup()
    st = gw.wait_status(lambda s: any(c.get("name") == "sipc" and
                                      c.get("state") == "running"
                                      for c in s.get("communities", [])), timeout=10)
    t.is_(gw.community("sipc", st)["state"], "running", "the SIP community is back")


def late_answer_at_shutdown(t, gw, ep, alice):
    """SIGTERM while bob has not answered: imgwd waits for his answer."""
    m = unanswered(t, ep, alice, "answered at shutdown")
    gw.signal(signal.SIGTERM)
    gw.wait_log("waiting (at most 10000 ms) for the work in flight", timeout=10,
                count=3)
    t.ok(gw.alive(), "imgwd waits for bob's answer before it exits")
    ep.send(S.answer(m, 200, "OK"), gw.sip_port)
    no_error(t, alice, "the MESSAGE answered during shutdown is not an error")
    t.is_(gw.wait(10), 0, "imgwd exits cleanly on SIGTERM (no leaks under ASan)")


T.Test(alarm=120).run(main)
