"""Shared helpers for imgw's integration tests.

Each t-*.py script is a standalone program printing TAP on stdout, run by
automake's TAP driver.  It starts the real imgwd (from $IMGWD) on
127.0.0.1 and UNIX sockets in a private temporary folder, speaks the jsonl
protocol to it, and drives it with $IMGWCTL and signals.

    import imgwtest as T

    t = T.Test()
    gw = t.gateway({"community corp": {...}, ...})
    c = t.client(gw.listen("corp"))
    c.bind("alice@corp.example")
    ...
    t.done()

Nothing here waits without a timeout, and an overall alarm (T.ALARM
seconds, or Test(alarm=...)) ends a stuck test with "not ok" and
"Bail out!".  The temporary folder is removed at the end unless a test
failed; the gateway's stderr is printed as TAP diagnostics on failure.
"""

import json
import os
import shutil
import signal
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

ALARM = 120

IMGWD = os.environ.get("IMGWD", "imgwd")
IMGWCTL = os.environ.get("IMGWCTL", "imgwctl")
CONNECTORS = os.environ.get("IMGW_CONNECTORS", "connectors")
SRCDIR = os.environ.get("IMGW_SRCDIR", ".")
BUILDDIR = os.environ.get("IMGW_BUILDDIR", ".")


class Timeout(Exception):
    pass


def _local_port_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
            return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


_ports_given = set()


def free_port(udp=False):
    """A TCP (or UDP) port on 127.0.0.1 that was free a moment ago.

    Chosen at random BELOW the kernel's ephemeral range: a port the kernel
    hands out (bind to 0) is just as likely to be given next to an
    outgoing connection of another test running in parallel, which then
    holds it when our server binds (seen in CI: "Address already in
    use").  Never the same port twice in one process: two calls before
    either port is bound would otherwise both find it free (seen in CI:
    two communities of one gateway on one port)."""
    lo, _ = _local_port_range()
    top = min(lo, 65536) - 1
    bottom = max(1024, top - 15000)
    kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
    for _ in range(200):
        port = random.randint(bottom, top)
        if port in _ports_given:
            continue
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", port))
            _ports_given.add(port)
            return port
        except OSError:
            continue
        finally:
            s.close()
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def config_text(sections):
    """INI text from a dict {section: {key: value}} or a string (as is).

    Section names are written as given ("gateway", "community corp").
    Values that are lists are joined with spaces; booleans become yes/no.
    """
    if isinstance(sections, str):
        return sections
    out = []
    for name, keys in sections.items():
        out.append("[%s]" % name)
        for k, v in keys.items():
            if v is None:
                continue
            if isinstance(v, bool):
                v = "yes" if v else "no"
            elif isinstance(v, (list, tuple)):
                v = " ".join(str(x) for x in v)
            out.append("%s = %s" % (k, v))
        out.append("")
    return "\n".join(out)


def parse_config(text):
    """{section: {key: value}} from INI text (for finding listen addresses)."""
    secs = {}
    cur = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            cur = " ".join(line[1:-1].split())
            secs.setdefault(cur, {})
        elif "=" in line and cur is not None:
            k, v = line.split("=", 1)
            secs[cur][k.strip()] = v.strip()
    return secs


