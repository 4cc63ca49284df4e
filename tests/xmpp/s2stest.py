"""Helpers for the xmpp connector's server-to-server tests.

    import s2stest as S
    pki = S.Pki(t)                       # test CAs and certificates (openssl)
    pro = S.S2SProsody(t, gw_port, users={"alice": "pw"}, pki=pki)

S2SProsody is xmpptest.Prosody with s2s enabled: its own s2s port, TLS
with the test CA (s2s_secure_auth) or clear-text dialback, and a small
Prosody module (written next to its config) that sends its s2s for the
gateway's domains to 127.0.0.1:<gateway port> instead of resolving DNS.
Debian 12's Prosody resolves through its legacy net.dns (lua-unbound is
not installed), which reads no hosts file and cannot be told a port; the
module replaces net.resolvers.service.new for those domains only.

RawPeer is a hand-made s2s peer (a Python socket, optionally TLS with a
client certificate) for what a real server never sends: forged from,
malformed XML, oversized stanzas.
"""

import base64
import hashlib
import os
import socket
import ssl
import subprocess
import time
import xml.etree.ElementTree as ET

import imgwtest as T
import xmpptest as X

NS_SERVER = "jabber:server"
NS_STREAM = "http://etherx.jabber.org/streams"
NS_STREAMS = "urn:ietf:params:xml:ns:xmpp-streams"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_DB = "jabber:server:dialback"
GW_DOMAIN = "corp.example"

PEERS_MODULE = r'''
-- imgw tests: route s2s for some domains to fixed loopback ports
local service = require "net.resolvers.service";
local manual = require "net.resolvers.manual";
local routes = module:get_option("imgw_test_routes", {});
if not service.imgw_orig_new then service.imgw_orig_new = service.new; end
local orig = service.imgw_orig_new;
service.new = function (hostname, service_name, proto, extra)
	local port = routes[hostname];
	if port then
		if service_name == "xmpp-server" then
			module:log("info", "imgw test route: %s -> 127.0.0.1:%d", hostname, port);
			return manual.new({ { "tcp4", "127.0.0.1", port, extra } }, proto, extra);
		end
		return manual.new({}, proto, extra);
	end
	return orig(hostname, service_name, proto, extra);
end
'''


def run(*args):
    p = subprocess.run(list(args), capture_output=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(args), p.stderr.decode("utf-8", "replace")))


class Pki:
    """Two test CAs (good, other) and certificates on demand."""

    def __init__(self, test):
        self.dir = test.path("pki")
        os.makedirs(self.dir, exist_ok=True)
        self.ca = self.make_ca("ca")
        self.other_ca = self.make_ca("other-ca")

    def p(self, name):
        return os.path.join(self.dir, name)

    def make_ca(self, name):
        run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", self.p(name + ".key"),
            "-out", self.p(name + ".crt"), "-days", "2", "-subj",
            "/CN=imgw test %s" % name, "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        return name

    def cert(self, domain, ca=None, tag=""):
        """(cert, key) for domain signed by ca (default: the good CA); a
        different tag makes another certificate (and key) for the same
        domain and CA."""
        ca = ca or self.ca
        base = self.p("%s-%s%s" % (domain, ca, tag))
        if os.path.exists(base + ".crt"):
            return base + ".crt", base + ".key"
        run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", base + ".key", "-out", base + ".csr", "-subj",
            "/CN=" + domain)
        with open(base + ".ext", "w") as f:
            f.write("subjectAltName=DNS:%s\nbasicConstraints=CA:FALSE\n"
                    "keyUsage=digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth,clientAuth\n" % domain)
        run("openssl", "x509", "-req", "-in", base + ".csr", "-CA", self.p(ca + ".crt"),
            "-CAkey", self.p(ca + ".key"), "-CAcreateserial", "-out", base + ".crt",
            "-days", "2", "-extfile", base + ".ext")
        os.chmod(base + ".key", 0o644)
        return base + ".crt", base + ".key"

    def spki_pin(self, crt):
        """sha256:BASE64 of the certificate's public key (SPKI)."""
        pub = subprocess.run(["openssl", "x509", "-in", crt, "-pubkey", "-noout"],
                             capture_output=True, check=True, timeout=30).stdout
        der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                             capture_output=True, check=True, timeout=30).stdout
        return "sha256:" + base64.b64encode(hashlib.sha256(der).digest()).decode()

    def cert_pin(self, crt):
        """sha256:HEX with colons of the whole certificate (DER)."""
        der = subprocess.run(["openssl", "x509", "-in", crt, "-outform", "DER"],
                             capture_output=True, check=True, timeout=30).stdout
        h = hashlib.sha256(der).hexdigest().upper()
        return "sha256:" + ":".join(h[i:i + 2] for i in range(0, len(h), 2))

    def ca_file(self, ca=None):
        return self.p((ca or self.ca) + ".crt")


