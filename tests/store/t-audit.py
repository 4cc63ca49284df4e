#!/usr/bin/env python3
"""The audit log on the default SQLite store: records of routed messages
(metadata, no presence by default) read back with imgwctl log query and
its filters; status counters; a newer schema refused at start, an older
one asking for `imgwctl db migrate`; dsn = none; imgwd killed with
SIGKILL mid-traffic and restarted (the spool is replayed, nothing lost,
nothing twice); a tiny spool-max that fills while the database is
unreachable raises the alarm and routing goes on."""

import os
import signal
import sqlite3
import threading
import time

import imgwtest as T
import storetest as S


def gw3ctl(dialect):
    import subprocess
    p = subprocess.run([T.IMGWCTL, "db", "schema"] + ([dialect] if dialect
                       else []), capture_output=True)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def main(t):
    # --- records and queries -------------------------------------------
    gw = t.gateway(S.config(t, {"flush-ms": 50}), name="a")
    st = gw.status()
    t.is_(st.get("store", {}).get("state"), "up", "default store is up")
    t.is_(st["store"].get("dialect"), "sqlite", "it is SQLite")
    t.ok(os.path.exists(t.path("a.state/imgw.db")), "the database file is "
         "in the state folder, the schema made at first start")
    tr = S.Traffic(t, gw)
    tr.send(50)
    tr.alice.send({"type": "presence", "from": "alice@corp.example",
                   "to": "bob@partner.example", "show": "away"})
    t.is_(tr.collect(5, want=50), 50, "50 messages delivered")
    a = S.wait_written(gw)
    t.is_(a.get("written"), 50, "status: 50 records written")
    t.is_(a.get("pending"), 0, "nothing pending")
    rows = S.audit_rows(gw)
    t.is_(len(rows), 50, "imgwctl log query: 50 records (presence not "
          "audited by default)")
    S.once_each(t, rows, tr.traces, "routed")
    r = rows[0]
    t.ok(r["kind"] == "message" and r["decision"] == "routed" and
         r["from"] == "alice@corp.example" and r["to"] ==
         "bob@partner.example" and r["src_community"] == "corp" and
         r["dst_community"] == "partner" and r["node"] == "test",
         "a record's metadata", repr(r))
    t.is_(r["content"], None, "metadata level: no content")
    t.ok(abs(r["ts_ms"] / 1000 - time.time()) < 60, "time in UTC ms")
    t.is_(len(S.audit_rows(gw, ("--user", "nobody@x.example"))), 0,
          "--user filters")
    t.is_(len(S.audit_rows(gw, ("--user", "bob@partner.example",
                                "--community", "partner", "--limit", "7"))),
          7, "--user, --community, --limit")
    t.is_(len(S.audit_rows(gw, ("--since", "2000-01-01T00:00:00Z",
                                "--until", str(r["ts_ms"])))), 0,
          "--until is exclusive, ISO and epoch ms both read")
    rc, out, err = S.ctl(gw, "log", "query", "--limit", "2")
    t.ok(rc == 0 and "alice@corp.example -> bob@partner.example" in out,
         "text output", out + err)
    rc, out, err = S.ctl(gw, "log", "query", "--since", "yesterday")
    t.is_(rc, 2, "a bad time is a usage error")
    rc, out, err = gw.ctl("status")
    t.like(out, "audit: queued=0 pending=0 written=50", "status text shows "
           "the audit")
    t.is_(gw.term(), 0, "stopped")

    # --- a newer schema: refused at start --------------------------------
    db = sqlite3.connect(t.path("a.state/imgw.db"))
    db.execute("UPDATE imgw_schema SET version = 99")
    db.commit()
    db.close()
    gw.start(wait=False)
    rc = gw.wait(30)
    t.is_(rc, 1, "imgwd refuses a newer schema (exit 1)")
    t.like(gw.log(), "newer than this imgwd knows", "and says why")
    db = sqlite3.connect(t.path("a.state/imgw.db"))
    db.execute("UPDATE imgw_schema SET version = 2")
    db.commit()
    db.close()

    # --- an older schema: migrate on request -----------------------------
    old = S.config(t, {"dsn": "DRIVER=SQLite3;Database=%s"
                       % t.path("old.db"), "state": t.path("old.state")})
    gw2 = t.gateway(old, name="old", start=False)
    gw2.write_config(old)
    rc, out, err = S.ctl(gw2, "db", "version")
    t.ok(rc == 0 and "schema version 0" in out, "db version: no schema yet",
         out + err)
    rc, out, err = S.ctl(gw2, "db", "init", "--schema-version", "1")
    t.is_(rc, 0, "an old (version 1) schema made")
    gw2.start(wait=False)
    t.is_(gw2.wait(30), 1, "imgwd refuses to start on it")
    t.like(gw2.log(), "imgwctl db migrate", "and asks for a migration")
    rc, out, err = S.ctl(gw2, "db", "migrate")
    t.ok(rc == 0 and "from version 1 to 2" in out, "imgwctl db migrate",
         out + err)
    rc, out, err = S.ctl(gw2, "db", "init")
    t.ok(rc == 1 and "already has" in err, "db init refuses an existing "
         "schema", out + err)
    gw2.start()
    t.is_(gw2.status()["store"]["state"], "up", "then it starts")
    gw2.term()

    # --- etc/sql/ is what imgwctl db init runs ----------------------------
    for d in ("", "sqlite", "postgresql", "mariadb", "db2"):
        name = "dialect-%s.sql" % d if d else "schema.sql"
        rc, out, err = gw3ctl(d)
        with open(os.path.join(T.SRCDIR, "etc", "sql", name)) as f:
            t.is_(out, f.read(), "etc/sql/%s is what imgwctl db schema "
                  "prints" % name)

    # --- no store ------------------------------------------------------------
    gw3 = t.gateway(S.config(t, {"dsn": "none"}), name="none")
    t.is_(gw3.status()["store"]["state"], "off", "dsn = none: no store")
    gw3.term()

    # --- SIGKILL mid-traffic: the spool is replayed, nothing twice --------
    gw = t.gateway(S.config(t, {"flush-ms": 20, "batch": 50}), name="k")
    tr = S.Traffic(t, gw)
    th = threading.Thread(target=tr.send, args=(3000, 3000))
    th.start()
    time.sleep(0.5)
    gw.signal(signal.SIGKILL)
    gw.wait(10)
    th.join()
    tr.collect(1)
    before = len(tr.traces)
    t.ok(before > 0, "%d messages delivered before SIGKILL" % before)
    gw.start()
    a = S.wait_written(gw)
    t.is_(a.get("pending"), 0, "after the restart the spool is empty")
    rows = S.audit_rows(gw)
    S.once_each(t, rows, tr.traces, "SIGKILL")
    t.cmp_ok(len(rows), "<=", tr.sent, "no more records than messages")
    gw.term()

    # --- a tiny spool fills while the database is unreachable ------------
    gw = t.gateway(S.config(t, {"dsn": "DRIVER=NoSuchDriver;Database=x",
                                "spool-max": "4096", "flush-ms": 20}),
                   name="full")
    st = gw.status()
    t.is_(st["store"]["state"], "down", "an unreachable database: imgwd "
          "starts anyway")
    tr = S.Traffic(t, gw)
    tr.send(300)
    t.is_(tr.collect(5, want=300), 300, "routing goes on: 300 delivered")
    st = gw.wait_status(lambda s: s["audit"].get("alarm") is not None)
    t.is_(st["audit"].get("alarm"), "spool full", "status: alarm raised")
    t.cmp_ok(st["audit"].get("dropped", 0), ">", 0, "dropped records counted")
    t.cmp_ok(st["audit"].get("spool_bytes", 0), "<=", 4096,
             "the spool keeps its bound")
    t.like(gw.log(), "ALARM", "the log says so")
    rc, out, err = gw.ctl("status")
    t.like(out, "ALARM: spool full", "status text too")
    gw.term()


T.Test(alarm=240).run(main)
