#!/usr/bin/env python3
"""Presence from a real Kamailio (presence, presence_xml) to a jsonl user.

The sip community routes sip.example to a private Kamailio.  A jsonl user
subscribes to bob@sip.example: imgwd SUBSCRIBEs, Kamailio answers and
NOTIFYs (force_active), the user gets subscribed.  bob's presence is
PUBLISHed to Kamailio (PIDF, then modified with SIP-If-Match): each
change arrives as a presence event (available with note and language,
away via rpid:away, unavailable for closed).  imgwd restarts: the
subscription comes back from the store and its dialog is refreshed, so
presence keeps arriving.  unsubscribe ends the
dialog (Expires: 0): later publications no longer arrive.

Kamailio plays a front proxy that record-routes (127.0.0.1) before the
presence server (127.0.0.2, Contact presence.internal): the dialog's
route set is the front proxy, which refuses in-dialog requests without
a Route (404), so the refreshes and the unsubscribe only work when
imgwd follows the route set (RFC 3261 12.2.1.1); the test also reads
Kamailio's log for the Route they carried.
"""

import re

import siptest as S
import imgwtest as T

PIDF = ('<?xml version="1.0" encoding="UTF-8"?>\n'
        '<presence xmlns="urn:ietf:params:xml:ns:pidf" '
        'xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" '
        'xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:bob@sip.example">'
        '<tuple id="t1"><status><basic>%s</basic></status>'
        '<note xml:lang="%s">%s</note></tuple>%s</presence>')
AWAY = ('<dm:person id="p1"><rpid:activities><rpid:away/></rpid:activities>'
        '</dm:person>')


class Publisher:
    """bob's presence agent: PUBLISH, then refresh/modify by ETag."""

    def __init__(self, port):
        self.ep = S.Endpoint("udp")
        self.port = port
        self.etag = None

    def publish(self, basic, note, lang="en", extra=""):
        hdrs = ["Event: presence", "Expires: 600"]
        if self.etag:
            hdrs.append("SIP-If-Match: %s" % self.etag)
        self.ep.send(S.request("PUBLISH", "sip:bob@sip.example", self.ep,
                               frm="bob@sip.example", to="bob@sip.example",
                               body=PIDF % (basic, lang, note, extra),
                               ctype="application/pidf+xml", headers=hdrs), self.port)
        r = self.ep.recv(3)
        if r and r[0] == 200:
            self.etag = r[1].get("sip-etag", self.etag)
        return r and r[0]


def main(t):
    why = S.kamailio_missing()
    if why:
        t.skip("presence through Kamailio", why)
        return
    kam = t.track(S.Kamailio(t))
    kam.start()
    run(t, kam)


def run(t, kam):
    gw = S.gateway(t, {"route": "sip.example=udp:127.0.0.1:%d" % kam.port})
    alice = t.client(gw.listen("corp"))
    alice.bind("alice@corp.example")
    pub = Publisher(kam.port)
    t.is_(pub.publish("open", "in the lab"), 200, "Kamailio takes bob's PUBLISH")

    alice.send({"type": "subscribe", "to": "bob@sip.example", "id": "s1"})
    got = alice.expect({"type": "subscribed"}, timeout=5)
    t.ok(got is not None, "subscribe -> SUBSCRIBE -> NOTIFY active -> subscribed")
    t.is_(got and got.get("id"), "s1", "subscribed carries the subscribe's id")
    t.is_(got and got.get("from"), "bob@sip.example", "subscribed comes from bob")
    got = alice.expect({"type": "presence"}, timeout=5)
    t.is_(got and got.get("show"), "available", "bob's published presence arrives")
    t.is_(got and got.get("status"), "in the lab", "with its note")
    t.is_(got and got.get("lang"), "en", "and the note's language")

    t.is_(pub.publish("open", "zu Tisch", "de", AWAY), 200, "PUBLISH modifies (SIP-If-Match)")
    got = alice.expect({"type": "presence"}, timeout=5)
    t.is_(got and got.get("show"), "away", "rpid:away -> away")
    t.is_(got and got.get("status"), "zu Tisch", "the new note")
    t.is_(got and got.get("lang"), "de", "the new language")

    t.is_(pub.publish("closed", "gone"), 200, "PUBLISH closed")
    got = alice.expect({"type": "presence"}, timeout=5)
    t.is_(got and got.get("show"), "unavailable", "basic closed -> unavailable")

    # a restart keeps the subscription (the store, ABI 1.1): the dialog
    # is refreshed in place and later publications still arrive
    t.is_(gw.term(), 0, "imgwd stops (subscription stays in the store)")
    alice.close()
    gw.start()
    alice = t.client(gw.listen("corp"))
    alice.bind("alice@corp.example")

    def restored(st):
        c = (gw.community("sipc", st) or {}).get("counters", {})
        return c.get("subscriptions-restored", 0) >= 1 and c.get("presence-in", 0) >= 1
    st = gw.wait_status(restored, timeout=10)
    c = (gw.community("sipc", st) or {}).get("counters", {})
    t.is_(c.get("subscriptions-restored"), 1, "one subscription restored")
    t.cmp_ok(c.get("presence-in", 0), ">=", 1,
             "its in-place refresh brought a NOTIFY with bob's state")
    t.is_(pub.publish("open", "after restart"), 200, "PUBLISH after the restart")
    got = alice.expect({"type": "presence", "status": "after restart"}, timeout=5)
    t.ok(got is not None, "the restored subscription still brings presence",
         repr(alice.skipped[-3:]))

    # the front proxy logged each request with its Route header
    with open(kam.log_path, errors="replace") as f:
        log = f.read()
    routed = re.findall(r"SUBSCRIBE sip:presence\.internal:%d from 127\.0\.0\.1:%d to "
                        r"127\.0\.0\.1 \(Route: <sip:127\.0\.0\.1:%d;lr[^>]*>\)"
                        % (kam.port, gw.sip_port, kam.port), log)
    t.cmp_ok(len(routed), ">=", 1, "the refresh went to the front proxy with its "
             "Route and the presence server's Contact as Request-URI")

    alice.send({"type": "unsubscribe", "to": "bob@sip.example"})
    T.time.sleep(1)
    t.is_(pub.publish("open", "back again"), 200, "PUBLISH after unsubscribe")
    got = alice.expect({"type": "presence"}, timeout=1.5)
    t.ok(got is None, "no presence arrives after unsubscribe (the un-SUBSCRIBE "
         "followed the route set)", repr(got))
    st = gw.community("sipc") or {}
    c = st.get("counters", {})
    t.cmp_ok(c.get("presence-in", 0), ">=", 2, "counted presence-in")
    t.ok(gw.alive(), "imgwd is alive")
    t.is_(gw.term(), 0, "imgwd stops cleanly on SIGTERM (exit 0; no leaks under ASan)")


if __name__ == "__main__":
    T.Test().run(main)
