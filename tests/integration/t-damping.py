#!/usr/bin/env python3
"""Presence rate limits and loop stopping, configured in [gateway].

presence-rate = 2/1: a burst of presences from one sender to one target
is limited, the newest state still arrives, other pairs are not held up.
loop-limit = 4/10: subscriptions or presence going back and forth between
two users are stopped after about four bounces, with a counter; messages
between the same users still flow.
"""

import time

import imgwtest as T


def pres(frm, to, i):
    return {"type": "presence", "from": frm, "to": to,
            "show": ["away", "dnd", "xa", "chat"][i % 4], "status": "s%d" % i}


def main(t):
    gw = t.gateway({
        "gateway": {"presence-rate": "2/1", "loop-limit": "4/10"},
        "community corp": {
            "connector": "jsonl", "local": True, "domains": "corp.example",
            "listen": "tcp:127.0.0.1:%d" % T.free_port(),
        },
        "community partner": {
            "connector": "jsonl", "domains": "partner.example",
            "listen": "tcp:127.0.0.1:%d" % T.free_port(),
        },
    })
    corp = t.client(gw.listen("corp"))
    partner = t.client(gw.listen("partner"))
    corp.bind("carol@corp.example")
    corp.bind("alice@corp.example")
    partner.bind("dave@partner.example")
    partner.bind("erin@partner.example")
    partner.bind("bob@partner.example")

    # --- rate limit ----------------------------------------------------------
    held0 = gw.counter("presence-held")
    t0 = time.monotonic()
    for i in range(6):
        corp.send(pres("carol@corp.example", "dave@partner.example", i))
    corp.send(pres("carol@corp.example", "erin@partner.example", 99))
    early = partner.quiet(0.4)
    to_dave = [o.get("status") for o in early if o.get("to") == "dave@partner.example"]
    to_erin = [o.get("status") for o in early if o.get("to") == "erin@partner.example"]
    t.is_(to_dave, ["s0", "s1"], "presence-rate 2/1: the first two of a burst go at once")
    t.is_(to_erin, ["s99"], "another pair is not held up by the limited one")
    later = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "s5" not in later:
        o = partner.recv(timeout=max(0.01, deadline - time.monotonic()))
        if o is None:
            break
        if o.get("type") == "presence" and o.get("to") == "dave@partner.example":
            later.append(o.get("status"))
    t.ok(later and later[-1] == "s5", "the newest presence of the burst arrives",
         "later: %r" % later)
    t.diag("held presences: %r arrived after %.2f s" % (later, time.monotonic() - t0))
    t.ok(len(to_dave) + len(later) < 6, "the burst was thinned, not passed whole")
    t.cmp_ok(gw.counter("presence-held") - held0, ">=", 1, "counter presence-held moved")
    t.is_(partner.quiet(1.2), [], "nothing more arrives for the burst")

    # --- loop stopping: subscriptions --------------------------------------
    stopped0 = gw.counter("loop-stopped")
    n = 12
    for i in range(n):
        if i % 2 == 0:
            corp.send({"type": "subscribe", "from": "alice@corp.example",
                       "to": "bob@partner.example", "id": "l%d" % i})
        else:
            partner.send({"type": "subscribed", "from": "bob@partner.example",
                          "to": "alice@corp.example", "id": "l%d" % i})
        time.sleep(0.02)
    got = corp.quiet(0.5) + partner.quiet(0.5)
    subs = sorted((o.get("id") for o in got if o.get("type") in ("subscribe", "subscribed")),
                  key=lambda x: int(x[1:]))
    errs = [o for o in got if o.get("type") == "error"]
    t.diag("subscription ping-pong: delivered %s" % subs)
    t.cmp_ok(len(subs), ">=", 4, "loop-limit 4: the first bounces pass")
    t.cmp_ok(len(subs), "<=", 6, "loop-limit 4: the ping-pong is stopped soon after")
    t.is_(subs, ["l%d" % i for i in range(len(subs))], "what passed is the start of it")
    stopped = gw.counter("loop-stopped") - stopped0
    t.is_(stopped, n - len(subs), "counter loop-stopped counts the stopped ones")
    t.is_(len(errs), stopped, "each stopped one is answered with an error (not dropped silently)")
    t.ok(errs and all(e.get("condition") == "policy-violation" for e in errs),
         "with policy-violation", "errors: %r" % errs[:2])

    # messages between the same users still flow
    corp.send({"type": "message", "from": "alice@corp.example", "to": "bob@partner.example",
               "id": "msg", "body": "still talking"})
    m = partner.expect(lambda o: o.get("id") == "msg")
    t.is_((m or {}).get("body"), "still talking", "messages still flow between them")

    # --- loop stopping: presence -------------------------------------------
    stopped0 = gw.counter("loop-stopped")
    for i in range(n):
        if i % 2 == 0:
            corp.send(dict(pres("carol@corp.example", "erin@partner.example", 200 + i)))
        else:
            partner.send(dict(pres("erin@partner.example", "carol@corp.example", 200 + i)))
        time.sleep(0.6)		# stay under presence-rate: only the loop limit acts
    got = corp.quiet(0.5) + partner.quiet(0.5)
    ps = [o.get("status") for o in got if o.get("type") == "presence"]
    t.diag("presence ping-pong: delivered %s" % ps)
    t.cmp_ok(len(ps), "<=", 6, "presence going back and forth is stopped too")
    t.cmp_ok(gw.counter("loop-stopped") - stopped0, ">=", n - 6,
             "counter loop-stopped moved for presence")
    t.is_(gw.term(), 0, "SIGTERM: exit 0")


T.Test().run(main)
