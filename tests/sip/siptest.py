"""Helpers for the SIP connector's tests (tests/sip/t-*.py).

Builds on tests/integration/imgwtest.py: a gateway with a jsonl community
(corp.example, local) and a sip community (sip.example), a raw SIP
endpoint speaking UDP, TCP or TLS from Python, a private test CA
(openssl), sipp runs bounded in time and a private Kamailio.
"""

import glob
import os
import re
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import time

import imgwtest as T

SRCDIR = os.environ.get("IMGW_SRCDIR", ".")
SCEN = os.path.join(SRCDIR, "tests", "sip")
SIPP = shutil.which("sipp")


def free_udp_port():
    return T.free_port(udp=True)


def free_port_both():
    """A port free for both UDP and TCP on 127.0.0.1 (a moment ago)."""
    for _ in range(50):
        p = T.free_port()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", p))
            return p
        except OSError:
            continue
        finally:
            u.close()
    raise RuntimeError("no free port")


class SipGateway(T.Gateway):
    """imgwd whose sip community's `listen` is not a jsonl-style address:
    wait for the control socket and jsonl listeners, then for an OPTIONS
    answer from the SIP side."""

    sip_port = None
    tls_port = None     # a tls: listener to wait for (a TCP accept)

    def wait_ready(self, timeout=15):
        deadline = time.monotonic() + timeout
        todo = ["unix:" + self.sock]
        for name, keys in self.sections().items():
            if name.startswith("community ") and keys.get("connector") == "jsonl":
                todo.append(keys["listen"])
        if self.tls_port:
            todo.append(("127.0.0.1", self.tls_port))
        while todo:
            if self.proc.poll() is not None:
                raise RuntimeError("imgwd exited with %r while starting"
                                   % self.proc.returncode)
            if time.monotonic() > deadline:
                raise T.Timeout("imgwd not ready: %s waits" % todo[0])
            if T.probe_addr(todo[0]):
                todo.pop(0)
            else:
                time.sleep(0.02)
        if self.sip_port:
            ep = Endpoint("udp")
            try:
                while time.monotonic() < deadline:
                    ep.send(request("OPTIONS", "sip:gw@sip.example", ep,
                                    frm="probe@sip.example", to="gw@sip.example"),
                            self.sip_port)
                    if ep.recv(0.2) is not None:
                        return
                raise T.Timeout("imgwd's SIP side does not answer OPTIONS")
            finally:
                ep.close()


def gateway(t, sip_extra=None, port=None, start=True, more=None):
    """A gateway with corp (jsonl, local) and sipc (sip) communities, and
    the sections of `more` ({"community NAME": {...}}); sip_extra's keys
    replace the sip community's (None removes one)."""
    port = port or free_port_both()
    jport = T.free_port()
    sip = {
        "connector": "sip", "domains": "sip.example",
        "listen": "udp:127.0.0.1:%d tcp:127.0.0.1:%d" % (port, port),
        "trusted": "127.0.0.1/32",
    }
    for k, v in (sip_extra or {}).items():
        if v is None:
            sip.pop(k, None)
        else:
            sip[k] = v
    conf = {
        "community corp": {
            "connector": "jsonl", "local": True, "domains": "corp.example",
            "listen": "tcp:127.0.0.1:%d" % jport,
        },
        "community sipc": sip,
    }
    conf.update(more or {})
    gw = SipGateway(t, conf)
    gw.sip_port = port
    t.gateways.append(gw)
    if start:
        gw.start()
    return gw


_seq = [0]


def request(method, ruri, ep, frm="bob@sip.example", to=None, body=b"",
            ctype="text/plain;charset=UTF-8", headers=(), callid=None,
            cseq=1, branch=None):
    """Bytes of a SIP request from endpoint ep."""
    _seq[0] += 1
    to = to or ruri.split(":", 1)[1]
    branch = branch or "z9hG4bK-t%d-%d" % (os.getpid(), _seq[0])
    callid = callid or "c%d-%d@127.0.0.1" % (os.getpid(), _seq[0])
    if isinstance(body, str):
        body = body.encode("utf-8")
    lines = [
        "%s %s SIP/2.0" % (method, ruri),
        "Via: SIP/2.0/%s 127.0.0.1:%d;branch=%s;rport" % (ep.proto.upper(), ep.port, branch),
        "Max-Forwards: 70",
        "From: <sip:%s>;tag=f%d" % (frm, _seq[0]),
        "To: <sip:%s>" % to,
        "Call-ID: %s" % callid,
        "CSeq: %d %s" % (cseq, method),
    ]
    lines += list(headers)
    if body:
        lines.append("Content-Type: %s" % ctype)
    lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


