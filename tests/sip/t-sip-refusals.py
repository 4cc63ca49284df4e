#!/usr/bin/env python3
"""Refusals the router decides at once are the MESSAGE's SIP answer.

With answer-wait 0 (the default) a MESSAGE used to get 202 at once and a
refusal found while routing it (no community for the domain, a full
queue) came back as an error event the SIP side could no longer answer
(counted errors-after-accept): the sender believed it delivered.  Now the
connector emits with emit_now and answers the refusal itself:

- a domain no community serves: 404, nothing accepted;
- a community that is down (an XMPP component whose server does not
  answer) with queue-size 2: the first two MESSAGEs wait in its queue
  (202), the third gets 503 with Retry-After, counted queue-full;
- no errors-after-accept anywhere.
"""

import time

import siptest as S
import imgwtest as T


def main(t):
    dead = T.free_port()		# nobody listens: the component stays down
    secret = t.path("xmpp.secret")
    with open(secret, "w") as f:
        f.write("s3cret\n")
    gw = S.gateway(t, more={"community xmpp": {
        "connector": "xmpp", "domains": "xmpp.example gw.xmpp.example",
        "component": "gw.xmpp.example", "server": "127.0.0.1",
        "port": str(dead), "secret-file": secret, "queue-size": "2"}})
    ep = S.Endpoint("udp")

    def send(to, body):
        ep.send(S.request("MESSAGE", "sip:" + to, ep, body=body), gw.sip_port)
        return ep.recv()

    r = send("x@nowhere.example", "to nowhere")
    t.is_(r and r[0], 404, "a domain no community serves: 404 at once")
    t.like(r and r[1].get("warning", ""), "no community serves",
           "the Warning says why")
    st = gw.community("xmpp")
    t.ok(st and st.get("state") != "running", "the XMPP community is down",
         repr(st))
    codes = [(send("carol@xmpp.example", "m%d" % i) or [None])[0] for i in range(3)]
    t.is_(codes[:2], [202, 202], "two MESSAGEs wait in the down community's queue")
    t.is_(codes[2], 503, "the third finds it full: 503")
    r = send("carol@xmpp.example", "m3")
    t.is_(r and r[1].get("retry-after"), "5", "503 carries Retry-After")
    time.sleep(0.2)
    st = gw.status()
    sipc = gw.community("sipc", st).get("counters", {})
    xmpp = gw.community("xmpp", st).get("counters", {})
    t.ok(not sipc.get("errors-after-accept"), "no error came after a 202",
         repr(sipc))
    t.ok(xmpp.get("queue-full", 0) >= 2, "counted queue-full", repr(xmpp))
    ep.close()
    t.is_(gw.term(), 0, "imgwd stops cleanly on SIGTERM (exit 0; no leaks under ASan)")


if __name__ == "__main__":
    T.Test(alarm=60).run(main)
