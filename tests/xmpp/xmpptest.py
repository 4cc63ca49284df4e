"""Helpers for imgw's XMPP tests: a private Prosody or ejabberd and real
XMPP clients.

    import imgwtest as T
    import xmpptest as X

    t = T.Test()
    pro = X.Prosody(t, users={"alice": "pw"})        # started, users made
    gw = t.gateway(X.gateway_config(t, pro, ...))
    alice = X.Client(t, pro, "alice", "pw")          # logged in, bound
    alice.send("<message .../>")
    st = alice.expect(lambda e: e.tag == X.C("message"))

Prosody runs in the foreground (daemonize = false, run_as_root = true) on
127.0.0.1 with free ports and a private data folder under the test's
temporary folder; c2s without TLS (PLAIN allowed) for the test clients, the
component port for imgwd.  Ejabberd(t, users=...) is the same with a
private ejabberd (see its docstring for how it runs without ejabberdctl);
both have c2s_port, component_port, component, secret, start, kill.  The
client is a small XMPP client on a socket
with xml.etree's pull parser: SASL PLAIN, resource binding, presence;
received stanzas are xml.etree Elements with namespaced tags.
"""

import base64
import os
import signal
import socket
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

import imgwtest as T

PROSODY = os.environ.get("PROSODY", "prosody")
PROSODYCTL = os.environ.get("PROSODYCTL", "prosodyctl")

DOMAIN = "xmpp.example"
COMPONENT = "gw.xmpp.example"
SECRET = "component-secret-\u00e9"

NS_CLIENT = "jabber:client"
NS_STREAM = "http://etherx.jabber.org/streams"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_CHATSTATES = "http://jabber.org/protocol/chatstates"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def C(tag, ns=NS_CLIENT):
    """The expanded name of a tag, {ns}tag."""
    return "{%s}%s" % (ns, tag)


def have_prosody():
    try:
        subprocess.run([PROSODY, "-v"], capture_output=True, timeout=0.01)
    except FileNotFoundError:
        return False
    except Exception:
        pass
    return True


def lua_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Prosody(T.Server):
    """A private Prosody for one test."""

    def __init__(self, test, users=None, component=COMPONENT, secret=SECRET,
                 start=True, name="prosody"):
        self.t = test
        self.name = name
        self.dir = test.path(name)
        os.makedirs(os.path.join(self.dir, "data"), exist_ok=True)
        self.c2s_port = T.free_port()
        self.s2s_port = T.free_port()
        self.component_port = T.free_port()
        self.component = component
        self.secret = secret
        self.conf = os.path.join(self.dir, "prosody.cfg.lua")
        self.log_path = os.path.join(self.dir, "prosody.log")
        self.write_config()
        for u, pw in (users or {}).items():
            self.register(u, pw)
        if start:
            self.start()
        test.track(self)

    def write_config(self):
        text = """
run_as_root = true
daemonize = false
pidfile = %(pid)s
data_path = %(data)s
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { %(c2s)d }
s2s_ports = { %(s2s)d }
component_ports = { %(comp)d }
component_interfaces = { "127.0.0.1" }
http_ports = { }
https_ports = { }
modules_enabled = { "roster", "saslauth", "disco", "ping", "offline", "posix" }
modules_disabled = { "s2s" }
c2s_require_encryption = false
c2s_stanza_size_limit = 4 * 1024 * 1024
allow_unencrypted_plain_auth = true
authentication = "internal_plain"
storage = "internal"
log = { debug = %(log)s }
VirtualHost "%(domain)s"
Component "%(component)s"
    component_secret = %(secret)s
""" % {
            "pid": lua_str(os.path.join(self.dir, "prosody.pid")),
            "data": lua_str(os.path.join(self.dir, "data")),
            "c2s": self.c2s_port, "s2s": self.s2s_port,
            "comp": self.component_port, "log": lua_str(self.log_path),
            "domain": DOMAIN, "component": self.component,
            "secret": lua_str(self.secret),
        }
        with open(self.conf, "w") as f:
            f.write(text)

    def register(self, user, password):
        p = subprocess.run([PROSODYCTL, "--config", self.conf, "register", user,
                            DOMAIN, password], capture_output=True, timeout=30,
                           stdin=subprocess.DEVNULL)
        if p.returncode != 0:
            raise RuntimeError("prosodyctl register %s: %s" % (
                user, (p.stdout + p.stderr).decode("utf-8", "replace")))

    def start(self, timeout=15):
        self.spawn([PROSODY, "--config", self.conf],
                   os.path.join(self.dir, "prosody.out"))
        self.wait_listening([("127.0.0.1", port) for port in
                             (self.c2s_port, self.component_port)], timeout)
        return self

    def kill(self, sig=signal.SIGKILL):
        self.halt(sig)


