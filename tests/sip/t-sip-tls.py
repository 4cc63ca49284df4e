#!/usr/bin/env python3
"""SIP over TLS: certificates checked both ways, trust by certificate name.

A private CA (openssl) signs the gateway's certificate (corp.example),
a partner's (tls.example) and a rogue one (evil.example).  The sip
community listens on tls: and trusts no address but its route host
(127.0.0.3); `tls-names = tls.example` trusts verified certificates
with that name.  Inbound: the partner's client certificate -> 202 and
the message arrives; the rogue certificate and no certificate -> 403.
The client verifies the gateway's certificate for corp.example.
Outbound: imgwd connects to a TLS UAS presenting tls.example (Via
SIP/2.0/TLS, 200 -> no error); to a domain the UAS certificate does not
name -> the handshake fails and the sender gets service-unavailable.
"""

import os
import re
import shutil
import socket
import ssl
import subprocess
import threading

import siptest as S
import imgwtest as T


def openssl(t, *args):
    p = subprocess.run(["openssl"] + list(args), capture_output=True, text=True,
                       cwd=t.dir, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (" ".join(args), p.stderr))


def make_certs(t):
    openssl(t, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=imgw test CA", "-keyout", "ca.key", "-out", "ca.pem")
    for name in ("corp.example", "tls.example", "evil.example"):
        openssl(t, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + name,
                "-keyout", name + ".key", "-out", name + ".csr")
        with open(t.path(name + ".ext"), "w") as f:
            f.write("subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth,clientAuth\n"
                    % name)
        openssl(t, "x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey",
                "ca.key", "-CAcreateserial", "-days", "2", "-extfile",
                name + ".ext", "-out", name + ".pem")


def client_ctx(t, cert=None):
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=t.path("ca.pem"))
    if cert:
        ctx.load_cert_chain(t.path(cert + ".pem"), t.path(cert + ".key"))
    return ctx


def tls_send(t, port, cert, data):
    """Send data over a new TLS connection as `cert`; the answer's code."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s = client_ctx(t, cert).wrap_socket(raw, server_hostname="corp.example")
    except (ssl.SSLError, OSError) as e:
        raw.close()
        return "handshake: %s" % e
    ep = S.Endpoint.__new__(S.Endpoint)
    ep.proto, ep.buf, ep.s, ep.connected = "tcp", b"", s, True
    try:
        s.sendall(data)
        r = ep.recv(5)
        return r and r[0]
    finally:
        s.close()


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
            ep = S.Endpoint.__new__(S.Endpoint)
            ep.proto, ep.buf, ep.s, ep.connected = "tcp", b"", s, True
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
    make_certs(t)
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
    gw.sip_port = int(re.search(r"udp:127.0.0.1:(\d+)", gw.sections()[
        "community sipc"]["listen"]).group(1))
    # the SIP readiness probe comes from 127.0.0.1, which is not trusted
    # here: wait for the jsonl side and the TLS port instead
    gw_sip_port, gw.sip_port = gw.sip_port, None
    gw.start()
    deadline = T.time.monotonic() + 10
    while not T.probe_addr(("127.0.0.1", tls_port)) and T.time.monotonic() < deadline:
        T.time.sleep(0.05)
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
        client_ctx(t).wrap_socket(raw, server_hostname="wrong.example")
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
    t.is_(gw.term(), 0, "imgwd stops cleanly on SIGTERM")
    uas.ls.close()


if __name__ == "__main__":
    T.Test().run(main)