class Endpoint:
    """A raw SIP endpoint on 127.0.0.1 (or `host`) over UDP or TCP."""

    def __init__(self, proto="udp", host="127.0.0.1"):
        self.proto = proto
        self.buf = b""
        if proto == "udp":
            self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.s.bind((host, 0))
        else:
            self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.s.bind((host, 0))
        self.port = self.s.getsockname()[1]
        self.connected = False

    @classmethod
    def on_stream(cls, sock, proto="tls"):
        """An endpoint on a connected stream socket (e.g. an SSLSocket)."""
        ep = cls.__new__(cls)
        ep.proto, ep.buf, ep.s, ep.connected = proto, b"", sock, True
        ep.port = sock.getsockname()[1]
        return ep

    def close(self):
        self.s.close()

    def send(self, data, port):
        if self.proto == "udp":
            self.s.sendto(data, ("127.0.0.1", port))
            return
        if not self.connected:
            self.s.connect(("127.0.0.1", port))
            self.connected = True
        self.s.sendall(data)

    def recv(self, timeout=3):
        """One message as (status or method, headers dict, body), or None."""
        deadline = time.monotonic() + timeout
        if self.proto == "udp":
            self.s.settimeout(timeout)
            try:
                data = self.s.recv(70000)
            except (socket.timeout, OSError):
                return None
            return parse(data)
        while True:
            m = re.search(rb"\r\n\r\n", self.buf)
            if m:
                head = self.buf[:m.end()]
                cl = re.search(rb"(?im)^(content-length|l)\s*:\s*(\d+)", head)
                n = m.end() + (int(cl.group(2)) if cl else 0)
                if len(self.buf) >= n:
                    data, self.buf = self.buf[:n], self.buf[n:]
                    return parse(data)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.s.settimeout(left)
            try:
                d = self.s.recv(65536)
            except (socket.timeout, OSError):
                return None
            if not d:
                return None
            self.buf += d


def parse(data):
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("utf-8", "replace").split("\r\n")
    first = lines[0]
    hdrs = {}
    for l in lines[1:]:
        if ":" in l:
            k, v = l.split(":", 1)
            hdrs.setdefault(k.strip().lower(), v.strip())
    if first.startswith("SIP/2.0 "):
        kind = int(first.split()[1])
    else:
        kind = first.split(" ", 1)[0]
    return kind, hdrs, body


