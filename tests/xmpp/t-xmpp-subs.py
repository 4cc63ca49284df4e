#!/usr/bin/env python3
"""Subscriptions (RFC 6121) kept in the store survive a restart of imgwd,
and the gateway answers from them (plugins/xmpp/subs.c).

A private Prosody (alice, carol), imgwd with the XMPP community in
component mode and the jsonl user bob@corp.example, on the default SQLite
store of the gateway:

1. alice -> bob and bob -> alice subscriptions are requested and approved
   through imgwd (both directions, real roster pushes from Prosody);
2. imgwd is stopped (SIGTERM) and started again on the same store;
3. a second subscribe from alice is answered "subscribed" by the gateway
   with the id of the request, and bob's jsonl line sees nothing; the same
   the other way: bob's second subscribe is answered and alice sees no
   request;
4. probes: alice's new login makes Prosody probe bob (a subscription is
   active): answered with unavailable (no presence known since the
   restart) and forwarded so bob can answer; after bob's presence an
   explicit probe is answered with that presence; carol, without a
   subscription, is answered unavailable and bob sees no probe;
5. unsubscribe forgets it: a new subscribe after that crosses again.
"""

import time

import imgwtest as T
import xmpptest as X
from xmpptest import C

BOB = "bob@corp.example"
ALICE = "alice@xmpp.example"
CAROL = "carol@xmpp.example"
BOBJ = X.gwjid(BOB)


def bare(j):
    return (j or "").split("/", 1)[0]


def pres(kind=None, frm=BOBJ, id_=None):
    """A presence stanza of type kind (None: available) from frm."""
    return lambda e: (e.tag == C("presence") and e.get("type") == kind and
                      bare(e.get("from")) == frm and
                      (id_ is None or e.get("id") == id_))


def roster_push(jid, subs):
    def pred(e):
        if e.tag != C("iq") or e.get("type") != "set":
            return False
        return any(i.get("jid") == jid and i.get("subscription") in subs
                   for i in e.iter("{jabber:iq:roster}item"))
    return pred


def kinds(objs):
    return [o.get("type") for o in objs]


def wait_stored(gw, n):
    """Until n subscription writes were handed to the store and it is idle."""
    return gw.wait_status(lambda s: gw.community("xmpp", s)["counters"].get(
        "subscriptions-stored", 0) >= n and s["store"].get("jobs_queued", 1) == 0,
        timeout=10)