class Test:
    """TAP reporter, temporary folder and owner of gateways and clients."""

    def __init__(self, alarm=None, name=None):
        self.n = 0
        self.failed = 0
        self.name = name or os.path.basename(sys.argv[0])
        self.dir = tempfile.mkdtemp(prefix="imgw-t-")
        self.gateways = []
        self.clients = []
        self.servers = []       # peers: stopped after the gateways
        self.lock = threading.RLock()
        self.finished = False
        sys.stdout.reconfigure(line_buffering=True)
        self.diag("temporary folder %s" % self.dir)
        signal.signal(signal.SIGALRM, self._alarm)
        signal.alarm(alarm or ALARM)

    # --- TAP -----------------------------------------------------------

    def _print(self, s):
        with self.lock:
            sys.stdout.write(s + "\n")
            sys.stdout.flush()

    def diag(self, msg):
        for line in str(msg).splitlines() or [""]:
            self._print("# " + line)

    def ok(self, cond, desc, diag=None):
        with self.lock:
            self.n += 1
            n = self.n
        desc = desc.replace("#", "\\#")
        if cond:
            self._print("ok %d - %s" % (n, desc))
        else:
            self.failed += 1
            self._print("not ok %d - %s" % (n, desc))
            if diag is not None:
                self.diag(diag)
        return bool(cond)

    def todo(self, cond, desc, why, diag=None):
        """A check of a known gap that timing may or may not expose:
        "ok" when it holds, "not ok ... # TODO" when it does not (the TAP
        driver counts that as an expected failure), never hidden."""
        with self.lock:
            self.n += 1
            n = self.n
        desc = desc.replace("#", "\\#")
        if cond:
            self._print("ok %d - %s" % (n, desc))
        else:
            self._print("not ok %d - %s # TODO %s" % (n, desc, why))
            if diag is not None:
                self.diag(diag)
        return bool(cond)

    def skip(self, desc, why):
        with self.lock:
            self.n += 1
            n = self.n
        self._print("ok %d - %s # SKIP %s" % (n, desc.replace("#", "\\#"), why))

    def is_(self, got, want, desc):
        return self.ok(got == want, desc,
                       "     got: %r\nexpected: %r" % (got, want))

    def cmp_ok(self, got, op, want, desc):
        ops = {
            ">=": lambda a, b: a >= b, ">": lambda a, b: a > b,
            "<=": lambda a, b: a <= b, "<": lambda a, b: a < b,
            "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
        }
        try:
            res = ops[op](got, want)
        except TypeError:
            res = False
        return self.ok(res, desc, "%r %s %r is false" % (got, op, want))

    def like(self, got, substr, desc):
        return self.ok(isinstance(got, str) and substr in got, desc,
                       "%r\ndoes not contain %r" % (got, substr))

    def _dump_logs(self):
        for gw in self.gateways:
            gw.dump_log()
        for srv in self.servers:
            srv.dump_log()

    def done(self):
        """Print the plan, clean up, exit with the right status."""
        self.finished = True
        signal.alarm(0)
        self._cleanup()
        if self.failed:
            self._dump_logs()
            self.diag("%d of %d failed; kept %s" % (self.failed, self.n, self.dir))
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        self._print("1..%d" % self.n)
        sys.exit(1 if self.failed else 0)

    def bail(self, why):
        self.finished = True
        self._print("not ok %d - %s" % (self.n + 1, why))
        self.failed += 1
        try:
            self._cleanup()
        except Exception:
            pass
        self._dump_logs()
        self.diag("kept %s" % self.dir)
        self._print("Bail out! %s" % why)
        sys.stdout.flush()
        os._exit(1)

    def _alarm(self, signum, frame):
        self.diag("timed out; stack:")
        self.diag("".join(traceback.format_stack(frame)))
        self.bail("%s: timed out after the overall alarm" % self.name)

    def run(self, main):
        """Run main(self), turning an exception into a failure."""
        try:
            main(self)
        except SystemExit:
            raise
        except BaseException:
            self.ok(False, "test ran without an exception", traceback.format_exc())
        self.done()

    def _cleanup(self):
        for c in self.clients:
            c.close()
        for gw in self.gateways:
            gw.kill()
        for srv in self.servers:
            srv.halt()

    def track(self, server):
        """Stop `server` (a Server) at the end, dump its log on failure."""
        self.servers.append(server)
        return server

    # --- factories -----------------------------------------------------

    def path(self, name):
        return os.path.join(self.dir, name)

    def gateway(self, conf=None, name="imgwd", start=True, **kw):
        gw = Gateway(self, conf, name=name, **kw)
        self.gateways.append(gw)
        if start:
            gw.start()
        return gw

    def client(self, addr, timeout=10):
        c = Client(self, addr, timeout=timeout)
        self.clients.append(c)
        return c


