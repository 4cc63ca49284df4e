#!/usr/bin/env python3
"""Routing between two jsonl communities through the real imgwd.

corp (local, TCP) and partner (UNIX socket): messages, presence,
subscriptions and chat states both ways with every field intact and a
trace; router errors (unknown domain, own community, nobody bound) come
back to the sender with the event's id; counters move; an identical
presence is damped.
"""

import imgwtest as T


def bare(addr):
    return (addr or "").split("/", 1)[0]


def check_event(t, got, sent, what):
    """got carries every field of sent (except none) plus a trace."""
    if not t.ok(got is not None, "%s arrives" % what):
        return
    diffs = ["%s: sent %r, got %r" % (k, v, got.get(k))
             for k, v in sent.items() if got.get(k) != v]
    t.ok(not diffs, "%s arrives with every field intact" % what,
         "\n".join(diffs) + "\nreceived: %r" % (got,))
    tr = got.get("trace")
    t.ok(isinstance(tr, str) and tr != "", "%s carries a trace" % what,
         "trace: %r" % (tr,))


def check_error(t, got, sender, id_, condition, what):
    if not t.ok(got is not None, "%s: an error comes back to the sender" % what):
        return
    t.is_(got.get("condition"), condition, "%s: condition %s" % (what, condition))
    t.is_(got.get("id"), id_, "%s: the error has the event's id" % what)
    t.is_(bare(got.get("to")), sender, "%s: the error is addressed to the sender" % what)
    tr = got.get("trace")
    t.ok(isinstance(tr, str) and tr != "", "%s: the error carries a trace" % what,
         "error: %r" % (got,))


def is_type(kind, id_=None):
    return lambda o: o.get("type") == kind and (id_ is None or o.get("id") == id_)


