#!/usr/bin/env python3
"""PostgreSQL outages while traffic flows through imgwd.

1. PostgreSQL is stopped while messages flow and started again a minute
   (60 s) later, as the issue asks: records go to the spool through many
   reconnection attempts (retry-max 2000 ms) and are replayed in order
   once the database is back.  Every audit record arrives, none twice.
2. With PostgreSQL down, imgwd is killed (SIGKILL) mid-traffic and started
   again while the database is still down, then PostgreSQL comes back: the
   spool of the killed imgwd is replayed, nothing lost, nothing twice.
"""

import signal
import threading
import time

import imgwtest as T
import dbservers as D
import storetest as S

OUTAGE_S = 60


def main(t):
    why = D.Postgres.available()
    if why is not None:
        t.skip("PostgreSQL outage", why)
        return
    pg = D.Postgres(t)
    try:
        run(t, pg)
    finally:
        pg.cleanup()


def run(t, pg):
    t.ok(pg.start(), "private PostgreSQL started")
    store = {"dsn": pg.dsn, "flush-ms": 50, "batch": 200, "retry-max": 2000,
             "timeout": 5}
    gw = t.gateway(S.config(t, store), name="pg", start=False)
    rc, out, err = S.ctl(gw, "db", "init")
    t.is_(rc, 0, "imgwctl db init on PostgreSQL")
    gw.start()
    st = gw.status()
    t.is_(st["store"]["state"], "up", "imgwd connected")
    t.is_(st["store"]["dialect"], "postgresql", "dialect postgresql")

    # --- 1. stopped and restarted while messages flow ----------------------
    tr = S.Traffic(t, gw)
    rate = 200
    total = rate * (OUTAGE_S + 6)
    th = threading.Thread(target=tr.send, args=(total, rate))
    th.start()
    time.sleep(2)
    pg.stop()
    t.diag("PostgreSQL stopped")
    st = gw.wait_status(lambda s: s["store"]["state"] != "up", timeout=10)
    t.is_(st["store"]["state"], "down", "imgwd sees the database down")
    time.sleep(OUTAGE_S)
    st = gw.status()
    t.cmp_ok(st["audit"]["pending"], ">", 0, "records wait in the spool "
             "(%d)" % st["audit"]["pending"])
    t.ok(pg.start(), "PostgreSQL started again")
    th.join()
    t.is_(tr.collect(5, want=total), total, "all %d messages delivered "
          "throughout" % total)
    a = S.wait_written(gw, 60)
    t.is_(a.get("pending"), 0, "the spool is replayed")
    t.cmp_ok(a.get("spooled", 0), ">", 0, "status: spooled %d"
             % a.get("spooled", 0))
    t.cmp_ok(a.get("replayed", 0), ">", 0, "status: replayed %d"
             % a.get("replayed", 0))
    rows = S.audit_rows(gw)
    t.is_(len(rows), total, "exactly %d records in PostgreSQL" % total)
    S.once_each(t, rows, tr.traces, "outage")
    ids = [r["ts_ms"] for r in rows]
    t.ok(ids == sorted(ids), "in time order")
    got = int(pg.sql("SELECT count(DISTINCT trace) FROM imgw_audit").strip())
    t.is_(got, total, "psql agrees: %d distinct traces" % got)

    # --- 2. killed while the database is down, restarted, database back ----
    tr.alice.close()
    tr.bob.close()
    pg.stop()
    gw.wait_status(lambda s: s["store"]["state"] != "up", timeout=10)
    tr2 = S.Traffic(t, gw)
    th = threading.Thread(target=tr2.send, args=(2000, 2000))
    th.start()
    time.sleep(0.6)
    gw.signal(signal.SIGKILL)
    gw.wait(10)
    th.join()
    tr2.collect(1)
    t.cmp_ok(len(tr2.traces), ">", 0, "%d delivered before SIGKILL"
             % len(tr2.traces))
    gw.start()
    st = gw.status()
    t.is_(st["store"]["state"], "down", "restarted with the database down")
    t.cmp_ok(st["audit"]["pending"], ">=", len(tr2.traces),
             "the spool of the killed imgwd is there (%d)"
             % st["audit"]["pending"])
    t.ok(pg.start(), "PostgreSQL back")
    a = S.wait_written(gw, 60)
    t.is_(a.get("pending"), 0, "replayed")
    rows = S.audit_rows(gw)
    S.once_each(t, rows, tr.traces | tr2.traces, "SIGKILL while down")
    t.cmp_ok(len(rows), "<=", total + tr2.sent, "no more records than "
             "messages")
    t.is_(gw.term(), 0, "stopped")


T.Test(alarm=400).run(main)