class Server:
    """A process a test starts and owns -- imgwd or a peer (Prosody,
    ejabberd, slapd): its output file, waiting for its listeners, stopping
    it, its log.  A subclass sets name and log_path and starts the process
    with spawn(); test.track(server) has the test stop it at the end and
    dump its log on failure."""

    proc = None
    out = None          # the file its stdout and stderr go to
    dump_last = 80      # log lines dump_log shows by default

    def spawn(self, argv, out_path, **popen_kw):
        self.out = open(out_path, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=self.out, stderr=self.out,
                                     **popen_kw)
        return self.proc

    def wait_listening(self, addrs, timeout=15, interval=0.02):
        """Wait until every address (as probe_addr takes them) accepts:
        RuntimeError when the process exits first, Timeout after
        `timeout` seconds."""
        deadline = time.monotonic() + timeout
        todo = list(addrs)
        while todo:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %r while starting"
                                   % (self.name, self.proc.returncode))
            if time.monotonic() > deadline:
                raise Timeout("%s not ready after %ss: %s waits"
                              % (self.name, timeout, todo[0]))
            if probe_addr(todo[0]):
                todo.pop(0)
            else:
                time.sleep(interval)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def halt(self, sig=signal.SIGKILL, timeout=10):
        """Send sig and wait up to timeout seconds (then SIGKILL); close
        the output file."""
        if self.alive():
            try:
                self.proc.send_signal(sig)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
            except Exception:
                pass
        if self.out is not None:
            self.out.close()
            self.out = None

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_log(self, text, timeout=10, count=1):
        """Wait until the log holds `text` at least `count` times; the log,
        or Timeout."""
        deadline = time.monotonic() + timeout
        while True:
            log = self.log()
            if log.count(text) >= count:
                return log
            if time.monotonic() > deadline:
                raise Timeout("%s: %r not logged after %ss" % (self.name, text, timeout))
            time.sleep(0.05)

    def dump_log(self, last=None):
        last = self.dump_last if last is None else last
        lines = self.log().splitlines()
        self.t.diag("---- %s log (%s, last %d of %d lines) ----"
                    % (self.name, self.log_path, min(last, len(lines)), len(lines)))
        for line in lines[-last:]:
            self.t.diag(line)
        self.t.diag("---- end of %s log ----" % self.name)


