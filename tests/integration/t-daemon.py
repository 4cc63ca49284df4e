#!/usr/bin/env python3
"""imgwd without -f: it daemonizes, and a relative config keeps working.

Started as `imgwd -c rel.conf` from the config's folder, with relative
`connectors` and `control`: the parent exits 0, the daemon serves, and
after it has left its folder (chdir /) a reload still finds the file;
imgwctl -c rel.conf finds the socket; imgwctl stop ends it.
"""

import os
import signal
import subprocess
import time

import imgwtest as T


def pid_alive(pid):
    """True while pid runs (a zombie nobody reaped counts as gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def main(t):
    os.symlink(T.CONNECTORS, t.path("conn"))
    port = T.free_port()
    with open(t.path("rel.conf"), "w") as f:
        f.write("[gateway]\nnode = daemon\nconnectors = conn\ncontrol = ctl.sock\n"
                "log = syslog\n\n"
                "[community corp]\nconnector = jsonl\nlocal = yes\ndomains = corp.example\n"
                "listen = tcp:127.0.0.1:%d\n\n"
                "[community partner]\nconnector = jsonl\ndomains = partner.example\n"
                "listen = unix:%s\n" % (port, t.path("partner.sock")))
    sock = t.path("ctl.sock")
    p = subprocess.run([T.IMGWD, "-c", "rel.conf"], cwd=t.dir, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=30)
    t.is_(p.returncode, 0, "imgwd (no -f) returns 0 to its caller")
    if p.stderr:
        t.diag(p.stderr.decode("utf-8", "replace"))
    deadline = time.monotonic() + 15
    while not (T.probe_addr("unix:" + sock) and T.probe_addr("tcp:127.0.0.1:%d" % port)):
        if time.monotonic() > deadline:
            t.ok(False, "the daemon opens the control socket (relative to the config) "
                 "and its listeners")
            return
        time.sleep(0.05)
    t.ok(True, "the daemon opens the control socket (relative to the config) "
         "and its listeners")

    gw = T.Gateway(t, None, name="daemon")
    gw.sock = sock
    st = gw.status()
    pid = st.get("pid")
    try:
        t.ok(isinstance(pid, int) and pid_alive(pid), "status names a live daemon pid")
        t.is_(st.get("config"), t.path("rel.conf"),
              "status shows the config as an absolute path")
        alice = t.client("tcp:127.0.0.1:%d" % port)
        bob = t.client("unix:" + t.path("partner.sock"))
        alice.bind("alice@corp.example")
        bob.bind("bob@partner.example")
        alice.send({"type": "message", "from": "alice@corp.example",
                    "to": "bob@partner.example", "id": "d1", "body": "hi"})
        t.is_((bob.expect(lambda o: o.get("id") == "d1") or {}).get("body"), "hi",
              "the daemon routes")

        rc = subprocess.run([T.IMGWCTL, "-c", "rel.conf", "status"], cwd=t.dir,
                            stdin=subprocess.DEVNULL, capture_output=True,
                            timeout=30).returncode
        t.is_(rc, 0, "imgwctl -c with a relative config finds the socket")
        rc, out, err = gw.ctl("reload")
        t.is_(rc, 0, "reload re-reads the relative config after the daemon left its folder")
        if rc != 0:
            t.diag(out + err)
        t.is_(gw.status().get("reloads"), 1, "the reload counts")
        alice.send({"type": "message", "from": "alice@corp.example",
                    "to": "bob@partner.example", "id": "d2", "body": "again"})
        t.is_((bob.expect(lambda o: o.get("id") == "d2") or {}).get("body"), "again",
              "the daemon routes after the reload, on the kept connections")

        rc, out, err = gw.ctl("stop")
        t.is_(rc, 0, "imgwctl stop exits 0")
        deadline = time.monotonic() + 10
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        t.ok(not pid_alive(pid), "the daemon is gone")
        t.ok(not os.path.exists(sock), "the control socket is removed")
    finally:
        if isinstance(pid, int) and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


T.Test().run(main)