EJABBERD_ERL = os.environ.get("EJABBERD_ERL", "erl")
EJABBERD_LIBS = os.environ.get("EJABBERD_LIBS", "/usr/lib/x86_64-linux-gnu")


def have_ejabberd():
    """True when Debian's ejabberd (its Erlang application) and erl are
    installed."""
    import glob
    import shutil
    return (shutil.which(EJABBERD_ERL) is not None and
            bool(glob.glob(os.path.join(EJABBERD_LIBS, "ejabberd-*", "ebin",
                                        "ejabberd.app"))))


def yaml_str(s):
    """A double-quoted YAML scalar."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Ejabberd(T.Server):
    """A private ejabberd for one test, with the interface of Prosody
    (c2s_port, component_port, component, secret, start, kill, alive, log).

    Debian's ejabberdctl cannot run a private node as root: it always
    switches to the ejabberd user (which cannot enter the test's folder)
    and registers the node with the one system-wide epmd.  So the node is
    started the way ejabberdctl starts it, with erl directly: its own
    node name and cookie, no epmd (-erl_epmd_port: the node listens for
    Erlang distribution on a port of its own), its own config, log and
    Mnesia spool under the test's folder, HOME there too (erl writes
    .erlang.cookie into HOME).  Users are registered the way "ejabberdctl
    register" does it: a hidden erl node running ejabberd_ctl against ours.
    ejabberd needs about a second to start; start() waits for its ports.
    """

    def __init__(self, test, users=None, component=COMPONENT, secret=SECRET,
                 start=True, name="ejabberd"):
        self.t = test
        self.name = name
        self.dir = test.path(name)
        for d in ("spool", "home"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        self.c2s_port = T.free_port()
        self.component_port = T.free_port()
        self.dist_port = T.free_port()
        self.component = component
        self.secret = secret
        self.node = "imgwt%d@localhost" % self.dist_port
        self.cookie = base64.b32encode(os.urandom(10)).decode()
        self.conf = os.path.join(self.dir, "ejabberd.yml")
        self.log_path = os.path.join(self.dir, "ejabberd.log")
        self.users = dict(users or {})
        self.registered = set()
        self.write_config()
        if start:
            self.start()
        test.track(self)

    def write_config(self):
        text = """\
hosts:
  - %(domain)s
loglevel: info
log_rotate_count: 0
language: en
auth_method: internal
auth_password_format: plain
listen:
  -
    port: %(c2s)d
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: 4194304
    starttls_required: false
    access: c2s
  -
    port: %(comp)d
    ip: "127.0.0.1"
    module: ejabberd_service
    max_stanza_size: 4194304
    hosts:
      %(component)s:
        password: %(secret)s
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
api_permissions:
  "console commands":
    from:
      - ejabberd_ctl
    who: all
    what: "*"
shaper_rules:
  max_user_offline_messages: 10000
modules:
  mod_roster: {}
  mod_disco: {}
  mod_ping: {}
  mod_offline:
    access_max_user_messages: max_user_offline_messages
  mod_admin_extra: {}
