"""The checks every XMPP server must pass with the xmpp connector in
component mode, shared by the tests that run them against a real server:
t-xmpp-component.py (Prosody), t-xmpp-ejabberd.py (ejabberd) and
t-xmpp-reconnect.py (wrong_secret).  Each function takes the test and a
started server object from xmpptest (Prosody or Ejabberd: c2s_port,
component_port, component, secret).

component_checks: a Prosody/ejabberd user alice (a real c2s login) and the
jsonl user bob exchange messages, presence, subscriptions and chat states
both ways, every field checked on arrival; errors cross both ways with the
original id; group chat, bad addresses, oversized stanzas and unknown
presence types get the right stanza error; disco#info on the component
domain is answered.  It also guards the libstrophe component-mode
workaround (conn.c): without it imgwd dies with SIGSEGV on the first
stanza the server sends after the handshake, so "imgwd is alive after the
first inbound stanza" is checked first.

wrong_secret: the server refuses the component; the community stays down
with a clear log line, the rest of the gateway routes, and a reload with
the right secret brings it up and delivers what waited.
"""

import time

import imgwtest as T
import xmpptest as X
from xmpptest import C

BOB = "bob@corp.example"
ALICE = "alice@xmpp.example"


def is_msg(id_=None):
    return lambda e: e.tag == C("message") and (id_ is None or e.get("id") == id_)


def is_type(kind, id_=None):
    return lambda o: o.get("type") == kind and (id_ is None or o.get("id") == id_)


def roster_push(e, jid, subs):
    """A roster push for jid with a subscription in subs."""
    if e.tag != C("iq") or e.get("type") != "set":
        return False
    for item in e.iter("{jabber:iq:roster}item"):
        if item.get("jid") == jid and item.get("subscription") in subs:
            return True
    return False


def bare(j):
    return (j or "").split("/", 1)[0]


