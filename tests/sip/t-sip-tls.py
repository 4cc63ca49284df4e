#!/usr/bin/env python3
"""SIP over TLS: certificates checked both ways, trust by certificate name.

A private CA (openssl, siptest.make_certs) signs the gateway's certificate (corp.example),
a partner's (tls.example) and a rogue one (evil.example).  The sip
community listens on tls: and trusts no address but its route host
(127.0.0.3); `tls-names = tls.example` trusts verified certificates
with that name.  Inbound: the partner's client certificate -> 202 and
the message arrives; the rogue certificate and no certificate -> 403.
The client verifies the gateway's certificate for corp.example.
Outbound: imgwd connects to a TLS UAS presenting tls.example (Via
SIP/2.0/TLS, 200 -> no error); to a domain the UAS certificate does not
name -> the handshake fails and the sender gets service-unavailable.
Presence: bob@tls.example SUBSCRIBEs to alice over his TLS connection
(200); NOTIFY pending, active and one with alice's PIDF reach his
domain's TLS peer, each with a TLS Via.
"""

import shutil
import socket
import ssl
import threading
import time

import siptest as S
import imgwtest as T


def tls_send(t, port, cert, data):
    """Send data over a new TLS connection as `cert`; the answer's code."""
    try:
        ep = S.tls_connect(t, port, cert)
    except (ssl.SSLError, OSError) as e:
        return "handshake: %s" % e
    try:
        ep.s.sendall(data)
        r = ep.recv(5)
        return r and r[0]
    finally:
        ep.close()


