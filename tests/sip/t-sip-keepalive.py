#!/usr/bin/env python3
"""OPTIONS keep-alive of route peers (keepalive = 1).

A raw UDP peer on the route of peer.example gets OPTIONS with
Max-Forwards: 0 about every second and answers 200, then 483 (still an
answer: the peer is up); a route over TCP to a closed port is marked
down (peer-down, logged once).
"""

import siptest as S
import imgwtest as T


def main(t):
    ep = S.Endpoint("udp")
    closed = T.free_port()
    gw = S.gateway(t, {
        "domains": "sip.example peer.example dead.example",
        "route": "peer.example=udp:127.0.0.1:%d dead.example=tcp:127.0.0.1:%d"
                 % (ep.port, closed),
        "keepalive": 1,
    })
    m = ep.recv(3)
    t.ok(m is not None and m[0] == "OPTIONS", "the route peer gets OPTIONS")
    t.is_(m and m[1].get("max-forwards"), "0", "with Max-Forwards: 0 (next hop answers)")
    t.like(m and m[1].get("accept"), "text/plain", "and Accept")
    if m:
        ep.send(S.answer(m, 200, "OK"), gw.sip_port)
    m = ep.recv(3)
    t.ok(m is not None and m[0] == "OPTIONS", "another OPTIONS a second later")
    if m:
        ep.send(S.answer(m, 483, "Too Many Hops"), gw.sip_port)

    def counted(st):
        c = (gw.community("sipc", st) or {}).get("counters", {})
        return c.get("keepalive-ok", 0) >= 2 and c.get("peer-down", 0) >= 1
    st = gw.wait_status(counted, timeout=5)
    c = (gw.community("sipc", st) or {}).get("counters", {})
    t.cmp_ok(c.get("keepalive-ok", 0), ">=", 2, "200 and 483 both count as alive")
    t.is_(c.get("peer-down"), 1, "the closed TCP peer is marked down once")
    t.like(gw.log(), "route dead.example: peer does not answer OPTIONS",
           "and that is logged")
    ep.close()
    t.is_(gw.term(), 0, "imgwd stops cleanly on SIGTERM")


if __name__ == "__main__":
    T.Test().run(main)
