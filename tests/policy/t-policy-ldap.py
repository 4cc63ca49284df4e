#!/usr/bin/env python3
"""The policy matrix against a real slapd and the SQLite store.

A private slapd (127.0.0.1, mdb, dc=example,dc=com) holds people with
mail addresses, a groupOfNames (member DNs) and a posixGroup (memberUid).
imgwd runs three jsonl communities -- corp (local), partner, other --
with the SQLite store in the test folder and [directory] pointing at the
slapd.  Policies are written with `imgwctl policy`, which asks imgwd to
refresh; each allowed event arrives, each refused one comes back to its
sender with the right condition (and, when the audit log exists, an
audit record names the rule).  Then slapd stops: decisions go on from the
cache and status says the directory is down.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import imgwtest as T  # noqa: E402
import ldaptest as L  # noqa: E402

PEOPLE = {
    "alice": "alice@corp.example",    # in feds (groupOfNames)
    "carol": "carol@corp.example",    # in feds
    "dave": "dave@corp.example",      # in unixfeds (posixGroup, memberUid)
    "erin": "erin@corp.example",      # listed by a directory uid rule
    "zoe": "zoe@corp.example",        # in no group
    "frank": "Frank@Corp.Example",    # in unixfeds; mail not lower case
}


def is_error(id_):
    return lambda o: o.get("type") == "error" and o.get("id") == id_


def main(t):
    why = L.available()
    if why:
        t.skip("policy matrix against slapd", why)
        return
    ldap = L.Slapd(t)
    ldap.start()
    ldif = L.BASE_LDIF
    for uid, mail in PEOPLE.items():
        ldif += L.person(uid, mail)
    ldif += L.group_of_names("feds", ["alice", "carol"])
    ldif += L.posix_group("unixfeds", ["dave", "frank", "nobody"])
    ldap.add(ldif)
    pwfile = t.path("ldap.pw")
    with open(pwfile, "w") as f:
        f.write(L.READER_PW + "\n")

    port = T.free_port()
    gw = t.gateway({
        "store": {"state": t.path("state"), "refresh": 3600},
        "directory": {
            "uri": ldap.uri, "bind-dn": L.READER_DN,
            "bind-password-file": pwfile,
            "base": "ou=people,%s; ou=groups,%s" % (L.SUFFIX, L.SUFFIX),
            "im-attr": "mail", "ttl": 2, "timeout": 2,
        },
        "community corp": {
            "connector": "jsonl", "local": True, "domains": "corp.example",
            "listen": "tcp:127.0.0.1:%d" % port,
        },
        "community partner": {
            "connector": "jsonl", "domains": "partner.example a.evil.example",
            "listen": "unix:" + t.path("partner.sock"),
        },
        "community other": {
            "connector": "jsonl", "domains": "other.example",
            "listen": "unix:" + t.path("other.sock"),
        },
    }, start=False)
    os.makedirs(t.path("state"), exist_ok=True)
    gw.start()

    def pol(*args):
        return gw.ctl("-c", gw.conf_path, "policy", *args, sock=False)

    rc, out, err = gw.ctl("-c", gw.conf_path, "db", "init", sock=False)
    t.diag("imgwctl db init: %d %s" % (rc, ((out + err).strip().splitlines()
                                              or [""])[0]))

    corp = t.client(gw.listen("corp"))
    for mail in PEOPLE.values():
        corp.bind(mail.lower())
    partner = t.client(gw.listen("partner"))
    for u in ("bob@partner.example", "mallory@partner.example",
              "pat@partner.example", "x@a.evil.example"):
        partner.bind(u)
    other = t.client(gw.listen("other"))
    other.bind("olga@other.example")

    n = [0]

    def send(cl, kind, frm, to, **kw):
        n[0] += 1
        ev = {"type": kind, "from": frm, "to": to, "id": "e%d" % n[0]}
        if kind == "message":
            ev["body"] = "hello %d" % n[0]
        ev.update(kw)
        cl.send(ev)
        return ev["id"]

    def allowed(cl, rcv, kind, frm, to, what, **kw):
        id_ = send(cl, kind, frm, to, **kw)
        got = rcv.expect(lambda o: o.get("id") == id_, timeout=5)
        t.ok(got is not None and got.get("type") == kind,
             "allowed: %s" % what, "got %r; sender saw %r" % (got, cl.quiet(0.2)))

    def refused(cl, kind, frm, to, cond, rule, what, **kw):
        id_ = send(cl, kind, frm, to, **kw)
        got = cl.expect(is_error(id_), timeout=5)
        t.ok(got is not None and got.get("condition") == cond,
             "refused: %s (%s)" % (what, cond), "got %r" % (got,))
        refusals.append((rule, what))

    refusals = []

    # --- settings and rules through imgwctl ----------------------------------
    rc, out, err = pol("set", "partner", "local_access", "listed")
    t.is_(rc, 0, "policy set partner local_access listed")
    t.diag(out + err)
    rc, out, err = pol("set", "partner", "default_allow", "no")
    t.is_(rc, 0, "policy set partner default_allow no")
    rc, out, err = pol("add", "partner", "allow-group", "feds")
    t.is_(rc, 0, "policy add allow-group by cn (groupOfNames)")
    t.like(out, "added rule #", "add prints the rule id")
    rc, out, err = pol("add", "partner", "allow-group",
                       "cn=unixfeds,ou=groups," + L.SUFFIX)
    t.is_(rc, 0, "policy add allow-group by DN (posixGroup)")
    rc, out, err = pol("add", "partner", "allow-user", "erin")
    t.is_(rc, 0, "policy add allow-user naming a directory uid")
    rc, out, err = pol("add", "*", "block-domain", "*.evil.example")
    t.is_(rc, 0, "policy add '*' block-domain *.evil.example")
    rc, out, err = pol("add", "partner", "block-user", "mallory@partner.example")
    t.is_(rc, 0, "policy add block-user")
    rc, out, err = pol("add", "nowhere", "block-user", "a@b.example")
    t.is_(rc, 2, "policy add for an unknown community refused")
    t.like(err, "no community 'nowhere'", "... naming the community")
    rc, out, err = pol("add", "partner", "block-user", "example.org")
    t.is_(rc, 2, "policy add with a bad value refused")
    rc, out, err = pol("set", "partner", "audit_level", "loud")
    t.is_(rc, 2, "policy set with a bad value refused")
    rc, out, err = pol("list")
    t.is_(rc, 0, "policy list")
    t.like(out, "*.evil.example", "list shows the rules")
    t.like(out, "local_access=listed", "list shows the settings")
    rc, out, err = pol("show", "partner")
    t.like(out, "default_allow        no", "show partner: default_allow")
    t.like(out, "*.evil.example", "show partner: includes '*' rules")

    # the directory has loaded what the rules name
    st = gw.wait_status(lambda s: (s.get("directory") or {}).get("state") == "up"
                        and all(e.get("loaded") for e in
                                s["directory"].get("entries", []))
                        and len(s["directory"].get("entries", [])) == 3,
                        timeout=15)
    d = st.get("directory") or {}
    t.is_(d.get("state"), "up", "status: the directory is up")
    ents = {e["name"]: e for e in d.get("entries", [])}
    t.is_((ents.get("feds") or {}).get("addresses"), 2,
          "groupOfNames: two members mapped to addresses")
    t.is_((ents.get("cn=unixfeds,ou=groups,dc=example,dc=com") or {}).get(
        "addresses"), 2, "posixGroup: memberUid resolved through uid (one "
        "unknown uid skipped)")
    t.is_((ents.get("erin") or {}).get("addresses"), 1,
          "directory user erin resolved")

    # --- users and groups ---------------------------------------------------
    allowed(corp, partner, "message", "alice@corp.example/desk",
            "bob@partner.example", "groupOfNames member writes to partner")
    allowed(corp, partner, "message", "dave@corp.example",
            "bob@partner.example", "posixGroup member writes to partner")
    allowed(corp, partner, "message", "frank@corp.example",
            "bob@partner.example", "posixGroup member with a mixed-case mail")
    allowed(corp, partner, "message", "erin@corp.example",
            "bob@partner.example", "directory user writes to partner")
    refused(corp, "message", "zoe@corp.example", "bob@partner.example",
            "forbidden", "community:partner/default-deny",
            "a user in no listed group")
    refused(partner, "message", "bob@partner.example", "zoe@corp.example",
            "forbidden", "community:partner/default-deny",
            "partner writing to an unlisted user")
    allowed(partner, corp, "message", "bob@partner.example",
            "carol@corp.example", "partner writes to a group member")
    allowed(corp, other, "message", "zoe@corp.example", "olga@other.example",
            "other community keeps its defaults")

    # --- blocks, both ends -------------------------------------------------
    refused(corp, "message", "alice@corp.example", "x@a.evil.example",
            "forbidden", "community:*/block-domain:#", "to a blocked domain")
    refused(partner, "message", "x@a.evil.example", "alice@corp.example",
            "forbidden", "community:*/block-domain:#", "from a blocked domain")
    refused(partner, "subscribe", "x@a.evil.example", "alice@corp.example",
            "forbidden", "community:*/block-domain:#",
            "subscription from a blocked domain")
    refused(corp, "subscribe", "alice@corp.example", "x@a.evil.example",
            "forbidden", "community:*/block-domain:#",
            "subscription to a blocked domain")
    refused(partner, "message", "mallory@partner.example",
            "alice@corp.example", "forbidden",
            "community:partner/block-user:#", "from a blocked user")

    # --- subscription and initiation ----------------------------------------
    for k, v in (("inbound_subscribe", "no"), ("inbound_initiate", "no"),
                 ("allow_rich_text", "no"), ("allow_typing", "no"),
                 # chat states are audited with presence (off by default)
                 ("audit_presence", "yes")):
        rc, out, err = pol("set", "other", k, v)
        t.ok(rc == 0, "policy set other %s %s" % (k, v), err)
    refused(other, "subscribe", "olga@other.example", "alice@corp.example",
            "not-allowed", "community:other/inbound-subscribe",
            "inbound subscription")
    allowed(corp, other, "subscribe", "alice@corp.example",
            "olga@other.example", "outbound subscription")
    refused(other, "message", "olga@other.example", "carol@corp.example",
            "not-allowed", "community:other/inbound-initiate",
            "inbound message starting a conversation")
    allowed(corp, other, "message", "carol@corp.example", "olga@other.example",
            "local user writes first")
    allowed(other, corp, "message", "olga@other.example/phone",
            "carol@corp.example", "the external user answers")
    refused(corp, "message", "carol@corp.example", "olga@other.example",
            "feature-not-implemented", "community:other/rich-text",
            "rich text", content_type="text/html")
    refused(corp, "chatstate", "carol@corp.example", "olga@other.example",
            "feature-not-implemented", "community:other/typing",
            "typing notification", state="composing")

    # --- limits ----------------------------------------------------------------
    st = gw.status()
    sess = st["policy"]["communities"]["partner"]["im_sessions"]["count"]
    t.is_(sess, 5, "status: five IM sessions with partner")
    rc, out, err = pol("set", "partner", "max_im_sessions", str(sess))
    t.is_(rc, 0, "policy set partner max_im_sessions")
    refused(corp, "message", "alice@corp.example", "pat@partner.example",
            "resource-constraint", "community:partner/max-im-sessions",
            "a new IM session past the community limit")
    allowed(corp, partner, "message", "alice@corp.example",
            "bob@partner.example", "an existing session goes on")
    rc, out, err = pol("set", "*", "max_subscriptions", "1")
    t.is_(rc, 0, "policy set '*' max_subscriptions 1")
    refused(corp, "subscribe", "dave@corp.example", "bob@partner.example",
            "policy-violation", "global/max-subscriptions",
            "a new subscription past the global limit")
    allowed(corp, other, "subscribe", "alice@corp.example",
            "olga@other.example", "the admitted subscription renews")
    st = gw.status()
    pst = st["policy"]
    t.is_(pst["subscriptions"], {"count": 1, "limit": 1},
          "status: global subscriptions count and limit")
    t.is_(pst["communities"]["partner"]["im_sessions"],
          {"count": sess, "limit": sess}, "status: partner IM sessions")
    t.cmp_ok(pst["refused"].get("block-domain", 0), ">=", 4,
             "status: refusals counted by rule kind")
    rc, out, err = gw.ctl("status")
    t.like(out, "im sessions", "status text shows the sessions")
    t.like(out, "directory: %s up" % ldap.uri, "status text shows the directory")

    # --- policy test -------------------------------------------------------------
    rc, out, err = pol("test", "zoe@corp.example", "bob@partner.example")
    t.is_(rc, 1, "policy test: refused exits 1")
    t.like(out, "rule: community:partner/default-deny", "policy test names "
           "the rule")
    rc, out, err = pol("test", "carol@corp.example", "bob@partner.example",
                       "message")
    t.is_(rc, 0, "policy test: allowed exits 0")
    t.like(out, "rule: community:partner/allow-group:#", "policy test names "
           "the allowing group rule")
    rc, out, err = gw.ctl("policy", "test", "x@a.evil.example",
                          "alice@corp.example", "subscribe")
    t.is_(rc, 1, "policy test over -s SOCKET")
    t.like(out, "condition: forbidden", "policy test prints the condition")

    # --- remove, then allowed ------------------------------------------------------
    rc, out, err = pol("list")
    rid = None
    for line in out.splitlines():
        if "block-user" in line and "mallory" in line:
            rid = line.split()[0]
    rc, out, err = pol("remove", rid or "#0")
    t.is_(rc, 0, "policy remove %s" % rid)
    rc, out, err = pol("remove", "999999")
    t.is_(rc, 1, "policy remove of an unknown id fails")
    rc, out, err = pol("set", "partner", "max_im_sessions", "none")
    allowed(partner, corp, "message", "mallory@partner.example",
            "alice@corp.example", "an unblocked user passes at once")

    # --- audit -------------------------------------------------------------------------
    rc, out, err = gw.ctl("-c", gw.conf_path, "log", "query", "--limit",
                          "1000", sock=False)
    if rc == 0:
        time.sleep(1)
        rc, out, err = gw.ctl("-c", gw.conf_path, "log", "query", "--limit",
                              "1000", sock=False)
        for rule, what in refusals:
            t.like(out, rule, "audit names the rule: %s" % what)
    else:
        t.skip("audit records name the rules", "imgwctl log query: %s"
               % ((err.strip() or out.strip()).splitlines() or [""])[0])

    # --- directory outage ------------------------------------------------------------
    ldap.stop()
    st = gw.wait_status(lambda s: s["directory"]["state"] == "down", timeout=15)
    t.is_(st["directory"]["state"], "down", "status: directory down")
    t.ok(st["directory"].get("error"), "status: the error is shown",
         repr(st["directory"]))
    allowed(corp, partner, "message", "dave@corp.example",
            "bob@partner.example", "directory down: cached group still allows")
    refused(corp, "message", "zoe@corp.example", "bob@partner.example",
            "forbidden", "community:partner/default-deny",
            "directory down: still refused")
    t.like(gw.log(), "policies keep using the cached groups",
           "the outage is logged")
    ldap.start()
    st = gw.wait_status(lambda s: s["directory"]["state"] == "up", timeout=15)
    t.is_(st["directory"]["state"], "up", "directory back up")
    ldap.stop()


if __name__ == "__main__":
    T.Test(alarm=240).run(main)
