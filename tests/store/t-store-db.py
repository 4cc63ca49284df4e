#!/usr/bin/env python3
"""The store suite against real servers: a private PostgreSQL cluster and
a private MariaDB instance, each started here on 127.0.0.1 (skipped, with
the package to install, when not installed).  For each: the C store
suite (t-store: schema init, version, migrate, newer/older schema refused,
bound parameters with UTF-8, NULL and long text, transactions, the
subscription upsert, audit queries, the asynchronous path); imgwctl db
init/version; imgwd writing audit records read back by imgwctl log query;
subscriptions kept across a restart of imgwd."""

import os
import subprocess

import imgwtest as T
import dbservers as D
import storetest as S


def suite(t, name, dsn):
    exe = os.path.join(T.BUILDDIR, "tests", "store", "t-store")
    env = dict(os.environ, IMGW_TEST_DSN=dsn)
    p = subprocess.run([exe], env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=300)
    out = p.stdout.decode("utf-8", "replace")
    bad = [l for l in out.splitlines() if l.startswith("not ok")]
    n = len([l for l in out.splitlines() if l.startswith("ok")])
    t.ok(p.returncode == 0 and not bad and n > 30,
         "%s: the C store suite passes (%d checks)" % (name, n),
         out + p.stderr.decode("utf-8", "replace"))

    gw = t.gateway(S.config(t, {"dsn": dsn, "flush-ms": 50}),
                   name="gw-" + name, start=False)
    rc, out, err = S.ctl(gw, "db", "version")
    t.ok(rc == 0 and "schema version 2" in out, "%s: db version" % name,
         out + err)
    gw.start()
    st = gw.status()
    t.is_(st["store"]["dialect"], name, "%s: imgwd connected" % name)
    tr = S.Traffic(t, gw)
    tr.send(200)
    tr.collect(5, want=200)
    a = S.wait_written(gw)
    rows = S.audit_rows(gw, ("--user", "alice@corp.example"))
    # the C suite left 3 rows of its own (other users)
    t.is_(len(rows), 200, "%s: 200 audit records read back" % name)
    S.once_each(t, rows, tr.traces, name)
    gw.term()
    S.subs_roundtrip(t, dsn, name)


def main(t):
    for cls, name in ((D.Postgres, "postgresql"), (D.MariaDB, "mariadb")):
        why = cls.available()
        if why is not None:
            t.skip("%s store suite" % name, why)
            continue
        srv = cls(t)
        try:
            t.ok(srv.start(), "%s: private server started" % name)
            suite(t, name, srv.dsn)
        finally:
            srv.cleanup()


T.Test(alarm=400).run(main)