def component_checks(t, pro):
    """The core checks of component mode against a started XMPP server
    `pro` (xmpptest.Prosody or xmpptest.Ejabberd) that has the users
    alice/alice-pw and carol/carol-pw."""
    corp_port = T.free_port()
    gw = t.gateway(X.gateway_config(pro, corp_port))
    st = gw.wait_status(lambda s: gw.community("xmpp", s)["state"] == "running")
    t.is_(gw.community("xmpp", st)["state"], "running",
          "the XMPP community is up after the component handshake")

    bob = t.client("tcp:127.0.0.1:%d" % corp_port)
    bob.bind(BOB)
    alice = X.Client(t, pro, "alice", "alice-pw", resource="desk")
    BOBJ = X.gwjid(BOB)

    # --- the libstrophe workaround: the first stanza after the handshake -----
    # (alice's initial presence reaches nobody; this message is the first
    # stanza Prosody writes to the component)
    alice.send(X.stanza("message", {"to": BOBJ, "type": "chat", "id": "first"},
                        X.el("body", "first")))
    got = bob.expect(is_type("message", "first"))
    t.ok(got is not None and gw.alive(),
         "imgwd survives the first stanza from the server (libstrophe "
         "component SM-state workaround in place)")

    # --- messages XMPP -> jsonl --------------------------------------------
    body = "Gr\u00fc\u00dfe \u2713 <tags> & \"quotes\" 'apos'\nline two\U0001F600"
    alice.send(X.stanza("message", {"to": BOBJ + "/phone", "type": "chat", "id": "m-1",
                                    "xml:lang": "de"},
                        X.el("subject", "Betreff & so") + X.el("body", body) +
                        X.el("thread", "th-1")))
    got = bob.expect(is_type("message", "m-1"))
    want = {"from": ALICE + "/desk", "to": BOB + "/phone", "id": "m-1",
            "subject": "Betreff & so", "body": body, "thread": "th-1", "lang": "de"}
    t.ok(got is not None and all(got.get(k) == v for k, v in want.items()),
         "message XMPP -> jsonl: from, to (resource), id, subject, body, thread, "
         "lang intact", "got %r\nwant %r" % (got, want))

    for mtype in ("normal", "headline"):
        alice.send(X.stanza("message", {"to": BOBJ, "type": mtype, "id": "t-" + mtype},
                            X.el("body", mtype)))
        got = bob.expect(is_type("message", "t-" + mtype))
        t.ok(got is not None and got.get("body") == mtype,
             "message of type %s crosses" % mtype, repr(got))
        t.is_(got and got.get("message_type"), mtype,
              "and keeps its type (%s)" % mtype)

    # body language on the <body/> element
    alice.send(X.stanza("message", {"to": BOBJ, "type": "chat", "id": "m-lang"},
                        X.el("body", "bonjour", {"xml:lang": "fr"})))
    got = bob.expect(is_type("message", "m-lang"))
    t.is_(got and got.get("lang"), "fr", "xml:lang of <body/> becomes the event's lang")

    # --- messages jsonl -> XMPP --------------------------------------------
    m2 = {"type": "message", "from": BOB + "/laptop", "to": ALICE + "/desk",
          "id": "m-2", "thread": "th-1", "subject": "Re: <x> & y",
          "lang": "en", "body": "Thanks \u2014 \"got\" them & <more>\n\U0001F44D"}
    bob.send(m2)
    got = alice.expect(is_msg("m-2"))
    t.ok(got is not None, "message jsonl -> XMPP arrives")
    if got is not None:
        t.is_(got.get("from"), BOBJ + "/laptop",
              "from is bob's escaped address at the component, resource kept")
        t.is_(got.get("to"), ALICE + "/desk", "to is alice's full JID")
        t.is_(got.get("type"), "chat", "type chat")
        t.is_(got.get(X.XML_LANG), "en", "xml:lang kept")
        t.is_(X.text_of(got, "body"), m2["body"], "body intact")
        t.is_(X.text_of(got, "subject"), m2["subject"], "subject intact")
        t.is_(X.text_of(got, "thread"), "th-1", "thread intact")

    bob.send({"type": "message", "from": BOB, "to": ALICE, "id": "m-head",
              "body": "news", "message_type": "headline"})
    got = alice.expect(is_msg("m-head"))
    t.is_(got is not None and got.get("type"), "headline",
          "message_type headline from jsonl is a headline stanza")

    # --- XEP-0106: user parts JIDs forbid ----------------------------------
    obrien = t.client("tcp:127.0.0.1:%d" % corp_port)
    # the canonical form of o'brien@corp.example (see README about binds)
    ob = obrien.bind("o\\27brien@corp.example").get("user")
    obrien.send({"type": "message", "from": ob, "to": ALICE, "id": "m-ob", "body": "hi"})
    got = alice.expect(is_msg("m-ob"))
    t.is_(got is not None and got.get("from"), "o\\27brien\\40corp.example@" + X.COMPONENT,
          "escaped user arrives as o\\27brien\\40corp.example@component")
    alice.send(X.stanza("message", {"to": "o\\27brien\\40corp.example@" + X.COMPONENT,
                                    "type": "chat", "id": "m-ob2"}, X.el("body", "hello")))
    got = obrien.expect(is_type("message", "m-ob2"))
    t.is_(got and got.get("to"), "o\\27brien@corp.example",
          "and alice's answer to that JID reaches o'brien")

    # --- presence ------------------------------------------------------------
    alice.send(X.stanza("presence", {"to": BOBJ, "id": "p-1", "xml:lang": "de"},
                        X.el("show", "dnd") + X.el("status", "im Meeting") +
                        X.el("priority", "5")))
    got = bob.expect(is_type("presence", "p-1"))
    t.ok(got is not None and got.get("show") == "dnd" and got.get("status") == "im Meeting"
         and got.get("priority") == 5 and got.get("lang") == "de"
         and got.get("from") == ALICE + "/desk",
         "directed presence XMPP -> jsonl: show, status, priority, lang", repr(got))
    alice.send(X.stanza("presence", {"to": BOBJ, "id": "p-2", "type": "unavailable"},
                        X.el("status", "gone home")))
    got = bob.expect(is_type("presence", "p-2"))
    t.ok(got is not None and got.get("show") == "unavailable"
         and got.get("status") == "gone home", "unavailable presence with status", repr(got))

    bob.send({"type": "presence", "from": BOB + "/laptop", "to": ALICE + "/desk",
              "id": "p-3", "show": "away", "status": "lunch \u2615", "priority": 3,
              "lang": "en"})
    got = alice.expect(lambda e: e.tag == C("presence") and e.get("id") == "p-3")
    t.ok(got is not None and X.text_of(got, "show") == "away"
         and X.text_of(got, "status") == "lunch \u2615"
         and X.text_of(got, "priority") == "3" and got.get("from") == BOBJ + "/laptop",
         "presence jsonl -> XMPP: show, status, priority, from",
         repr(got is not None and X.ET.tostring(got)))
    bob.send({"type": "presence", "from": BOB + "/laptop", "to": ALICE + "/desk",
              "id": "p-4", "show": "unavailable"})
    got = alice.expect(lambda e: e.tag == C("presence") and e.get("id") == "p-4")
    t.is_(got is not None and got.get("type"), "unavailable", "unavailable jsonl -> XMPP")

    # --- subscriptions and probes -------------------------------------------
    bob.send({"type": "subscribe", "from": BOB, "to": ALICE, "id": "s-1"})
    got = alice.expect(lambda e: e.tag == C("presence") and e.get("type") == "subscribe")
    t.is_(got is not None and bare(got.get("from")), BOBJ,
          "subscribe jsonl -> XMPP reaches alice")
    alice.send(X.stanza("presence", {"to": BOBJ, "type": "subscribed", "id": "s-2"}))
    got = bob.expect(is_type("subscribed"))
    t.ok(got is not None and bare(got.get("from")) == ALICE and bare(got.get("to")) == BOB,
         "subscribed XMPP -> jsonl", repr(got))
    alice.send(X.stanza("presence", {"to": BOBJ, "type": "subscribe", "id": "s-3"}))
    got = bob.expect(is_type("subscribe"))
    t.ok(got is not None and bare(got.get("from")) == ALICE, "subscribe XMPP -> jsonl",
         repr(got))
    bob.send({"type": "subscribed", "from": BOB, "to": ALICE, "id": "s-4"})
    got = alice.expect(lambda e: roster_push(e, BOBJ, ("to", "both")))
    t.ok(got is not None, "subscribed jsonl -> XMPP: alice's roster shows bob's "
         "presence subscribed to (roster push)")
    alice.send(X.stanza("presence", {"to": BOBJ, "type": "probe", "id": "pr-1"}))
    got = bob.expect(is_type("probe"))
    t.ok(got is not None and bare(got.get("from")) == ALICE, "probe XMPP -> jsonl", repr(got))
    alice.send(X.stanza("presence", {"to": BOBJ, "type": "unsubscribe", "id": "s-5"}))
    got = bob.expect(is_type("unsubscribe"))
    t.ok(got is not None, "unsubscribe XMPP -> jsonl", repr(got))
    bob.send({"type": "unsubscribed", "from": BOB, "to": ALICE, "id": "s-6"})
    got = alice.expect(lambda e: roster_push(e, BOBJ, ("none", "from")))
    t.ok(got is not None, "unsubscribed jsonl -> XMPP: the roster push takes it back")

    # --- chat states -----------------------------------------------------------
    for state in ("active", "composing", "paused", "inactive", "gone"):
        alice.send(X.stanza("message", {"to": BOBJ, "type": "chat", "id": "cs-" + state},
                            "<%s xmlns='%s'/><thread>th-9</thread>" % (state, X.NS_CHATSTATES)))
        got = bob.expect(is_type("chatstate", "cs-" + state))
        t.ok(got is not None and got.get("state") == state and got.get("thread") == "th-9",
             "chat state %s XMPP -> jsonl (with thread)" % state, repr(got))
    alice.send(X.stanza("message", {"to": BOBJ, "type": "chat", "id": "cs-body"},
                        X.el("body", "typed") + "<active xmlns='%s'/>" % X.NS_CHATSTATES))
    got = bob.expect(lambda o: o.get("id") == "cs-body")
    t.is_(got and got.get("type"), "message", "body plus chat state -> a message event")
    bob.send({"type": "chatstate", "from": BOB, "to": ALICE + "/desk", "id": "cs-out",
              "state": "composing", "thread": "th-9"})
    got = alice.expect(is_msg("cs-out"))
    t.ok(got is not None and got.find("{%s}composing" % X.NS_CHATSTATES) is not None
         and X.text_of(got, "thread") == "th-9" and X.text_of(got, "body") is None,
         "chat state jsonl -> XMPP: <composing/>, thread, no body")

    # --- errors ----------------------------------------------------------------
    # to a corp user nobody has bound: the jsonl side refuses
    alice.send(X.stanza("message", {"to": X.gwjid("nobody@corp.example"), "type": "chat",
                                    "id": "e-1"}, X.el("body", "anyone?")))
    got = alice.expect(is_msg("e-1"))
    t.is_(X.error_of(got), ("wait", "recipient-unavailable", X.error_of(got) and
                            X.error_of(got)[2]),
          "message to an unbound jsonl user: error recipient-unavailable (wait), same id")
    t.is_(got is not None and got.get("from"), X.gwjid("nobody@corp.example"),
          "the error comes from the address alice wrote to")
    # an error the jsonl user sends for alice's message
    bob.send({"type": "error", "from": BOB, "to": ALICE + "/desk", "id": "m-1",
              "condition": "not-acceptable", "text": "no thanks"})
    got = alice.expect(is_msg("m-1"))
    t.is_(X.error_of(got), ("modify", "not-acceptable", "no thanks"),
          "error event jsonl -> XMPP message error with condition, type and text")
    # an error answering alice's presence comes back as a presence error
    bob.send({"type": "error", "from": BOB, "to": ALICE + "/desk", "id": "p-1",
              "condition": "forbidden"})
    got = alice.expect(lambda e: e.get("id") == "p-1" and e.get("type") == "error")
    t.ok(got is not None and got.tag == C("presence") and X.error_of(got)[1] == "forbidden",
         "an error answering a presence is a presence error", repr(got))
    # XMPP error -> jsonl error event
    alice.send(X.stanza("message", {"to": BOBJ, "type": "error", "id": "m-2"},
                        "<error type='cancel'><item-not-found xmlns='%s'/><text xmlns='%s'>"
                        "who?</text></error>" % (X.NS_STANZAS, X.NS_STANZAS)))
    got = bob.expect(is_type("error", "m-2"))
    t.ok(got is not None and got.get("condition") == "item-not-found"
         and got.get("text") == "who?" and bare(got.get("from")) == ALICE,
         "XMPP message error -> jsonl error event with condition, text, id", repr(got))

    # group chat refused
    alice.send(X.stanza("message", {"to": BOBJ, "type": "groupchat", "id": "g-1"},
                        X.el("body", "hi all")))
    got = alice.expect(is_msg("g-1"))
    e = X.error_of(got)
    t.ok(e is not None and e[1] == "feature-not-implemented" and e[2],
         "groupchat is refused with feature-not-implemented and a text", repr(e))
    t.ok(not [o for o in bob.quiet(0.3) if o.get("id") == "g-1"],
         "and nothing reaches the jsonl side")

    # not an escaped address
    alice.send(X.stanza("message", {"to": "bob@" + X.COMPONENT, "type": "chat",
                                    "id": "a-1"}, X.el("body", "x")))
    got = alice.expect(is_msg("a-1"))
    t.is_(X.error_of(got) and X.error_of(got)[1], "item-not-found",
          "a local part without \\40 gets item-not-found")
    # a domain nobody serves
    alice.send(X.stanza("message", {"to": X.gwjid("x@nowhere.example"), "type": "chat",
                                    "id": "a-2"}, X.el("body", "x")))
    got = alice.expect(is_msg("a-2"))
    t.is_(X.error_of(got) and X.error_of(got)[1], "remote-server-not-found",
          "an address in no community's domain gets remote-server-not-found")
    # unknown presence type
    alice.send(X.stanza("presence", {"to": BOBJ, "type": "bogus", "id": "u-1"}))
    got = alice.expect(lambda e: e.get("id") == "u-1")
    t.is_(X.error_of(got) and X.error_of(got)[1], "bad-request",
          "unknown presence type gets bad-request")
    # oversized stanza (max-stanza 262144 by default)
    big = "x" * 300000
    alice.send(X.stanza("message", {"to": BOBJ, "type": "chat", "id": "big"},
                        X.el("body", big)))
    got = alice.expect(is_msg("big"), timeout=10)
    t.is_(X.error_of(got) and X.error_of(got)[1], "policy-violation",
          "a stanza over max-stanza gets policy-violation")
    t.ok(not [o for o in bob.quiet(0.3) if o.get("id") == "big"],
         "and is not forwarded")
    # jsonl -> XMPP too large for the XMPP side
    bob.send({"type": "message", "from": BOB, "to": ALICE, "id": "big-out", "body": big})
    got = bob.expect(is_type("error", "big-out"))
    t.is_(got and got.get("condition"), "policy-violation",
          "an event too large for max-stanza is refused with policy-violation")
    # iq to a user at the component
    alice.send(X.stanza("iq", {"to": BOBJ, "type": "get", "id": "iq-1"},
                        "<query xmlns='jabber:iq:version'/>"))
    got = alice.expect(lambda e: e.get("id") == "iq-1")
    t.is_(X.error_of(got) and X.error_of(got)[1], "service-unavailable",
          "iq to a gateway user gets service-unavailable")

    # --- disco#info ------------------------------------------------------------
    alice.send(X.stanza("iq", {"to": X.COMPONENT, "type": "get", "id": "d-1"},
                        "<query xmlns='%s'/>" % X.NS_DISCO_INFO))
    got = alice.expect(lambda e: e.get("id") == "d-1")
    q = got.find("{%s}query" % X.NS_DISCO_INFO) if got is not None else None
    t.ok(got is not None and got.get("type") == "result" and q is not None,
         "disco#info on the component domain is answered")
    if q is not None:
        ids = [(i.get("category"), i.get("type")) for i in q.findall(
            "{%s}identity" % X.NS_DISCO_INFO)]
        feats = set(f.get("var") for f in q.findall("{%s}feature" % X.NS_DISCO_INFO))
        t.is_(ids, [("gateway", "xmpp")], "identity category gateway, type xmpp")
        t.ok({X.NS_DISCO_INFO, X.NS_CHATSTATES, "urn:xmpp:ping",
              "jid\\20escaping"} <= feats, "features: disco#info, chatstates, ping, "
             "jid\\20escaping", repr(feats))
        t.ok("http://jabber.org/protocol/muc" not in feats and len(feats) <= 5,
             "and nothing it does not do", repr(feats))
    alice.send(X.stanza("iq", {"to": X.COMPONENT, "type": "get", "id": "ping-1"},
                        "<ping xmlns='urn:xmpp:ping'/>"))
    got = alice.expect(lambda e: e.get("id") == "ping-1")
    t.is_(got is not None and got.get("type"), "result", "ping to the component is answered")

    # --- a foreign 'from' the core refuses: the sender hears why ------------
    carol = X.Client(t, pro, "carol", "carol-pw")
    carol.send(X.stanza("message", {"to": X.gwjid("alice@xmpp.example"), "type": "chat",
                                    "id": "own"}, X.el("body", "loop?")))
    got = carol.expect(is_msg("own"))
    t.is_(X.error_of(got) and X.error_of(got)[1], "not-allowed",
          "writing to a user of the own community through the gateway: not-allowed")

    # --- still serving; counters -------------------------------------------
    bob.send({"type": "message", "from": BOB, "to": ALICE, "id": "last", "body": "end"})
    t.ok(alice.expect(is_msg("last")) is not None and gw.alive(),
         "after all of that the gateway still routes both ways")
    c = gw.community("xmpp")["counters"]
    t.cmp_ok(c.get("pings-answered", 0), ">", 0,
             "the server confirmed stanzas (ping barriers answered)")
    # the component domain is free again for the next gateway of this test
    t.is_(gw.term(), 0, "imgwd stops cleanly")


