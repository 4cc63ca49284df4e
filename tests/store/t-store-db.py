#!/usr/bin/env python3
"""The store suite against real servers: a private PostgreSQL cluster and
a private MariaDB instance, each started here on 127.0.0.1 (skipped, with
the package to install, when not installed).  For each: the C store
suite (t-store: schema init, version, migrate, newer/older schema refused,
bound parameters with UTF-8, NULL and long text, transactions, the
subscription upsert, audit queries, the asynchronous path); imgwctl db
init/version; imgwd writing audit records read back by imgwctl log query;
subscriptions kept across a restart of imgwd; policy CRUD (imgwctl policy
set/add/list/show/remove, each statement on each dialect, and imgwd's
snapshot read back through `imgwctl policy test`).  The policy CRUD runs
against the default SQLite store too, so that part of the store suite
covers all three databases here (the rest of it runs on SQLite as
t-store)."""

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
    policy_crud(t, name, dsn)
    S.subs_roundtrip(t, dsn, name)


def policy_crud(t, name, dsn):
    """imgwctl policy against `dsn` (None: the default SQLite file) with
    imgwd running on the same database: every change is read back with
    list/show and seen by imgwd's snapshot (`policy test`)."""
    store = {"flush-ms": 50}
    if dsn is not None:
        store["dsn"] = dsn
    conf = S.config(t, store)
    conf["community partner"]["domains"] += " a.evil.example"
    gw = t.gateway(conf, name="pol-" + name)
    t.is_(gw.status()["store"]["state"], "up", "%s: imgwd up for the "
          "policy CRUD" % name)

    def pol(*args):
        return S.ctl(gw, "policy", *args)

    def test(frm, to, kind="message"):
        rc, out, err = gw.ctl("policy", "test", frm, to, kind)
        return rc, out + err

    # settings: the first set inserts the row, the next ones update it;
    # setting the value it already has is an update too (MariaDB counts
    # changed rows unless told otherwise)
    for key, val in (("local_access", "listed"), ("default_allow", "no"),
                     ("max_im_sessions", "5"), ("max_im_sessions", "7"),
                     ("max_im_sessions", "7")):
        rc, out, err = pol("set", "partner", key, val)
        t.ok(rc == 0, "%s: policy set partner %s %s" % (name, key, val), err)
    for val in ("3", "4", "4"):
        rc, out, err = pol("set", "*", "max_subscriptions", val)
        t.ok(rc == 0, "%s: policy set '*' max_subscriptions %s" % (name, val), err)
    ids = {}
    for comm, kind, value in (
            ("partner", "block-user", "mallory@partner.example"),
            ("*", "block-domain", "*.evil.example"),
            ("partner", "allow-user", "alice@corp.example"),
            ("partner", "allow-user", "Ann@Corp.Example")):
        rc, out, err = pol("add", comm, kind, value)
        m = [l for l in out.splitlines() if l.startswith("added rule #")]
        t.ok(rc == 0 and m, "%s: policy add %s %s %s" % (name, comm, kind,
                                                          value), out + err)
        ids[value] = m[0].split("#")[1] if m else "0"
    t.is_(len(set(ids.values())), 4, "%s: four distinct rule ids %s"
          % (name, sorted(ids.values())))
    rc, out, err = pol("add", "nowhere", "block-user", "a@b.example")
    t.is_(rc, 2, "%s: policy add for an unknown community refused" % name)
    t.like(err, "no community 'nowhere'", "%s: ... naming it" % name)

    rc, out, err = pol("list")
    t.ok(rc == 0, "%s: policy list" % name, err)
    for want in ("local_access=listed", "default_allow=no",
                 "max_im_sessions=7", "max_subscriptions    4",
                 "mallory@partner.example", "*.evil.example",
                 "alice@corp.example"):
        t.like(out, want, "%s: list shows %s" % (name, want))
    rc, out, err = pol("show", "partner")
    t.ok(rc == 0, "%s: policy show partner" % name, err)
    t.like(out, "local_access         listed", "%s: show: the setting" % name)
    t.like(out, "inbound_subscribe    yes  (default)", "%s: show: a default"
           % name)
    t.like(out, "#%s" % ids["*.evil.example"], "%s: show: the '*' rule"
           % name)

    # imgwd read them (imgwctl waited for the snapshot)
    rc, out = test("alice@corp.example", "bob@partner.example")
    t.ok(rc == 0, "%s: imgwd: a listed user may write" % name, out)
    rc, out = test("ann@corp.example", "bob@partner.example")
    t.ok(rc == 0, "%s: imgwd: a listed user (value lower-cased)" % name, out)
    rc, out = test("carol@corp.example", "bob@partner.example")
    t.ok(rc == 1 and "community:partner/default-deny" in out,
         "%s: imgwd: an unlisted user is refused" % name, out)
    rc, out = test("mallory@partner.example", "alice@corp.example")
    t.ok(rc == 1 and "community:partner/block-user:#%s"
         % ids["mallory@partner.example"] in out,
         "%s: imgwd: the blocked user, by rule id" % name, out)
    rc, out = test("x@a.evil.example", "alice@corp.example", "subscribe")
    t.ok(rc == 1 and "block-domain" in out,
         "%s: imgwd: the blocked domain" % name, out)

    rc, out, err = pol("remove", ids["mallory@partner.example"])
    t.ok(rc == 0, "%s: policy remove #%s" % (name,
                                            ids["mallory@partner.example"]), err)
    rc, out, err = pol("remove", ids["mallory@partner.example"])
    t.is_(rc, 1, "%s: removing it again fails" % name)
    t.like(err, "no rule #", "%s: ... saying so" % name)
    rc, out = test("mallory@partner.example", "alice@corp.example")
    t.ok(rc == 0, "%s: imgwd: unblocked at once" % name, out)
    rc, out, err = pol("list")
    t.ok("mallory" not in out, "%s: list no longer shows it" % name, out)

    # leave the defaults behind for what runs next on this database
    for v in ids.values():
        pol("remove", v)
    for key, val in (("local_access", "everyone"), ("default_allow", "yes"),
                     ("max_im_sessions", "none")):
        pol("set", "partner", key, val)
    rc, out, err = pol("set", "*", "max_subscriptions", "none")
    t.ok(rc == 0, "%s: a global limit set back to none" % name, err)
    rc, out, err = pol("list")
    t.ok("(no rules)" in out and "max_subscriptions    none" in out,
         "%s: rules gone, limit none" % name, out)
    rc, out = test("carol@corp.example", "bob@partner.example")
    t.ok(rc == 0, "%s: imgwd: back to the defaults" % name, out)
    t.is_(gw.term(), 0, "%s: stopped" % name)


def main(t):
    policy_crud(t, "sqlite", None)
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