def answer(msg, code, reason="Answer"):
    """Bytes of a response to a parsed request msg (kind, hdrs, body)."""
    _, h, _ = msg
    lines = ["SIP/2.0 %d %s" % (code, reason), "Via: " + h["via"],
             "From: " + h["from"], "To: " + h["to"] + ";tag=uas1",
             "Call-ID: " + h["call-id"], "CSeq: " + h["cseq"],
             "Content-Length: 0"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def openssl(t, *args):
    p = subprocess.run(["openssl"] + list(args), capture_output=True, text=True,
                       cwd=t.dir, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (" ".join(args), p.stderr))


def make_certs(t, names, ca="ca"):
    """A private CA in the test's folder (CA.pem, CA.key; made once) and,
    for each name, a certificate and key signed by it: subjectAltName
    DNS:NAME, usable as server and as client certificate, in NAME.pem /
    NAME.key (CA-NAME.pem / CA-NAME.key when ca is not "ca")."""
    if not os.path.exists(t.path(ca + ".pem")):
        openssl(t, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-subj", "/CN=imgw test CA %s" % ca, "-keyout", ca + ".key",
                "-out", ca + ".pem")
    for name in names:
        f = name if ca == "ca" else "%s-%s" % (ca, name)
        openssl(t, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + name,
                "-keyout", f + ".key", "-out", f + ".csr")
        with open(t.path(f + ".ext"), "w") as ext:
            ext.write("subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth,clientAuth\n"
                      % name)
        openssl(t, "x509", "-req", "-in", f + ".csr", "-CA", ca + ".pem", "-CAkey",
                ca + ".key", "-CAcreateserial", "-days", "2", "-extfile",
                f + ".ext", "-out", f + ".pem")


def tls_client_ctx(t, cert=None, ca="ca"):
    """A client context trusting the test CA, presenting `cert` if given."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=t.path(ca + ".pem"))
    if cert:
        ctx.load_cert_chain(t.path(cert + ".pem"), t.path(cert + ".key"))
    return ctx


def tls_connect(t, port, cert=None, server_name="corp.example", host="127.0.0.1"):
    """An Endpoint on a new TLS connection to host:port as `cert`, having
    verified the server's certificate for server_name; raises
    ssl.SSLError or OSError when the handshake fails."""
    raw = socket.create_connection((host, port), timeout=5)
    try:
        s = tls_client_ctx(t, cert).wrap_socket(raw, server_hostname=server_name)
    except (ssl.SSLError, OSError):
        raw.close()
        raise
    return Endpoint.on_stream(s)


def sipp(t, scenario, port, proto="udp", keys=None, extra=(), timeout=20,
         local_port=None, background=False, code=None):
    """Run sipp against 127.0.0.1:port (UAC) or as a UAS (no port);
    returns (rc, output) or the Popen when background.  scenario: a file
    in tests/sip, or a path.  code: a copy of the scenario answering with
    that status instead of 200."""
    path = os.path.join(SCEN, scenario)
    scenario = os.path.basename(scenario)
    if code is not None:
        with open(path) as f:
            text = f.read().replace("SIP/2.0 200 Answer", "SIP/2.0 %d Answer" % code)
        path = t.path("%d-%s" % (code, scenario))
        with open(path, "w") as f:
            f.write(text)
    cmd = [SIPP, "-sf", path, "-i", "127.0.0.1",
           "-nostdin", "-timeout", "%ds" % timeout, "-timeout_error",
           "-trace_err", "-error_file", t.path("sipp-%s.err" % scenario)]
    cmd += ["-t", "u1" if proto == "udp" else "t1"]
    if local_port:
        cmd += ["-p", str(local_port)]
    for k, v in (keys or {}).items():
        cmd += ["-key", k, str(v)]
    cmd += list(extra)
    if port:
        cmd += ["127.0.0.1:%d" % port]
    if background:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                cwd=t.dir)
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=timeout + 10, cwd=t.dir)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


def sipp_load(t, scenario, port, rate, seconds, keys, tag):
    """A paced UAC run for the benchmarks: sipp sends rate*seconds calls of
    `scenario` (a path) to 127.0.0.1:port over UDP at `rate`/s and exits.
    Returns a dict: calls, rc, failed (FailedCall, -1 when sipp wrote no
    statistics), retrans (Retransmissions), rtts (response times in ms,
    sipp's whole milliseconds), sipp_cpu (its user+system seconds),
    elapsed (seconds from its start to its exit).
    Its files go to a new folder `tag` (or tag.N) in the test's folder."""
    calls = int(rate * seconds)
    wd, n = t.path(tag), 0
    while os.path.exists(wd):
        n += 1
        wd = t.path("%s.%d" % (tag, n))
    os.makedirs(wd)
    cmd = [SIPP, "-sf", scenario, "-i", "127.0.0.1",
           "-t", "u1", "-nostdin", "-r", str(rate), "-m", str(calls),
           "-l", str(max(100, rate * 2)), "-timeout", "%ds" % (seconds + 40),
           "-trace_stat", "-stf", os.path.join(wd, "stat.csv"),
           "-trace_rtt", "-rtt_freq", "1", "-trace_err",
           "-error_file", os.path.join(wd, "err.log")]
    for k, v in keys.items():
        cmd += ["-key", k, str(v)]
    cmd.append("127.0.0.1:%d" % port)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=seconds + 120, cwd=wd)
    elapsed = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = {"calls": calls, "rc": p.returncode, "failed": -1, "retrans": 0,
           "elapsed": elapsed,
           "rtts": [], "sipp_cpu": (ru1.ru_utime - ru0.ru_utime) +
           (ru1.ru_stime - ru0.ru_stime)}
    try:
        with open(os.path.join(wd, "stat.csv")) as f:
            rows = [l.strip().split(";") for l in f if l.strip()]
        hdr, last = rows[0], rows[-1]
        res["failed"] = int(last[hdr.index("FailedCall(C)")])
        res["retrans"] = int(last[hdr.index("Retransmissions(C)")])
    except (OSError, ValueError, IndexError):
        pass
    for fn in glob.glob(os.path.join(wd, "*_rtt.csv")):
        with open(fn) as f:
            for line in f:
                parts = line.strip().split(";")
                try:
                    res["rtts"].append(float(parts[1]))  # response_time_ms
                except (ValueError, IndexError):
                    pass
    return res


def pct(values, p):
    """The p-quantile (0..1) of values, NaN when there are none."""
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


def sipp_errors(t, scenario):
    try:
        with open(t.path("sipp-%s.err" % os.path.basename(scenario))) as f:
            return f.read()[-2000:]
    except OSError:
        return ""


KAMAILIO = shutil.which("kamailio") or (
    "/usr/sbin/kamailio" if os.path.exists("/usr/sbin/kamailio") else None)
KAM_DBTEXT = "/usr/share/kamailio/dbtext/kamailio"
KAM_MODULES = "/usr/lib/x86_64-linux-gnu/kamailio/modules"


def kamailio_missing(modules=("presence.so", "presence_xml.so", "db_text.so"),
                     package="kamailio-presence-modules"):
    """Why a Kamailio with these modules cannot run here, or None."""
    if KAMAILIO is None:
        return "kamailio is not installed (apt-get install kamailio)"
    for m in modules:
        if not os.path.exists(os.path.join(KAM_MODULES, m)):
            return "%s missing (apt-get install %s)" % (m, package)
    return None


class Kamailio(T.Server):
    """A private Kamailio on 127.0.0.1:port (UDP and TCP) from a config
    template: `template` (default tests/sip/kamailio.cfg.in, the presence
    server, db_text tables in its own folder) with @PORT@, @DIR@ and the
    keys of `subst` (@KEY@) replaced.  `files` maps more file names to
    templates, written into the same folder (@DIR@) the same way (e.g. the
    tls module's profiles).  `ready` is (proto, port) the started server
    must answer an OPTIONS on (default: UDP on port); `env` the
    environment it runs in (default ours).  test.track(kam) stops it at
    the end and dumps its log on failure."""

    dump_last = 40

    def __init__(self, t, port=None, template=None, subst=None, name="kamailio",
                 ready=None, env=None, files=None):
        self.t = t
        self.env = env
        self.name = name
        self.port = port or free_port_both()
        self.dir = t.path(name)
        os.makedirs(os.path.join(self.dir, "db"), exist_ok=True)
        for tab in ("version", "presentity", "active_watchers", "watchers",
                    "xcap", "pua"):
            shutil.copy(os.path.join(KAM_DBTEXT, tab), os.path.join(self.dir, "db"))
        self.cfg = os.path.join(self.dir, "kamailio.cfg")
        todo = {"kamailio.cfg": template or os.path.join(SCEN, "kamailio.cfg.in")}
        todo.update(files or {})
        for fname, tpl in todo.items():
            with open(tpl) as f:
                text = f.read().replace("@PORT@", str(self.port)).replace(
                    "@DIR@", self.dir)
            for k, v in (subst or {}).items():
                text = text.replace("@%s@" % k, str(v))
            with open(os.path.join(self.dir, fname), "w") as f:
                f.write(text)
        self.pidfile = os.path.join(self.dir, "kamailio.pid")
        self.log_path = os.path.join(self.dir, "kamailio.log")
        self.ready = ready or ("udp", self.port)

    def start(self, timeout=15):
        self.spawn([KAMAILIO, "-f", self.cfg, "-P", self.pidfile, "-DD", "-E"],
                   self.log_path, env=self.env)
        ep = Endpoint(self.ready[0])
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if not self.alive():
                    raise RuntimeError("kamailio exited: %s" % self.log()[-2000:])
                try:
                    ep.send(request("OPTIONS", "sip:127.0.0.1:%d" % self.ready[1], ep,
                                    to="ping@sip.example"), self.ready[1])
                    if ep.recv(0.2) is not None:
                        return self
                except OSError:
                    time.sleep(0.1)
                    ep.close()
                    ep = Endpoint(self.ready[0])
            raise T.Timeout("kamailio does not answer OPTIONS")
        finally:
            ep.close()

    def halt(self, sig=signal.SIGTERM, timeout=10):
        # SIGTERM: the main process then stops its children too
        super().halt(sig, timeout)

    stop = halt


def kamailio_tls_relay(t, cert, gw_port, gw_transport="tls", uas_port=0,
                       name="kamailio-tls"):
    """A Kamailio relay from tests/sip/kamailio-tls.cfg.in (not started):
    UDP on 127.0.0.1:kam.port -> imgwd at gw_transport:127.0.0.1:gw_port;
    TLS on 127.0.0.2:kam.tls_port (imgwd's route to it) -> a sipp UAS on
    UDP uas_port.  It presents certificate `cert` (files CERT.pem and
    CERT.key, see make_certs) and verifies peers against the test CA
    (ca.pem)."""
    tls_port = free_port_both()
    kam = Kamailio(t, name=name, template=os.path.join(SCEN, "kamailio-tls.cfg.in"),
                   files={"tls.cfg": os.path.join(SCEN, "kamailio-tls-profiles.cfg.in")},
                   subst={"TLS_PORT": tls_port, "GW_PORT": gw_port,
                          "GW_TRANSPORT": gw_transport, "UAS_PORT": uas_port or 9,
                          "CERT": t.path(cert + ".pem"), "KEY": t.path(cert + ".key"),
                          "CA": t.path("ca.pem")})
    kam.tls_port = tls_port
    return kam


# the private DNS server lives with the other peer helpers
DNSMASQ = T.DNSMASQ
Dnsmasq = T.Dnsmasq