def main(t):
    port = T.free_port()
    gw = t.gateway({
        "community corp": {
            "connector": "jsonl", "local": True, "domains": "corp.example",
            "listen": "tcp:127.0.0.1:%d" % port,
        },
        "community partner": {
            "connector": "jsonl", "domains": "partner.example",
            "listen": "unix:" + t.path("partner.sock"),
        },
    })

    alice = t.client(gw.listen("corp"))
    bob = t.client(gw.listen("partner"))
    t.is_(alice.bind("alice@corp.example").get("user"), "alice@corp.example",
          "bind answers bound with the user")
    bob.bind("bob@partner.example")
    st0 = gw.status()
    routed0 = st0["counters"].get("routed", 0)

    # --- messages ------------------------------------------------------
    m1 = {"type": "message", "from": "alice@corp.example/desk",
          "to": "bob@partner.example", "id": "m1", "thread": "th-1",
          "subject": "Quarterly \"numbers\"", "lang": "de",
          "body": "Gr\u00fc\u00dfe, Bob \u2713 \U0001F600\nzweite Zeile\ttab \\ slash /"}
    alice.send(m1)
    check_event(t, bob.expect(is_type("message", "m1")), m1, "message corp -> partner")

    m2 = {"type": "message", "from": "bob@partner.example/phone",
          "to": "alice@corp.example/desk", "id": "m2", "thread": "th-1",
          "subject": "Re: numbers", "lang": "en", "body": "Thanks \u2014 got them."}
    bob.send(m2)
    check_event(t, alice.expect(is_type("message", "m2")), m2, "message partner -> corp")

    # a message without the optional fields: none invented on the way
    m3 = {"type": "message", "from": "alice@corp.example",
          "to": "bob@partner.example", "body": "plain"}
    alice.send(m3)
    got = bob.expect(is_type("message"))
    check_event(t, got, m3, "bare message corp -> partner")
    if got is not None:
        extra = sorted(k for k in got
                       if k not in m3 and k not in ("trace", "content_type"))
        t.is_(extra, [], "bare message gains no fields but trace")

    # --- presence ------------------------------------------------------
    p1 = {"type": "presence", "from": "alice@corp.example/desk",
          "to": "bob@partner.example", "show": "away", "status": "at lunch",
          "priority": 5}
    alice.send(p1)
    check_event(t, bob.expect(is_type("presence")), p1, "presence corp -> partner")

    p2 = {"type": "presence", "from": "bob@partner.example",
          "to": "alice@corp.example", "show": "dnd", "status": "in a meeting",
          "priority": -3, "lang": "en"}
    bob.send(p2)
    check_event(t, alice.expect(is_type("presence")), p2, "presence partner -> corp")

    p3 = {"type": "presence", "from": "bob@partner.example",
          "to": "alice@corp.example", "show": "unavailable"}
    bob.send(p3)
    check_event(t, alice.expect(is_type("presence")), p3,
                "unavailable presence partner -> corp")

    # --- subscriptions -------------------------------------------------
    seq = [
        (alice, bob, "subscribe", "alice@corp.example", "bob@partner.example"),
        (bob, alice, "subscribed", "bob@partner.example", "alice@corp.example"),
        (alice, bob, "probe", "alice@corp.example", "bob@partner.example"),
        (alice, bob, "unsubscribe", "alice@corp.example", "bob@partner.example"),
        (bob, alice, "unsubscribed", "bob@partner.example", "alice@corp.example"),
        (bob, alice, "subscribe", "bob@partner.example", "alice@corp.example"),
    ]
    for snd, rcv, kind, frm, to in seq:
        ev = {"type": kind, "from": frm, "to": to, "id": "s-" + kind}
        snd.send(ev)
        check_event(t, rcv.expect(is_type(kind)), ev,
                    "%s %s -> %s" % (kind, frm.split("@")[1], to.split("@")[1]))

    # --- message types --------------------------------------------------
    mh = {"type": "message", "from": "alice@corp.example", "to": "bob@partner.example",
          "id": "m-head", "body": "news", "message_type": "headline"}
    alice.send(mh)
    check_event(t, bob.expect(is_type("message", "m-head")), mh, "a headline message keeps its type")
    alice.send({"type": "message", "from": "alice@corp.example", "to": "bob@partner.example",
                "id": "m-bad", "body": "x", "message_type": "groupchat"})
    err = alice.expect(is_type("error"))
    t.is_((err or {}).get("condition"), "bad-request", "an unknown message type is refused")

    # --- chat states ---------------------------------------------------
    c1 = {"type": "chatstate", "from": "alice@corp.example",
          "to": "bob@partner.example", "state": "composing", "thread": "th-1"}
    alice.send(c1)
    check_event(t, bob.expect(is_type("chatstate")), c1, "chatstate corp -> partner")
    c2 = {"type": "chatstate", "from": "bob@partner.example",
          "to": "alice@corp.example", "state": "paused"}
    bob.send(c2)
    check_event(t, alice.expect(is_type("chatstate")), c2, "chatstate partner -> corp")

    st1 = gw.status()
    t.cmp_ok(st1["counters"].get("routed", 0) - routed0, "==", 15,
             "counter routed moved by the 15 events routed")

    # --- router errors -------------------------------------------------
    alice.send({"type": "message", "from": "alice@corp.example",
                "to": "someone@nowhere.example", "id": "e-unknown", "body": "hello?"})
    err = alice.expect(is_type("error"))
    check_error(t, err, "alice@corp.example",
                "e-unknown", "remote-server-not-found", "unknown domain")
    t.is_((err or {}).get("answers"), "message", "the error says it answers a message")
    tr = (err or {}).get("trace") or "<no trace>"
    T.time.sleep(0.2)
    t.ok(tr in gw.log(), "the error's trace id is in the gateway's log line about it",
         "trace %r not in the log" % tr)

    alice.send({"type": "message", "from": "alice@corp.example",
                "to": "carol@corp.example", "id": "e-own", "body": "next door"})
    check_error(t, alice.expect(is_type("error")), "alice@corp.example",
                "e-own", "not-allowed", "message into the sender's own community")

    alice.send({"type": "message", "from": "alice@corp.example",
                "to": "nobody@partner.example", "id": "e-nobody", "body": "anyone?"})
    check_error(t, alice.expect(is_type("error")), "alice@corp.example",
                "e-nobody", "recipient-unavailable", "partner user nobody bound")

    # the partner side gets errors the same way
    bob.send({"type": "subscribe", "from": "bob@partner.example",
              "to": "x@unknown.example", "id": "e-bob"})
    check_error(t, bob.expect(is_type("error")), "bob@partner.example",
                "e-bob", "remote-server-not-found", "unknown domain from partner")

    st2 = gw.status()
    c = st2["counters"]
    t.cmp_ok(c.get("errors.remote-server-not-found", 0), ">=", 2,
             "counter errors.remote-server-not-found moved")
    t.cmp_ok(c.get("errors.not-allowed", 0), ">=", 1, "counter errors.not-allowed moved")
    t.cmp_ok(c.get("errors.recipient-unavailable", 0), ">=", 1,
             "counter errors.recipient-unavailable moved")
    corp = gw.community("corp", st2) or {}
    partner = gw.community("partner", st2) or {}
    t.cmp_ok(corp.get("counters", {}).get("received", 0), ">=", 10,
             "community corp counts what it received")
    t.cmp_ok(partner.get("counters", {}).get("delivered", 0), ">=", 8,
             "community partner counts what it delivered")

    # --- presence damping ----------------------------------------------
    carol = t.client(gw.listen("corp"))
    dave = t.client(gw.listen("partner"))
    carol.bind("carol@corp.example")
    dave.bind("dave@partner.example")
    damped0 = gw.counter("presence-damped")
    pd = {"type": "presence", "from": "carol@corp.example",
          "to": "dave@partner.example", "show": "chat", "status": "free to talk",
          "priority": 1}
    carol.send(pd)
    check_event(t, dave.expect(is_type("presence")), pd, "first presence carol -> dave")
    carol.send(pd)
    again = dave.quiet(1.0)
    t.is_(again, [], "an identical second presence is not forwarded")
    st3 = gw.wait_status(lambda s: s["counters"].get("presence-damped", 0) > damped0, 5)
    t.is_(st3["counters"].get("presence-damped", 0) - damped0, 1,
          "counter presence-damped moved by one")
    pd2 = dict(pd, show="xa", status="gone home")
    carol.send(pd2)
    check_event(t, dave.expect(is_type("presence"), timeout=15), pd2,
                "a changed presence is forwarded again")

    # --- addresses: case of the domain, wildcard binds ----------------------
    alice.send({"type": "message", "from": "alice@corp.example",
                "to": "bob@Partner.EXAMPLE", "id": "case", "body": "shouting domain"})
    got = bob.expect(is_type("message", "case"), timeout=3)
    t.ok(got is not None, "a domain in another case routes to its community",
         "alice got: %r" % (alice.quiet(0.3),))
    if got is not None:
        t.is_(bare(got.get("to")).split("@")[1], "partner.example",
              "the delivered address has the canonical (lower-case) domain")
    anyone = t.client(gw.listen("partner"))
    t.is_(anyone.bind("*").get("user"), "*", "bind \"*\" is answered bound")
    alice.send({"type": "message", "from": "alice@corp.example",
                "to": "zed@partner.example", "id": "star", "body": "anyone there?"})
    got = anyone.expect(is_type("message", "star"))
    t.ok(got is not None and got.get("to") == "zed@partner.example",
         "a \"*\" connection receives events for users nobody bound", "got %r" % (got,))
    alice.send({"type": "message", "from": "alice@corp.example",
                "to": "bob@partner.example", "id": "m-bob", "body": "for bob"})
    t.ok(bob.expect(is_type("message", "m-bob")) is not None,
         "a user bound by name still gets its events when \"*\" is bound too")

    # a bind names the user as the core does: "O'Brien" is o\27brien
    obrien = t.client(gw.listen("partner"))
    t.is_(obrien.bind("O'Brien Jr@partner.example").get("user"),
          "o\\27brien\\20jr@partner.example", "a bind is answered with the canonical address")
    alice.send({"type": "message", "from": "alice@corp.example",
                "to": "O'Brien Jr@partner.example", "id": "obr", "body": "for O'Brien"})
    got = obrien.expect(is_type("message", "obr"))
    t.ok(got is not None, "a user whose name needs escaping gets its events",
         "alice got: %r" % (alice.quiet(0.3),))

    # nothing unexpected reached anybody
    for name, cl in (("alice", alice), ("bob", bob), ("carol", carol), ("dave", dave)):
        stray = cl.skipped + cl.quiet(0.3)
        t.is_(stray, [], "%s received nothing unexpected" % name)
    t.ok(gw.alive(), "imgwd is still running")
    t.is_(gw.term(), 0, "SIGTERM: exit status 0")


T.Test().run(main)
