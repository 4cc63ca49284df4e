#!/usr/bin/env python3
"""Bad input to the store and the policies.

1. A malformed connection string: `imgwd -t` and imgwd's start both
   refuse it with FILE:LINE and exit 1; so does imgwctl.
2. A database that cannot be reached at start (a private PostgreSQL that
   is not running, its port closed): with `required = yes` imgwd refuses to
   start, saying which database and why; without, it starts, routes, and
   the audit records wait in the spool until the database is back, then
   arrive once each.
3. A policy naming a community that is not configured: imgwctl refuses
   to add it; one already in the database (written while the community
   was configured) only gets a warning when imgwd loads it, and the other
   policies work.
"""

import os
import subprocess

import imgwtest as T
import dbservers as D
import storetest as S


def conf_line(path, key):
    """The 1-based line of `key = ...` in the config file."""
    with open(path) as f:
        for i, line in enumerate(f, 1):
            if line.split("=")[0].strip() == key:
                return i
    return 0


def malformed(t):
    gw = t.gateway(S.config(t, {"dsn": "nonsense"}), name="malformed",
                   start=False)
    where = "%s:%d: dsn 'nonsense'" % (gw.conf_path, conf_line(gw.conf_path,
                                                               "dsn"))
    p = subprocess.run([T.IMGWD, "-t", "-c", gw.conf_path],
                       capture_output=True, timeout=30)
    err = p.stderr.decode()
    t.is_(p.returncode, 1, "imgwd -t: a malformed dsn exits 1")
    t.like(err, where, "imgwd -t: the error names FILE:LINE")
    t.like(err, "expected an ODBC connection string", "imgwd -t: and what "
           "is expected")
    gw.start(wait=False)
    t.is_(gw.wait(30), 1, "imgwd: a malformed dsn exits 1 at start")
    t.like(gw.log(), where, "imgwd: the log names FILE:LINE")
    rc, out, err = S.ctl(gw, "db", "version")
    t.ok(rc != 0 and where in err, "imgwctl db version refuses it too",
         out + err)
    # a connection string the parser takes but no driver knows
    gw = t.gateway(S.config(t, {"dsn": "DRIVER={No Such Driver};Database=x",
                                "required": "yes", "timeout": 2}),
                   name="nodriver", start=False)
    gw.start(wait=False)
    t.is_(gw.wait(30), 1, "required = yes, an unknown driver: exit 1")
    t.like(gw.log(), "No Such Driver", "the log names the connection string")


def unreachable(t):
    why = D.Postgres.available()
    if why is not None:
        t.skip("an unreachable PostgreSQL at start", why)
        return
    pg = D.Postgres(t)
    try:
        t.ok(pg.start(), "private PostgreSQL started (for its schema)")
        store = {"dsn": pg.dsn, "flush-ms": 50, "retry-max": 500,
                 "timeout": 2}
        gw = t.gateway(S.config(t, dict(store, required="yes")),
                       name="required", start=False)
        rc, out, err = S.ctl(gw, "db", "init")
        t.is_(rc, 0, "imgwctl db init")
        pg.stop()

        # required = yes: refused, with the reason
        gw.start(wait=False)
        t.is_(gw.wait(60), 1, "required = yes, database down: exit 1")
        log = gw.log()
        t.like(log, "Port=%d" % pg.port, "the error names the database")
        t.ok("connect" in log and ("could not connect" in log or
                                   "Connection refused" in log),
             "and the driver's reason", log[-2000:])
        t.ok("PWD" not in log or "PWD=***" in log, "no password in the log")

        # required = no (the default): starts, routes, spools
        gw = t.gateway(S.config(t, store), name="spools")
        st = gw.status()
        t.is_(st["store"]["state"], "down", "required = no: imgwd starts "
              "with the database down")
        t.like(st["store"].get("error", ""), "connect", "status says why: %s"
               % st["store"].get("error", ""))
        tr = S.Traffic(t, gw)
        tr.send(150)
        t.is_(tr.collect(5, want=150), 150, "routing goes on: 150 delivered")
        st = gw.wait_status(lambda s: s["audit"].get("pending", 0) >= 150,
                            timeout=10)
        t.is_(st["audit"].get("pending"), 150, "150 records wait in the spool")
        t.is_(st["audit"].get("written", 0), 0, "none written")
        t.like(gw.log(), "starting without the database", "the log says so")
        t.ok(os.listdir(t.path("spools.state/audit-spool")),
             "the spool is on disk")
        t.ok(pg.start(), "PostgreSQL started")
        a = S.wait_written(gw, 60)
        t.is_(a.get("pending"), 0, "the spool is replayed")
        rows = S.audit_rows(gw)
        t.is_(len(rows), 150, "150 records in PostgreSQL")
        S.once_each(t, rows, tr.traces, "unreachable at start")
        t.is_(gw.term(), 0, "stopped")
    finally:
        pg.cleanup()


def unknown_community(t):
    conf = S.config(t, {"flush-ms": 50})
    conf["community gone"] = {"connector": "jsonl", "domains": "gone.example",
                              "listen": "tcp:127.0.0.1:%d" % T.free_port()}
    gw = t.gateway(conf, name="pol", start=False)
    pol = lambda *a: S.ctl(gw, "policy", *a)  # noqa: E731
    rc, out, err = S.ctl(gw, "db", "init")
    t.is_(rc, 0, "imgwctl db init (the default SQLite file)")
    rc, out, err = pol("add", "nowhere", "block-user", "a@b.example")
    t.is_(rc, 2, "imgwctl refuses a rule for an unknown community")
    t.like(err, "no community 'nowhere' in %s" % gw.conf_path,
           "naming the community and the config")
    rc, out, err = pol("set", "nowhere", "default_allow", "no")
    t.is_(rc, 2, "imgwctl refuses a setting for an unknown community")
    rc, out, err = pol("list")
    t.like(out, "(no rules)", "nothing was written")
    # written while 'gone' was configured ...
    rc, out, err = pol("add", "gone", "block-user", "x@gone.example")
    t.ok(rc == 0 and "added rule #" in out, "a rule for 'gone'", out + err)
    gone_id = out.split("#")[1].split()[0] if "#" in out else "?"
    rc, out, err = pol("set", "gone", "default_allow", "no")
    t.is_(rc, 0, "a setting for 'gone'")
    rc, out, err = pol("add", "partner", "block-user",
                       "mallory@partner.example")
    t.is_(rc, 0, "a rule for 'partner'")
    # ... then 'gone' leaves the configuration
    del conf["community gone"]
    gw.write_config(conf)
    gw.start()
    st = gw.wait_status(lambda s: s["policy"].get("snapshot", {}).get(
        "rules", 0) >= 2 or "rule #" in gw.log(), timeout=15)
    log = gw.log()
    t.like(log, "rule #%s names community 'gone', which is not configured"
           % gone_id, "a stored rule for an unknown community: a warning")
    t.like(log, "settings of community 'gone'", "its settings: a warning")
    t.ok(gw.alive(), "imgwd runs")
    rc, out, err = gw.ctl("policy", "test", "mallory@partner.example",
                          "alice@corp.example")
    t.ok(rc == 1 and "block-user" in out, "the other policies work",
         out + err)
    rc, out, err = gw.ctl("policy", "test", "bob@partner.example",
                          "alice@corp.example")
    t.is_(rc, 0, "and allow what they allow")
    t.is_(gw.term(), 0, "stopped")


def main(t):
    malformed(t)
    unknown_community(t)
    unreachable(t)


T.Test(alarm=240).run(main)