class Gateway(Server):
    """One imgwd process with its configuration, log and control socket.

    `conf` is a dict {section: {key: value}} or INI text.  With a dict, the
    [gateway] section gets defaults (node, connectors, control, log-level)
    for keys it does not set.
    """

    dump_last = 200

    def __init__(self, test, conf=None, name="imgwd", connectors=None,
                 log_level="info"):
        self.t = test
        self.name = name
        self.conf_path = test.path(name + ".conf")
        self.sock = test.path(name + ".sock")
        self.log_path = test.path(name + ".log")
        self.connectors = connectors or CONNECTORS
        self.log_level = log_level
        self.text = ""
        if conf is not None:
            self.write_config(conf)

    def with_defaults(self, conf):
        if isinstance(conf, str):
            return conf
        conf = {k: dict(v) for k, v in conf.items()}
        g = conf.setdefault("gateway", {})
        g.setdefault("node", "test")
        g.setdefault("connectors", self.connectors)
        g.setdefault("control", self.sock)
        g.setdefault("log-level", self.log_level)
        # the store's state (default SQLite file, audit spool) per gateway,
        # never the machine's own state folder
        st = conf.setdefault("store", {})
        st.setdefault("state", self.t.path(self.name + ".state"))
        # [gateway] first
        out = {"gateway": conf.pop("gateway")}
        out.update(conf)
        return out

    def write_config(self, conf):
        """Write the config atomically (a reader never sees half of it)."""
        self.text = config_text(self.with_defaults(conf))
        tmp = self.conf_path + ".new"
        with open(tmp, "w") as f:
            f.write(self.text)
        os.rename(tmp, self.conf_path)
        return self.conf_path

    def sections(self):
        return parse_config(self.text)

    def listen(self, community):
        """The listen option of a community, as written in the config."""
        return self.sections()["community " + community]["listen"]

    def start(self, timeout=15, wait=True):
        self.spawn([IMGWD, "-f", "-c", self.conf_path], self.log_path)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=15):
        """Wait for the control socket and every listen address to accept."""
        todo = [("unix:" + self.sock)]
        for name, keys in self.sections().items():
            if name.startswith("community ") and "listen" in keys:
                todo.append(keys["listen"])
        self.wait_listening(todo, timeout)

    def pid(self):
        return self.proc.pid

    def ctl(self, *args, timeout=30, sock=True):
        """Run imgwctl; returns (rc, stdout, stderr)."""
        cmd = [IMGWCTL]
        if sock:
            cmd += ["-s", self.sock]
        cmd += list(args)
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=timeout)
        return p.returncode, p.stdout.decode("utf-8", "replace"), \
            p.stderr.decode("utf-8", "replace")

    def status(self):
        rc, out, err = self.ctl("status", "--json")
        if rc != 0:
            raise RuntimeError("imgwctl status --json: exit %d: %s" % (rc, err))
        return json.loads(out)

    def community(self, name, st=None):
        st = st or self.status()
        for c in st.get("communities", []):
            if c.get("name") == name:
                return c
        return None

    def counter(self, name, st=None):
        st = st or self.status()
        return st.get("counters", {}).get(name, 0)

    def wait_status(self, pred, timeout=10, interval=0.05):
        """Poll status --json until pred(status) is true; returns the last."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.status()
            if pred(st):
                return st
            if time.monotonic() > deadline:
                return st
            time.sleep(interval)

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def hup(self):
        self.signal(signal.SIGHUP)

    def wait(self, timeout=10):
        """Wait for exit; returns the exit status, or None on timeout."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def term(self, timeout=10):
        """SIGTERM and wait; returns the exit status (None on timeout)."""
        if not self.alive():
            return self.proc.returncode
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self):
        self.halt(signal.SIGKILL, 5)


def cpu_model():
    """The CPU's model name from /proc/cpuinfo ("" when unknown), for the
    benchmarks' machine lines."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def probe_addr(addr):
    """True when a connection to tcp:H:P or unix:/P is accepted now."""
    try:
        s = connect(addr, timeout=1)
    except OSError:
        return False
    s.close()
    return True


def connect(addr, timeout=10):
    if isinstance(addr, tuple):
        s = socket.create_connection(addr, timeout=timeout)
    elif addr.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(addr[5:])
        except OSError:
            s.close()
            raise
    elif addr.startswith("tcp:"):
        host, port = addr[4:].rsplit(":", 1)
        host = host.strip("[]")
        s = socket.create_connection((host, int(port)), timeout=timeout)
    else:
        raise ValueError("bad address %r" % addr)
    if s.family != socket.AF_UNIX:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


class Inbox:
    """Waiting on a peer connection: expect() and quiet() over the
    subclass's recv(timeout), which returns the next object or None on
    timeout or EOF, and keeps a list `skipped`.  Shared by the jsonl
    Client and the XMPP test client."""

    def expect(self, pred, timeout=5):
        """The first object matching pred (a function, or a dict of fields
        that must all be equal); others are recorded in `skipped`.  None
        on timeout or EOF."""
        if isinstance(pred, dict):
            want = pred
            pred = lambda o: all(o.get(k) == v for k, v in want.items())
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            obj = self.recv(left)
            if obj is None:
                return None
            if pred(obj):
                return obj
            self.skipped.append(obj)

    def quiet(self, timeout=0.5):
        """Everything that arrives within timeout (an empty list when the
        line stays quiet)."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return got
            obj = self.recv(left)
            if obj is None:
                return got
            got.append(obj)


