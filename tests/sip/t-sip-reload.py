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
    # Known gap: the stop fails the MESSAGEs still in flight with 503 even
    # when bob answers them a moment later (no drain of client
    # transactions on stop); the sender then gets service-unavailable for
    # a message that did arrive.  A TODO until the stop drains.
    t.todo(err is None, "no message came back as an error",
           "in-flight MESSAGEs get 503 on stop (no drain)", repr(err))

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
    t.is_(gw.term(), 0, "imgwd exits cleanly on SIGTERM (no leaks under ASan)")


T.Test(alarm=120).run(main)