def state(gw, name="xmpp"):
    c = gw.community(name)
    return c and c.get("state")


def wrong_secret(t, pro):
    corp = T.free_port()
    conf = X.gateway_config(pro, corp, secret="not-the-secret")
    conf["community partner"] = {"connector": "jsonl", "domains": "partner.example",
                                 "listen": "unix:" + t.path("partner.sock")}
    gw = t.gateway(conf, name="gw-secret")
    st = gw.wait_status(lambda s: gw.community("xmpp", s)["state"] == "down", timeout=5)
    t.is_(gw.community("xmpp", st)["state"], "down",
          "wrong secret: the XMPP community is down")
    deadline = time.monotonic() + 5
    while "refused component" not in gw.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    line = [l for l in gw.log().splitlines() if "refused component" in l]
    t.ok(line and "not-authorized" in line[0] and "secret" in line[0],
         "a clear log line: the server refused the component (not-authorized), "
         "check the secret", "\n".join(line) or gw.log())
    time.sleep(1.5)  # a few retries at reconnect-max 1000 ms
    t.ok(gw.alive() and state(gw) == "down", "it keeps retrying with back-off, down")

    bob = t.client("tcp:127.0.0.1:%d" % corp)
    bob.bind(BOB)
    zed = t.client("unix:" + t.path("partner.sock"))
    zed.bind("zed@partner.example")
    bob.send({"type": "message", "from": BOB, "to": "zed@partner.example", "id": "w-1",
              "body": "still there?"})
    got = zed.expect(lambda o: o.get("id") == "w-1")
    t.ok(got is not None, "the rest of the gateway keeps routing")
    bob.send({"type": "message", "from": BOB, "to": ALICE, "id": "w-2",
              "body": "waits for the XMPP side"})
    time.sleep(0.2)

    alice = X.Client(t, pro, "alice", "alice-pw", resource="r1")
    gw.write_config(X.gateway_config(pro, corp) | {"community partner":
                                                   conf["community partner"]})
    gw.hup()
    st = gw.wait_status(lambda s: gw.community("xmpp", s)["state"] == "running", timeout=10)
    t.is_(gw.community("xmpp", st)["state"], "running",
          "a reload with the right secret brings the community up")
    got = alice.expect(lambda e: e.tag == C("message") and e.get("id") == "w-2", timeout=10)
    t.ok(got is not None and X.text_of(got, "body") == "waits for the XMPP side",
         "the message that waited is delivered")
    gw.term()
    alice.close()