""" % {"domain": DOMAIN, "c2s": self.c2s_port, "comp": self.component_port,
       "component": self.component, "secret": yaml_str(self.secret)}
        with open(self.conf, "w", encoding="utf-8") as f:
            f.write(text)

    def _env(self):
        env = dict(os.environ)
        env.update({
            "HOME": os.path.join(self.dir, "home"),
            "EJABBERD_CONFIG_PATH": self.conf,
            "EJABBERD_LOG_PATH": self.log_path,
            "ERL_LIBS": EJABBERD_LIBS,
            "ERL_CRASH_DUMP": os.path.join(self.dir, "erl_crash.dump"),
            "ERL_CRASH_DUMP_BYTES": "0",
        })
        return env

    def _erl(self, *args):
        return [EJABBERD_ERL, "-setcookie", self.cookie,
                "-erl_epmd_port", str(self.dist_port), "-start_epmd", "false"] + \
            list(args)

    def start(self, timeout=30):
        spool = os.path.join(self.dir, "spool")
        self.spawn(self._erl("-sname", self.node, "+K", "true", "-mnesia", "dir",
                             '"%s"' % spool, "-s", "ejabberd", "-noinput"),
                   os.path.join(self.dir, "ejabberd.out"),
                   env=self._env(), cwd=spool)
        self.wait_listening([("127.0.0.1", port) for port in
                             (self.c2s_port, self.component_port)], timeout,
                            interval=0.05)
        for u, pw in self.users.items():
            if u not in self.registered:
                self.register(u, pw)
        return self

    def ctl(self, *args, timeout=30):
        """Run an ejabberdctl command against this node; (rc, output)."""
        ctl_node = "ctl%d-%d@localhost" % (self.dist_port, os.getpid())
        p = subprocess.run(
            self._erl("-sname", ctl_node, "-dist_listen", "false", "-hidden",
                      "-noinput", "-s", "ejabberd_ctl", "-extra", self.node, *args),
            capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL,
            env=self._env(), cwd=self.dir)
        return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")

    def register(self, user, password):
        rc, out = self.ctl("register", user, DOMAIN, password)
        if rc != 0:
            raise RuntimeError("ejabberdctl register %s: exit %d: %s" % (user, rc, out))
        self.users[user] = password
        self.registered.add(user)

    def kill(self, sig=signal.SIGKILL):
        self.halt(sig)


def gateway_config(pro, corp_port, secret=None, **xmpp_opts):
    """A config with the XMPP community (component mode) and a local jsonl
    community corp.example."""
    xc = {
        "connector": "xmpp", "domains": [DOMAIN, pro.component],
        "mode": "component", "server": "127.0.0.1",
        "port": pro.component_port, "component": pro.component,
        "secret": pro.secret if secret is None else secret,
        "reconnect-min": 100, "reconnect-max": 1000,
    }
    xc.update(xmpp_opts)
    return {
        "community corp": {
            "connector": "jsonl", "local": True, "domains": "corp.example",
            "listen": "tcp:127.0.0.1:%d" % corp_port, "max-line": 4 * 1024 * 1024,
        },
        "community xmpp": xc,
    }


def gwjid(addr, component=COMPONENT):
    """The JID at the component for a canonical core address: the user part
    as it is (already XEP-0106 escaped), "\\40", the domain (':' escaped)."""
    bare, _, res = addr.partition("/")
    user, _, dom = bare.rpartition("@")
    local = (user + "\\40" if user else "") + dom.replace(":", "\\3a")
    return local + "@" + component + ("/" + res if res else "")


class Client(T.Inbox):
    """A minimal XMPP client logged in to the private Prosody."""

    def __init__(self, test, pro, user, password, resource="test",
                 presence=True, roster=True, timeout=10):
        self.t = test
        self.pro = pro
        self.user = user
        self.bare = "%s@%s" % (user, DOMAIN)
        self.jid = None
        self.sock = socket.create_connection(("127.0.0.1", pro.c2s_port),
                                             timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.queue = []
        self.skipped = []
        self.eof = False
        self.wlock = threading.Lock()
        self._open()
        feats = self._next(timeout)
        if feats is None or feats.tag != C("features", NS_STREAM):
            raise RuntimeError("no stream features: %r" % feats)
        creds = base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()
        self.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>" % (NS_SASL, creds))
        res = self._next(timeout)
        if res is None or res.tag != C("success", NS_SASL):
            raise RuntimeError("SASL PLAIN for %s failed: %r" % (user, res))
        self._open()
        self._next(timeout)  # features
        self.send("<iq type='set' id='bind1'><bind xmlns='%s'><resource>%s"
                  "</resource></bind></iq>" % (NS_BIND, escape(resource)))
        res = self._next(timeout)
        j = res.find(".//" + C("jid", NS_BIND)) if res is not None else None
        if j is None:
            raise RuntimeError("bind failed: %r" % res)
        self.jid = j.text
        if roster:
            # an "interested resource" (RFC 6121 2.1.6) gets roster pushes
            self.send("<iq type='get' id='roster1'><query xmlns='jabber:iq:roster'/></iq>")
            self.expect(lambda e: e.get("id") == "roster1", timeout)
        if presence:
            self.send("<presence/>")
            # a server handles one session's stanzas in order: once this
            # iq is answered, the presence is in effect (ejabberd stored a
            # message racing it offline)
            self.send("<iq type='get' id='sync1'><query xmlns='jabber:iq:roster'/></iq>")
            # what arrives meanwhile (offline messages) stays to be read
            early = []
            while True:
                el = self._next(timeout)
                if el is None or el.get("id") == "sync1":
                    break
                early.append(el)
            self.queue[0:0] = early
        test.clients.append(self)

    def _open(self):
        self.parser = ET.XMLPullParser(events=("start", "end"))
        self.depth = 0
        self.send("<?xml version='1.0'?><stream:stream to='%s' xmlns='%s' "
                  "xmlns:stream='%s' version='1.0'>" % (DOMAIN, NS_CLIENT, NS_STREAM))

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        with self.wlock:
            self.sock.sendall(data)

    def close(self):
        if self.sock is not None:
            try:
                self.send("</stream:stream>")
            except OSError:
                pass
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def _pump(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0 or self.eof:
            return False
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except OSError:
            self.eof = True
            return False
        if not data:
            self.eof = True
            return False
        self.parser.feed(data)
        for ev, el in self.parser.read_events():
            if ev == "start":
                self.depth += 1
            else:
                self.depth -= 1
                if self.depth == 1:
                    self.queue.append(el)
        return True

    def _next(self, timeout=5):
        deadline = time.monotonic() + timeout
        while not self.queue:
            if not self._pump(deadline):
                return None
        return self.queue.pop(0)

    def recv(self, timeout=5):
        return self._next(timeout)


def stanza(name, attrs, children=""):
    """Text of <name attrs>children</name>; attribute values are escaped."""
    a = "".join(" %s=%s" % (k, quoteattr(v)) for k, v in attrs.items() if v is not None)
    return "<%s%s>%s</%s>" % (name, a, children, name)


def el(name, text, attrs=None):
    a = "".join(" %s=%s" % (k, quoteattr(v)) for k, v in (attrs or {}).items())
    return "<%s%s>%s</%s>" % (name, a, escape(text), name)


def text_of(elem, tag, ns=NS_CLIENT):
    c = elem.find(C(tag, ns)) if elem is not None else None
    return None if c is None else (c.text or "")


def error_of(elem):
    """(error type, condition, text) of a stanza error, or None."""
    if elem is None or elem.get("type") != "error":
        return None
    e = elem.find(C("error"))
    if e is None:
        return ("?", None, None)
    cond = None
    text = None
    for c in e:
        if c.tag == C("text", NS_STANZAS):
            text = c.text
        elif c.tag.startswith("{%s}" % NS_STANZAS):
            cond = c.tag.split("}", 1)[1]
    return (e.get("type"), cond, text)
