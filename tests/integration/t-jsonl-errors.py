#!/usr/bin/env python3
"""The jsonl connector answers bad lines with errors and keeps the session.

Malformed JSON, missing fields, unknown types, foreign `from`, overlong
lines, invalid UTF-8 and foreign binds each get an error line with the
right condition (and the client's id when it could be read); after every
one of them, the same connection still routes a valid message.
"""

import imgwtest as T

ALICE = "alice@corp.example"
BOB = "bob@partner.example"


def main(t):
    gw = t.gateway({
        "community corp": {
            "connector": "jsonl", "local": True, "domains": "corp.example",
            "listen": "tcp:127.0.0.1:%d" % T.free_port(), "max-line": 1024,
        },
        "community partner": {
            "connector": "jsonl", "domains": "partner.example",
            "listen": "tcp:127.0.0.1:%d" % T.free_port(), "max-connections": 3,
        },
    })
    alice = t.client(gw.listen("corp"))
    bob = t.client(gw.listen("partner"))
    alice.bind(ALICE)
    bob.bind(BOB)
    seq = [0]

    def still_routes(what):
        """A valid message from alice reaches bob; alice gets nothing else."""
        seq[0] += 1
        mid = "ok-%d" % seq[0]
        alice.send({"type": "message", "from": ALICE, "to": BOB, "id": mid,
                    "body": "still here %d" % seq[0]})
        got = bob.expect(lambda o: o.get("type") == "message" and o.get("id") == mid)
        t.ok(got is not None and got.get("body") == "still here %d" % seq[0],
             "after %s the connection still routes a message" % what,
             "bob got %r; skipped %r" % (got, bob.skipped))

    def error_for(what, line, condition, id_=None, check_id=True):
        """Send line (bytes or dict), expect exactly one error answer."""
        if isinstance(line, dict):
            alice.send(line)
        else:
            alice.send_raw(line)
        err = alice.expect(lambda o: o.get("type") == "error")
        if not t.ok(err is not None, "%s: answered with an error" % what,
                    "skipped: %r" % (alice.skipped,)):
            return
        t.is_(err.get("condition"), condition, "%s: condition %s" % (what, condition))
        if check_id:
            t.is_(err.get("id"), id_, "%s: error carries id %r" % (what, id_))
        t.ok(isinstance(err.get("text"), str) and err["text"] != "",
             "%s: error has a text" % what, "error: %r" % (err,))
        still_routes(what)
        more = [o for o in alice.skipped + alice.quiet(0.2) if o.get("type") == "error"]
        t.is_(more, [], "%s: exactly one error" % what)
        alice.skipped.clear()

    still_routes("binding")

    error_for("malformed JSON", b'{"type":"message", "to": \n', "bad-request", None)
    error_for("trailing garbage after JSON",
              b'{"type":"message","from":"alice@corp.example","to":"bob@partner.example",'
              b'"id":"j1","body":"x"} trailing\n', "bad-request", check_id=False)
    error_for("a JSON array instead of an object", b'[1, 2, 3]\n', "bad-request", None)
    error_for("missing to",
              {"type": "message", "from": ALICE, "id": "j2", "body": "where to?"},
              "bad-request", "j2")
    error_for("missing type", {"from": ALICE, "to": BOB, "id": "j2b", "body": "x"},
              "bad-request", "j2b")
    error_for("unknown type",
              {"type": "telepathy", "from": ALICE, "to": BOB, "id": "j3", "body": "x"},
              "bad-request", "j3")
    error_for("message without body",
              {"type": "message", "from": ALICE, "to": BOB, "id": "j3b"},
              "bad-request", "j3b")
    error_for("body that is not a string",
              {"type": "message", "from": ALICE, "to": BOB, "id": "j3c", "body": 42},
              "bad-request", "j3c")

    alice.send({"type": "message", "from": "mallory@partner.example", "to": BOB,
                "id": "j4", "body": "spoofed"})
    err = alice.expect(lambda o: o.get("type") == "error")
    t.is_((err or {}).get("condition"), "forbidden", "from outside the community: forbidden")
    t.is_((err or {}).get("id"), "j4", "from outside the community: error carries the id")
    spoof = bob.quiet(0.5)
    t.is_([o for o in spoof if o.get("id") == "j4"], [],
          "from outside the community: nothing reaches the partner")
    still_routes("a foreign from")

    # a line just under max-line (1024) is fine
    base = {"type": "message", "from": ALICE, "to": BOB, "id": "j5a", "body": ""}
    room = 1024 - len(T.json.dumps(base))
    near = dict(base, body="y" * (room - 4))
    alice.send(near)
    got = bob.expect(lambda o: o.get("id") == "j5a")
    t.ok(got is not None and got.get("body") == near["body"],
         "a line just under max-line is routed", "got %r" % (got,))

    # over max-line: one policy-violation, the rest of the line is skipped
    big = dict(base, id="j5", body="z" * 2000)
    error_for("line over max-line", big, "policy-violation", check_id=False)
    huge = dict(base, id="j5b", body="z" * 300000)
    error_for("300 kB line over max-line", huge, "policy-violation", check_id=False)
    t.is_([o for o in bob.skipped + bob.quiet(0.3) if o.get("id") in ("j5", "j5b")], [],
          "overlong lines are not routed")

    error_for("invalid UTF-8",
              b'{"type":"message","from":"alice@corp.example","to":"bob@partner.example",'
              b'"id":"j6","body":"bad \xff\xfe bytes"}\n', "bad-request", check_id=False)
    error_for("overlong UTF-8 encoding of '/'",
              b'{"type":"message","from":"alice@corp.example","to":"bob@partner.example",'
              b'"id":"j6b","body":"\xc0\xaf"}\n', "bad-request", check_id=False)
    error_for("an escaped NUL in a string",
              b'{"type":"message","from":"alice@corp.example","to":"bob@partner.example",'
              b'"id":"j6c","body":"a\\u0000b"}\n', "bad-request", "j6c")
    alice.send({"type": "bind", "user": BOB, "id": "j7"})
    err = alice.expect(lambda o: o.get("type") in ("error", "bound"))
    t.is_((err or {}).get("type"), "error", "bind to a user outside the community is refused")
    t.is_((err or {}).get("condition"), "forbidden", "bind outside the community: forbidden")
    # and the refused bind did not take: bob's events still go to bob only
    bob.send({"type": "message", "from": BOB, "to": ALICE, "id": "j7b", "body": "hi"})
    got = alice.expect(lambda o: o.get("id") == "j7b")
    t.ok(got is not None and got.get("type") == "message",
         "after a refused bind the connection still receives its own user's events")
    still_routes("a refused bind")

    # several bad lines in one write, then a good one
    alice.send_raw(b'nonsense\n{"type":1}\n\xff\n')
    errs = []
    for _ in range(3):
        e = alice.expect(lambda o: o.get("type") == "error")
        if e is not None:
            errs.append(e.get("condition"))
    t.is_(errs, ["bad-request"] * 3, "three bad lines in one write: three errors, in order")
    still_routes("three bad lines in one write")

    t.ok(alice.alive(), "the corp connection is still open")

    # max-connections = 3 on partner: bob + 2 more, the 4th is turned away
    extra = [t.client(gw.listen("partner")) for _ in range(2)]
    extra[0].bind("dave@partner.example")
    extra[1].bind("erin@partner.example")
    fourth = t.client(gw.listen("partner"))
    refusal = fourth.recv(timeout=3)
    t.ok(fourth.recv(timeout=3) is None and fourth.eof,
         "max-connections: a connection past the limit is closed",
         "got %r" % (refusal,))
    t.ok(refusal is None or refusal.get("type") == "error",
         "max-connections: at most an error line before the close", "got %r" % (refusal,))
    alice.send({"type": "message", "from": ALICE, "to": "erin@partner.example",
                "id": "mc", "body": "to erin"})
    got = extra[1].expect(lambda o: o.get("id") == "mc")
    t.ok(got is not None, "max-connections: the connections within the limit work")
    extra[0].close()
    deadline = T.time.monotonic() + 5
    fifth = None
    while T.time.monotonic() < deadline:
        c = t.client(gw.listen("partner"))
        c.send({"type": "bind", "user": "dave@partner.example"})
        a = c.recv(timeout=1)
        if a is not None and a.get("type") == "bound":
            fifth = c
            break
        c.close()
        T.time.sleep(0.1)
    t.ok(fifth is not None, "max-connections: after one closes, a new one is accepted")
    st = gw.status()
    corp = gw.community("corp", st) or {}
    t.is_(corp.get("state"), "running", "community corp is running")
    t.is_(gw.term(), 0, "SIGTERM: exit status 0")


T.Test().run(main)