def wait_log(srv, parts, timeout=5):
    """Until a line of srv's log holds every string of parts."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(all(p in line for p in parts) for line in srv.log().splitlines()):
            return True
        time.sleep(0.05)
    return False


def main(t):
    if not X.have_prosody():
        t.ok(True, "# SKIP prosody is not installed")
        return
    pro = X.Prosody(t, users={"alice": "alice-pw", "carol": "carol-pw"})
    corp = T.free_port()
    gw = t.gateway(X.gateway_config(pro, corp), name="gw-subs")
    gw.wait_status(lambda s: gw.community("xmpp", s)["state"] == "running", timeout=10)
    t.like(gw.log(), "0 subscriptions known from the store",
           "the connector read the (empty) store before connecting")
    bob = t.client("tcp:127.0.0.1:%d" % corp)
    bob.bind(BOB)
    alice = X.Client(t, pro, "alice", "alice-pw", resource="desk")

    # --- 1. both directions, through imgwd ---------------------------------
    alice.send(X.stanza("presence", {"to": BOBJ, "type": "subscribe", "id": "s-1"}))
    got = bob.expect(lambda o: o.get("type") == "subscribe")
    t.ok(got is not None and bare(got.get("from")) == ALICE and got.get("to") == BOB,
         "subscribe alice -> bob reaches the jsonl side", repr(got))
    bob.send({"type": "subscribed", "from": BOB, "to": ALICE, "id": "s-2"})
    t.ok(alice.expect(roster_push(BOBJ, ("to", "both"))) is not None,
         "bob's approval reaches Prosody: alice's roster says 'to'")
    bob.send({"type": "subscribe", "from": BOB, "to": ALICE, "id": "s-3"})
    got = alice.expect(pres("subscribe"))
    t.ok(got is not None, "subscribe bob -> alice reaches alice")
    alice.send(X.stanza("presence", {"to": BOBJ, "type": "subscribed", "id": "s-4"}))
    got = bob.expect(lambda o: o.get("type") == "subscribed")
    t.ok(got is not None and bare(got.get("from")) == ALICE,
         "alice's approval reaches bob", repr(got))
    st = wait_stored(gw, 4)
    ctr = gw.community("xmpp", st)["counters"]
    t.is_(ctr.get("subscriptions-stored"), 4,
          "four writes: two requests (pending), two approvals (active)")
    t.is_(st["store"].get("sub_failed", 0), 0, "no store write failed")

    # --- 2. restart ------------------------------------------------------------
    bob.close()
    t.is_(gw.term(), 0, "imgwd stops on SIGTERM")
    gw.start()
    st = gw.wait_status(lambda s: gw.community("xmpp", s)["state"] == "running",
                        timeout=10)
    t.is_(gw.community("xmpp", st)["state"], "running", "imgwd is back")
    t.like(gw.log(), "2 subscriptions known from the store",
           "after the restart both subscriptions are known")
    t.is_(gw.community("xmpp", st)["counters"].get("subscriptions-restored"), 2,
          "two restored")
    bob = t.client("tcp:127.0.0.1:%d" % corp)
    bob.bind(BOB)

    # --- 3. a second subscribe is answered from the store ------------------------
    alice.send(X.stanza("presence", {"to": BOBJ, "type": "subscribe", "id": "again-1"}))
    # Prosody takes the answer but, alice's roster already saying 'to',
    # passes nothing on to her (RFC 6121 3.1.6): its log is the witness
    want = ["Received[component]: <presence ", "id='again-1'", "type='subscribed'",
            "from='%s'" % BOBJ, "to='%s'" % ALICE]
    t.ok(wait_log(pro, want), "alice's second subscribe is answered 'subscribed' by "
         "the gateway (Prosody receives it, with the request's id)")
    seen = bob.quiet(1.0)
    t.is_(kinds(seen), [], "the jsonl side sees nothing of it")
    bob.send({"type": "subscribe", "from": BOB, "to": ALICE, "id": "again-2"})
    got = bob.expect(lambda o: o.get("type") == "subscribed")
    t.ok(got is not None and bare(got.get("from")) == ALICE and got.get("id") == "again-2",
         "bob's second subscribe is answered 'subscribed' from alice", repr(got))
    got = alice.expect(pres("subscribe"), timeout=1.0)
    t.ok(got is None, "alice is not asked again")
    ctr = gw.community("xmpp")["counters"]
    t.is_(ctr.get("subscribes-answered"), 2, "two subscribes answered by the gateway")

    # --- 4. probes ---------------------------------------------------------------------
    alice2 = X.Client(t, pro, "alice", "alice-pw", resource="phone")
    got = alice2.expect(pres("unavailable"))
    t.ok(got is not None, "alice's login probe for bob (subscription active, no "
         "presence known since the restart) is answered: unavailable")
    got = bob.expect(lambda o: o.get("type") == "probe")
    t.ok(got is not None and bare(got.get("from")) == ALICE,
         "and the probe is forwarded, so bob can answer", repr(got))
    bob.send({"type": "presence", "from": BOB + "/laptop", "to": ALICE,
              "id": "p-1", "show": "away", "status": "at lunch", "priority": 2})
    got = alice2.expect(pres(None, id_="p-1"))
    t.ok(got is not None, "bob's presence reaches alice")
    alice2.skipped = []
    alice2.send(X.stanza("presence", {"to": BOBJ, "type": "probe", "id": "pr-1"}))
    got = alice2.expect(lambda e: pres(None)(e) and e.get("id") is None)
    t.ok(got is not None and got.get("from") == BOBJ + "/laptop" and
         X.text_of(got, "show") == "away" and X.text_of(got, "status") == "at lunch"
         and X.text_of(got, "priority") == "2",
         "a probe is answered with bob's last presence (resource, show, status, "
         "priority)", repr(got is not None and X.ET.tostring(got)))
    got = bob.expect(lambda o: o.get("type") == "probe")
    t.ok(got is not None, "and forwarded too")

    carol = X.Client(t, pro, "carol", "carol-pw", resource="c")
    carol.send(X.stanza("presence", {"to": BOBJ, "type": "probe", "id": "pr-2"}))
    got = carol.expect(pres("unavailable"))
    t.ok(got is not None, "carol (no subscription) is answered unavailable")
    seen = bob.quiet(1.0)
    t.is_([o for o in seen if o.get("type") == "probe"], [],
          "bob sees no probe from carol")
    t.ok("at lunch" not in repr([X.ET.tostring(e) for e in carol.skipped]),
         "carol learns nothing of bob's presence")

    # --- 5. unsubscribe forgets it -----------------------------------------------------------
    alice.send(X.stanza("presence", {"to": BOBJ, "type": "unsubscribe", "id": "u-1"}))
    got = bob.expect(lambda o: o.get("type") == "unsubscribe")
    t.ok(got is not None, "unsubscribe crosses")
    gw.wait_status(lambda s: gw.community("xmpp", s)["counters"].get(
        "subscriptions-deleted", 0) >= 1, timeout=5)
    alice.send(X.stanza("presence", {"to": BOBJ, "type": "subscribe", "id": "s-9"}))
    got = bob.expect(lambda o: o.get("type") == "subscribe")
    t.ok(got is not None and got.get("id") == "s-9",
         "after it a subscribe crosses again (asks bob)", repr(got))
    t.ok(gw.alive(), "imgwd is alive")
    t.is_(gw.term(), 0, "imgwd exits cleanly on SIGTERM (a sanitizer build fails "
          "here on a leak)")


T.Test(alarm=120).run(main)
