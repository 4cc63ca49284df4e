#!/usr/bin/env python3
"""sipp drives refused and malformed requests into imgwd, over UDP and TCP.

Each case is one request from a sipp scenario (uac-expect.xml.in filled
in) and the final answer sipp must get: an unparsable Content-Length, a
CSeq number that is not one,
Max-Forwards 0 and not a number, an unknown Require, an unknown method, a
From outside the community, text/html, an unknown event package, a request
larger than max-message, and (answer-wait) an unknown domain and a user
nobody is bound as.  imgwd must answer every one with its code and stay
up; a valid MESSAGE still goes through afterwards.  (t-sip-errors.py
sends the same and worse as raw datagrams; this is the sipp view.)
"""

import os

import siptest as S
import imgwtest as T

HEAD = """{method} sip:{to} SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
Max-Forwards: {mf}
From: <sip:{frm}>;tag=[pid]SIPpTag[call_number]
To: <sip:{to}>
Call-ID: [call_id]
CSeq: {cseqno} {cseq}
{extra}Content-Type: {ctype}
Content-Length: [len]

{body}"""

CASES = [
    # name, code, fields
    ("an unparsable Content-Length", 400,
     {"extra": "Content-Length: many\n"}),
    ("a CSeq number that is not one", 400, {"cseq": "MESSAGE", "cseqno": "x1"}),
    ("Max-Forwards 0", 483, {"mf": "0"}),
    ("Max-Forwards not a number", 400, {"mf": "many"}),
    ("Require: foo", 420, {"extra": "Require: foo\n"}),
    ("unknown method FOO", 405, {"method": "FOO", "cseq": "FOO"}),
    ("From outside the community", 403, {"frm": "eve@evil.example"}),
    ("text/html", 415, {"ctype": "text/html", "body": "<b>hi</b>"}),
    ("SUBSCRIBE to an unknown event package", 489,
     {"method": "SUBSCRIBE", "cseq": "SUBSCRIBE", "body": "",
      "extra": "Event: no-such-package\nContact: <sip:bob@[local_ip]:[local_port]>\n"
               "Expires: 60\n"}),
    ("larger than max-message", 513, {"body": "x" * 3000}),
    ("an unknown domain (answer-wait)", 404, {"to": "x@nowhere.example"}),
    ("nobody bound (answer-wait)", 480, {"to": "nobody@corp.example"}),
]


def scenario(t, i, code, fields):
    f = {"method": "MESSAGE", "to": "alice@corp.example", "mf": "70",
         "frm": "bob@sip.example", "cseq": "MESSAGE", "cseqno": "1", "extra": "",
         "ctype": "text/plain;charset=UTF-8", "body": "hello"}
    f.update(fields)
    req = HEAD.format(**f)
    with open(os.path.join(S.SCEN, "uac-expect.xml.in")) as fp:
        xml = fp.read().replace("@REQUEST@", req).replace("@CODE@", str(code))
    name = "case-%02d.xml" % i
    with open(t.path(name), "w") as fp:
        fp.write(xml)
    return t.path(name)


def main(t):
    if S.SIPP is None:
        t.skip("sipp errors", "sipp is not installed (apt-get install sip-tester)")
        return
    gw = S.gateway(t, {"answer-wait": 300, "max-message": 2048})
    alice = t.client(gw.listen("corp"))
    alice.bind("alice@corp.example")
    for proto in ("udp", "tcp"):
        for i, (name, code, fields) in enumerate(CASES):
            path = scenario(t, i, code, fields)
            rc, out = S.sipp(t, path, gw.sip_port, proto=proto, extra=["-m", "1"],
                             timeout=10)
            if not t.ok(rc == 0, "%s %s: %d" % (proto, name, code), out[-800:]):
                t.diag(S.sipp_errors(t, path))
        t.ok(gw.alive(), "%s: imgwd is alive after the refused requests" % proto)
        rc, out = S.sipp(t, "uac-message.xml", gw.sip_port, proto=proto, keys={
            "from": "bob@sip.example", "to": "alice@corp.example",
            "body": "still here", "subject": "s", "lang": "en"}, extra=["-m", "1"])
        t.is_(rc, 0, "%s: a valid MESSAGE afterwards: 202" % proto)
        t.ok(alice.expect({"type": "message"}, timeout=3) is not None,
             "%s: and it reaches the jsonl user" % proto)
    t.is_(gw.term(), 0, "imgwd stops cleanly on SIGTERM (exit 0; no leaks under ASan)")


if __name__ == "__main__":
    T.Test(alarm=120).run(main)