class S2SProsody(X.Prosody):
    """A private Prosody with s2s towards the gateway at gw_port."""

    def __init__(self, test, gw_port, pki=None, routes=None, **kw):
        self.gw_port = gw_port
        self.pki = pki
        self.routes = routes or {GW_DOMAIN: gw_port}
        super().__init__(test, **kw)

    def write_config(self):
        super().write_config()
        with open(self.conf) as f:
            text = f.read()
        mod_dir = os.path.join(self.dir, "modules")
        os.makedirs(mod_dir, exist_ok=True)
        with open(os.path.join(mod_dir, "mod_imgw_test_routes.lua"), "w") as f:
            f.write(PEERS_MODULE)
        routes = ", ".join('["%s"] = %d' % (d, p) for d, p in self.routes.items())
        glob = ['plugin_paths = { %s }' % X.lua_str(mod_dir),
                'imgw_test_routes = { %s }' % routes,
                's2s_timeout = 10']
        if self.pki is not None:
            crt, key = self.pki.cert(X.DOMAIN)
            glob += ['ssl = { certificate = %s; key = %s; cafile = %s; }'
                     % (X.lua_str(crt), X.lua_str(key), X.lua_str(self.pki.ca_file())),
                     's2s_require_encryption = true', 's2s_secure_auth = true']
        else:
            glob += ['s2s_require_encryption = false', 's2s_secure_auth = false']
        text = text.replace('modules_disabled = { "s2s" }',
                            'modules_disabled = { }')
        text = text.replace('"posix" }', '"posix", "dialback", %s"imgw_test_routes" }'
                            % ('"tls", ' if self.pki is not None else ""))
        text = text.replace('VirtualHost', "\n".join(glob) + "\nVirtualHost", 1)
        with open(self.conf, "w") as f:
            f.write(text)

    def start(self, timeout=15):
        super().start(timeout)
        deadline = time.monotonic() + timeout
        while not T.probe_addr(("127.0.0.1", self.s2s_port)):
            if time.monotonic() > deadline:
                raise T.Timeout("prosody not listening on s2s %d" % self.s2s_port)
            time.sleep(0.02)
        return self


def gateway_config(pro, corp_port, gw_port, pki=None, **xmpp_opts):
    """imgwd: a local jsonl community corp.example and the XMPP community
    xmpp.example in s2s mode, serving corp.example on gw_port."""
    xc = {
        "connector": "xmpp", "domains": X.DOMAIN, "mode": "s2s",
        "local-domains": GW_DOMAIN, "listen": "tcp:127.0.0.1:%d" % gw_port,
        "peer": "%s=127.0.0.1:%d" % (X.DOMAIN, pro.s2s_port),
    }
    if pki is not None:
        crt, key = pki.cert(GW_DOMAIN)
        xc.update({"tls-cert": crt, "tls-key": key, "tls-ca": pki.ca_file()})
    else:
        xc["allow-plaintext"] = "yes"
    xc.update(xmpp_opts)
    return {
        "community corp": {
            "connector": "jsonl", "local": True, "domains": GW_DOMAIN,
            "listen": "tcp:127.0.0.1:%d" % corp_port, "max-line": 4 * 1024 * 1024,
        },
        "community xmpp": xc,
    }


def stream_condition(el):
    """The condition of a <stream:error/> element, else None."""
    if el is None or el.tag != "{%s}error" % NS_STREAM:
        return None
    for c in el:
        if c.tag.startswith("{%s}" % NS_STREAMS) and not c.tag.endswith("}text"):
            return c.tag.split("}", 1)[1]
    return "?"


class StreamClosed(Exception):
    pass


class RawPeer:
    """A hand-made s2s peer connecting to the gateway as `domain`."""

    def __init__(self, port, domain, cert=None, ca=None, timeout=10):
        self.domain = domain
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.timeout = timeout
        self.cert, self.ca = cert, ca
        self.eof = False
        self.features = None
        self._open()

    def _open(self):
        self.parser = ET.XMLPullParser(events=("start", "end"))
        self.depth = 0
        self.header = None
        self.queue = []
        self.send("<?xml version='1.0'?><stream:stream xmlns='%s' xmlns:stream='%s' "
                  "xmlns:db='%s' from='%s' to='%s' version='1.0'>"
                  % (NS_SERVER, NS_STREAM, NS_DB, self.domain, GW_DOMAIN))
        self.features = self.next()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def next(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while not self.queue:
            left = deadline - time.monotonic()
            if left <= 0 or self.eof:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return None
            except (OSError, ssl.SSLError):
                data = b""
            if not data:
                self.eof = True
                return None
            self.parser.feed(data)
            for ev, el in self.parser.read_events():
                if ev == "start":
                    if self.depth == 0:
                        self.header = el
                    self.depth += 1
                else:
                    self.depth -= 1
                    if self.depth == 1:
                        self.queue.append(el)
        return self.queue.pop(0)

    def starttls(self):
        """STARTTLS with our certificate; returns the new features."""
        if self.features is None or self.features.find("{%s}starttls" % NS_TLS) is None:
            raise StreamClosed("no starttls offered: %r" % self.features)
        self.send("<starttls xmlns='%s'/>" % NS_TLS)
        r = self.next()
        if r is None or r.tag != "{%s}proceed" % NS_TLS:
            raise StreamClosed("no proceed: %r" % r)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.ca)
        if self.cert:
            ctx.load_cert_chain(self.cert[0], self.cert[1])
        self.sock = ctx.wrap_socket(self.sock, server_hostname=GW_DOMAIN)
        self._open()
        return self.features

    def sasl_external(self):
        self.send("<auth xmlns='%s' mechanism='EXTERNAL'>%s</auth>"
                  % (NS_SASL, base64.b64encode(self.domain.encode()).decode()))
        r = self.next()
        if r is None or r.tag != "{%s}success" % NS_SASL:
            return r
        self._open()
        return r

    def stream_error(self, timeout=5):
        """The condition of the stream error that ends the stream, or None."""
        while True:
            el = self.next(timeout)
            if el is None:
                return None
            if el.tag == "{%s}error" % NS_STREAM:
                return stream_condition(el)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
