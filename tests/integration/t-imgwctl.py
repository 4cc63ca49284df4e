#!/usr/bin/env python3
"""imgwctl against a running and a non-running imgwd.

status (text and --json), -s SOCKET and -c CONFIG, reload, exit statuses:
0 ok, 2 usage or broken config, 3 not running, 4 permission denied.
"""

import os
import socket
import stat
import subprocess

import imgwtest as T


def ctl(args, timeout=30, **kw):
    p = subprocess.run([T.IMGWCTL] + args, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=timeout, **kw)
    return p.returncode, p.stdout.decode("utf-8", "replace"), \
        p.stderr.decode("utf-8", "replace")


def main(t):
    port = T.free_port()
    gw = t.gateway({
        "gateway": {"node": "ctl-node", "queue-size": 333},
        "community corp": {
            "connector": "jsonl", "local": True, "domains": "corp.example",
            "listen": "tcp:127.0.0.1:%d" % port,
        },
        "community partner": {
            "connector": "jsonl", "domains": ["partner.example", "other.example"],
            "listen": "unix:" + t.path("partner.sock"), "queue-size": 777,
        },
    })

    # --- text status -------------------------------------------------------
    rc, out, err = gw.ctl("status")
    t.is_(rc, 0, "status exits 0")
    t.is_(err, "", "status prints nothing on stderr")
    lines = out.splitlines()
    for name, dom in (("corp", "corp.example"), ("partner", "partner.example")):
        row = [l for l in lines if l.split()[:1] == [name]]
        t.ok(len(row) == 1, "status text has a line for community %s" % name, out)
        row = row[0] if row else ""
        t.like(row, "jsonl", "status text: %s shows its connector" % name)
        t.like(row, "running", "status text: %s shows its state" % name)
        t.like(row, dom, "status text: %s shows its domains" % name)
    t.like(out, "other.example", "status text lists every domain")
    t.like(out, "ctl-node", "status text names the node")

    # --- JSON status -------------------------------------------------------
    rc, out, err = gw.ctl("status", "--json")
    t.is_(rc, 0, "status --json exits 0")
    try:
        st = T.json.loads(out)
        t.ok(isinstance(st, dict), "status --json prints one JSON object")
    except ValueError as ex:
        t.ok(False, "status --json prints one JSON object", "%s\n%r" % (ex, out))
        st = {}
    t.is_(st.get("node"), "ctl-node", "status --json: node")
    t.is_(st.get("pid"), gw.pid(), "status --json: pid is imgwd's")
    t.is_(st.get("abi"), "1.2", "status --json: abi")
    t.ok(isinstance(st.get("version"), str) and st.get("version"), "status --json: version")
    t.ok(isinstance(st.get("uptime"), int) and st["uptime"] >= 0, "status --json: uptime")
    t.is_(st.get("reloads"), 0, "status --json: no reloads yet")
    t.is_(os.path.realpath(st.get("config", "")), os.path.realpath(gw.conf_path),
          "status --json: config path")
    t.ok(isinstance(st.get("counters"), dict) and "routed" in st["counters"],
         "status --json: gateway counters with routed", st.get("counters"))
    comms = {c.get("name"): c for c in st.get("communities", [])}
    t.is_(sorted(comms), ["corp", "partner"], "status --json: both communities")
    c, p = comms.get("corp", {}), comms.get("partner", {})
    t.is_(c.get("connector"), "jsonl", "status --json: corp connector")
    t.ok(isinstance(c.get("connector_version"), str) and c["connector_version"],
         "status --json: corp connector_version")
    t.is_(c.get("state"), "running", "status --json: corp running")
    t.is_(c.get("local"), True, "status --json: corp is local")
    t.is_(p.get("local"), False, "status --json: partner is not local")
    t.is_(c.get("domains"), ["corp.example"], "status --json: corp domains")
    t.is_(p.get("domains"), ["partner.example", "other.example"],
          "status --json: partner domains in order")
    t.is_(c.get("queue"), 0, "status --json: corp queue empty")
    t.is_(c.get("queue_max"), 333, "status --json: corp queue_max from [gateway] queue-size")
    t.is_(p.get("queue_max"), 777, "status --json: partner queue_max from its queue-size")
    t.ok(isinstance(p.get("counters"), dict), "status --json: community counters")

    # --- -c CONFIG ---------------------------------------------------------
    rc, out, err = gw.ctl("-c", gw.conf_path, "status", sock=False)
    t.is_(rc, 0, "-c CONFIG finds the socket from the config")
    t.like(out, "partner.example", "-c CONFIG: the status is imgwd's")
    rc, out, err = gw.ctl("-c", gw.conf_path, "status", "--json", sock=False)
    t.is_(rc, 0, "-c CONFIG status --json exits 0")

    # --- reload ------------------------------------------------------------
    rc, out, err = gw.ctl("reload")
    t.is_(rc, 0, "reload exits 0")
    t.is_(gw.status().get("reloads"), 1, "status counts the reload")

    # --- permissions -------------------------------------------------------
    mode = os.stat(gw.sock).st_mode
    t.ok(stat.S_ISSOCK(mode), "the control socket is a socket")
    t.is_(mode & 0o077, 0, "the control socket is accessible to its owner only (%o)"
          % (mode & 0o777))
    if os.geteuid() == 0:
        os.chmod(t.dir, 0o755)	# reach the socket itself, not a closed folder

        def nobody():
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
        rc, out, err = ctl(["-s", gw.sock, "status"], preexec_fn=nobody)
        os.chmod(t.dir, 0o700)
        t.is_(rc, 4, "another user gets exit 4 (permission denied)")
        t.like(err.lower(), "permission denied", "and a message that says so")
    else:
        t.skip("another user gets exit 4 (permission denied)", "needs root to switch user")
        t.skip("and a message that says so", "needs root to switch user")

    # --- usage -------------------------------------------------------------
    rc, out, err = gw.ctl("frobnicate")
    t.is_(rc, 2, "an unknown command exits 2")
    rc, out, err = gw.ctl()
    t.is_(rc, 2, "no command exits 2")
    rc, out, err = gw.ctl("status", "--yaml")
    t.is_(rc, 2, "an unknown status option exits 2")
    broken = t.path("broken.conf")
    with open(broken, "w") as f:
        f.write("[gateway]\nthis is not valid\n")
    rc, out, err = ctl(["-c", broken, "status"])
    t.is_(rc, 2, "-c with a broken config exits 2")
    t.like(err, broken + ":2:", "-c with a broken config names FILE:LINE")

    t.ok(gw.alive(), "imgwd still runs")
    t.is_(gw.term(), 0, "SIGTERM: exit 0")

    # --- not running -------------------------------------------------------
    rc, out, err = gw.ctl("status")
    t.is_(rc, 3, "status against a stopped imgwd exits 3")
    t.like(err, "not running", "and says imgwd is not running")
    rc, out, err = gw.ctl("-c", gw.conf_path, "status", sock=False)
    t.is_(rc, 3, "-c CONFIG against a stopped imgwd exits 3")
    t.like(err, "not running", "-c CONFIG: says imgwd is not running")
    rc, out, err = ctl(["-s", t.path("no/such/dir/x.sock"), "reload"])
    t.is_(rc, 3, "a socket in a missing folder: exit 3")
    t.like(err, "not running", "a socket in a missing folder: says not running")

    # a stale socket file nobody listens on
    stale = t.path("stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(stale)
    s.close()
    rc, out, err = ctl(["-s", stale, "status"])
    t.is_(rc, 3, "a stale socket file: exit 3")
    t.like(err, "not running", "a stale socket file: says not running")


T.Test().run(main)