class Uas(threading.Thread):
    """A TLS UAS on 127.0.0.3 presenting tls.example; answers 200."""

    def __init__(self, t):
        super().__init__(daemon=True)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(t.path("tls.example.pem"), t.path("tls.example.key"))
        self.ctx.load_verify_locations(t.path("ca.pem"))
        self.ctx.verify_mode = ssl.CERT_OPTIONAL
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.3", 0))
        self.ls.listen(8)
        self.port = self.ls.getsockname()[1]
        self.got = []
        self.peer_certs = []
        self.errors = []

    def run(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        if True:
            try:
                s = self.ctx.wrap_socket(c, server_side=True)
            except (ssl.SSLError, OSError) as e:
                self.errors.append(str(e))
                c.close()
                return
            self.peer_certs.append(s.getpeercert())
            ep = S.Endpoint.on_stream(s)
            while True:
                m = ep.recv(10)
                if m is None:
                    break
                self.got.append(m)
                s.sendall(S.answer(m, 200, "OK"))
            s.close()


def main(t):
    if shutil.which("openssl") is None:
        t.skip("SIP over TLS", "openssl is not installed")
        return
    S.make_certs(t, ("corp.example", "tls.example", "evil.example"))
    uas = Uas(t)
    uas.start()
    tls_port = S.free_port_both()
    gw = S.gateway(t, {
        "listen": "udp:127.0.0.1:%d tls:127.0.0.1:%d" % (S.free_port_both(), tls_port),
        "domains": "sip.example tls.example other.example",
        "trusted": "10.99.0.0/16",
        "route": "tls.example=tls:127.0.0.3:%d other.example=tls:127.0.0.3:%d"
                 % (uas.port, uas.port),
        "tls-cert": t.path("corp.example.pem"), "tls-key": t.path("corp.example.key"),
        "tls-ca": t.path("ca.pem"), "tls-names": "tls.example",
    }, start=False)
    # the SIP readiness probe comes from 127.0.0.1, which is not trusted
    # here: wait for the jsonl side and the TLS port instead
    gw.sip_port, gw.tls_port = None, tls_port
    gw.start()
    alice = t.client(gw.listen("corp"))
    alice.bind("alice@corp.example")

    class E:
        proto = "tls"
        port = 5061
    msg = lambda frm, body: S.request("MESSAGE", "sip:alice@corp.example", E,
                                      frm=frm, body=body)
    t.is_(tls_send(t, tls_port, "tls.example", msg("bob@tls.example", "over tls")),
          202, "a client certificate named in tls-names: 202")
    got = alice.expect({"type": "message", "body": "over tls"})
    t.is_(got and got.get("from"), "bob@tls.example", "the message arrives")
    t.is_(tls_send(t, tls_port, "evil.example", msg("eve@tls.example", "x")), 403,
          "a verified certificate with another name: 403")
    t.is_(tls_send(t, tls_port, None, msg("eve@tls.example", "x")), 403,
          "no client certificate (and an untrusted address): 403")
    raw = socket.create_connection(("127.0.0.1", tls_port), timeout=5)
    try:
        S.tls_client_ctx(t).wrap_socket(raw, server_hostname="wrong.example")
        t.ok(False, "the gateway's certificate does not name wrong.example")
    except ssl.SSLCertVerificationError:
        t.ok(True, "clients can verify the gateway's certificate (it names "
             "corp.example, not wrong.example)")
    finally:
        raw.close()

    alice.send({"type": "message", "to": "carol@tls.example", "id": "o1",
                "body": "to the partner"})
    err = alice.expect({"type": "error", "id": "o1"}, timeout=3)
    t.ok(err is None, "outbound over TLS: no error", repr(err))
    m = uas.got[0] if uas.got else None
    t.ok(m is not None and m[0] == "MESSAGE", "the TLS UAS got the MESSAGE")
    t.like(m and m[1].get("via"), "SIP/2.0/TLS", "Via says TLS")
    t.is_(m and m[2].decode(), "to the partner", "the body arrives")
    t.ok(uas.peer_certs and uas.peer_certs[0], "imgwd presented its certificate "
         "to the UAS", repr(uas.peer_certs))

    alice.send({"type": "message", "to": "dave@other.example", "id": "o2",
                "body": "wrong name"})
    err = alice.expect({"type": "error", "id": "o2"}, timeout=5)
    t.is_(err and err.get("condition"), "service-unavailable",
          "a peer certificate not naming the domain: the handshake fails, "
          "service-unavailable")
    c = (gw.community("sipc") or {}).get("counters", {})
    t.cmp_ok(c.get("sip-tls-failures", 0), ">=", 1, "the failure is counted")

    # presence over TLS: bob@tls.example SUBSCRIBEs over his own TLS
    # connection; the NOTIFYs go to tls.example's route (the TLS UAS)
    seen = len(uas.got)
    ep = S.tls_connect(t, tls_port, "tls.example")
    ep.s.sendall(S.request("SUBSCRIBE", "sip:alice@corp.example", E,
                           frm="bob@tls.example", body=b"", callid="tls-sub@t",
                           headers=["Event: presence", "Expires: 600",
                                    "Contact: <sip:bob@127.0.0.3:%d;transport=tls>"
                                    % uas.port, "Accept: application/pidf+xml"]))
    r = ep.recv(5)
    t.is_(r and r[0], 200, "SUBSCRIBE over TLS: 200")
    t.like(r and r[1].get("contact") or "", ":%d;transport=tls>" % tls_port,
           "its Contact names the TLS listener (port and transport), not UDP's")
    got = alice.expect({"type": "subscribe"})
    t.is_(got and got.get("from"), "bob@tls.example", "alice gets the subscribe")
    alice.send({"type": "subscribed", "to": "bob@tls.example"})
    alice.send({"type": "presence", "to": "bob@tls.example", "show": "dnd",
                "status": "over tls"})
    deadline = time.monotonic() + 5
    states = []
    while time.monotonic() < deadline and not any(b"over tls" in m[2] for m in states):
        time.sleep(0.05)
        states = [m for m in uas.got[seen:] if m[0] == "NOTIFY"]
    t.like(states and states[0][1].get("subscription-state"), "pending",
           "NOTIFY pending reaches the watcher's TLS peer")
    t.like(states and states[-1][1].get("subscription-state"), "active",
           "subscribed -> NOTIFY active")
    t.like(states and states[-1][2].decode(), "over tls", "presence -> NOTIFY "
           "with the PIDF note")
    t.ok(all("SIP/2.0/TLS" in m[1].get("via", "") for m in states),
         "every NOTIFY went over TLS", repr([m[1].get("via") for m in states]))
    ep.close()
    t.is_(gw.term(), 0, "imgwd stops cleanly on SIGTERM")
    uas.ls.close()


if __name__ == "__main__":
    T.Test().run(main)