class Client(Inbox):
    """A jsonl client: one JSON object per line, over TCP or a UNIX socket.

    Lines received but not wanted by expect() are kept in `skipped` (in
    order), so a test can check afterwards that nothing unexpected came.
    """

    def __init__(self, test, addr, timeout=10):
        self.t = test
        self.addr = addr
        self.sock = connect(addr, timeout=timeout)
        # writes go through their own descriptor, so that a reader's short
        # timeout never cuts a writer's sendall in another thread short
        self.wsock = self.sock.dup()
        self.wsock.settimeout(max(timeout, 60))
        self.buf = b""
        self.eof = False
        self.skipped = []
        self.wlock = threading.Lock()

    def close(self):
        for s in (self.sock, self.wsock):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass
        self.sock = self.wsock = None

    def send_raw(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        with self.wlock:
            self.wsock.sendall(data)

    def send(self, obj):
        self.send_raw(json.dumps(obj, ensure_ascii=False).encode("utf-8") + b"\n")

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(1 << 16)
        except socket.timeout:
            return False
        except OSError:
            self.eof = True
            return False
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def recv_line(self, timeout=5):
        """One raw line (bytes, no newline), or None on timeout or EOF."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            if self.eof or not self._fill(deadline):
                return None
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def recv(self, timeout=5):
        """The next object, or None on timeout or EOF.

        A line that is not a JSON object comes back as
        {"type": "<not json>", "raw": LINE}, so tests see it.
        """
        line = self.recv_line(timeout)
        if line is None:
            return None
        try:
            obj = json.loads(line.decode("utf-8"))
            if not isinstance(obj, dict):
                raise ValueError("not an object")
            return obj
        except ValueError:
            return {"type": "<not json>", "raw": line}

    def bind(self, user, timeout=5):
        """Bind user; returns the bound answer or raises."""
        self.send({"type": "bind", "user": user})
        ans = self.expect(lambda o: o.get("type") in ("bound", "error"), timeout)
        if ans is None or ans.get("type") != "bound":
            raise RuntimeError("bind %s: got %r" % (user, ans))
        return ans

    def alive(self, timeout=0.2):
        """True unless the peer has closed the connection."""
        if self.eof:
            return False
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1 << 16, socket.MSG_PEEK)
            return bool(data)
        except socket.timeout:
            return True
        except OSError:
            return False


def build_echo(out, version=None, extra=None, cflags=None):
    """Compile sdk/examples/echo/echo.c into out; returns (rc, output)."""
    if cflags is None:
        cflags = ["-I" + os.path.join(SRCDIR, "sdk", "include")]
    cmd = ["cc", "-shared", "-fPIC"] + cflags
    if version is not None:
        cmd.append('-DECHO_VERSION="%s"' % version)
    cmd += list(extra or [])
    cmd += ["-o", out, os.path.join(SRCDIR, "sdk", "examples", "echo", "echo.c")]
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


def reverse_cp(s):
    """A string with its code points in reverse order (what echo answers)."""
    return s[::-1]


DNSMASQ = os.environ.get("DNSMASQ", shutil.which("dnsmasq") or "/usr/sbin/dnsmasq")


class Dnsmasq:
    """A private DNS server (dnsmasq, Debian package dnsmasq-base) on a
    free port of 127.0.0.1 answering only the given records (the SIP and
    XMPP DNS tests use it); .example and .test stay local, so
    unknown names are NXDOMAIN at once."""

    def __init__(self, t, records):
        self.port = free_port()
        self.log = t.path("dnsmasq.log")
        args = [DNSMASQ, "-k", "--conf-file=/dev/null", "--port=%d" % self.port,
                "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv",
                "--no-hosts", "--pid-file=", "--user=root", "--log-queries",
                "--log-facility=" + self.log, "--local=/example/", "--local=/test/"]
        self.proc = subprocess.Popen(args + records, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while "started" not in self.text() and time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("dnsmasq exited: %r" % self.proc.returncode)
            time.sleep(0.05)

    def text(self):
        try:
            with open(self.log) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
