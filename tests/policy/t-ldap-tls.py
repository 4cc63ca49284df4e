#!/usr/bin/env python3
"""The directory over TLS, against a real slapd with a test CA.

The test makes two CAs with openssl: "ca" signs slapd's certificate (for
127.0.0.1 and localhost), "other" signs nothing slapd has.  slapd takes
StartTLS on its ldap:// port, listens on an ldaps:// port too, and
refuses anything without TLS (security tls=1), so a group that resolves
proves the lookups went over TLS.

1. [directory] uri = ldap://, starttls = yes, ca-file = the test CA: the
   group rule of a policy allows its members and refuses others.
2. Reloaded with ca-file = the other CA: the directory is down, status and
   the log give the TLS reason; decisions keep using the cached group.
3. imgwd started afresh with the other CA: down from the start with the
   TLS reason; nothing is cached, so the listed-only community refuses
   (default-deny), as designed.
4. Without StartTLS the server refuses (confidentiality required): the
   error says so.
5. ldaps:// with ca-file = the test CA: the group resolves again; with
   the other CA: down, with the TLS reason.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import imgwtest as T  # noqa: E402
import ldaptest as L  # noqa: E402


def main(t):
    why = L.available()
    if why:
        t.skip("the directory over TLS", why)
        return
    if not os.access(L.OPENSSL, os.X_OK):
        t.skip("the directory over TLS", "openssl is not installed")
        return
    ca = L.TestCA(t, "ca")
    other = L.TestCA(t, "other")
    ldap = L.Slapd(t, tls=ca.server("slapd"), require_tls=True)
    ldap.start()
    ldif = L.BASE_LDIF
    for uid in ("alice", "zoe"):
        ldif += L.person(uid, uid + "@corp.example")
    ldif += L.group_of_names("feds", ["alice"])
    ldap.add(ldif)
    pwfile = t.path("ldap.pw")
    with open(pwfile, "w") as f:
        f.write(L.READER_PW + "\n")

    directory = {
        "uri": ldap.uri, "starttls": "yes", "ca-file": ca.cert,
        "bind-dn": L.READER_DN, "bind-password-file": pwfile,
        "base": "ou=people,%s; ou=groups,%s" % (L.SUFFIX, L.SUFFIX),
        "im-attr": "mail", "ttl": 1, "timeout": 2,
    }
    port = T.free_port()

    def conf(d):
        return {
            "store": {"state": t.path("state"), "refresh": 3600},
            "directory": dict(d),
            "community corp": {
                "connector": "jsonl", "local": True,
                "domains": "corp.example",
                "listen": "tcp:127.0.0.1:%d" % port,
            },
            "community partner": {
                "connector": "jsonl", "domains": "partner.example",
                "listen": "unix:" + t.path("partner.sock"),
            },
        }

    gw = t.gateway(conf(directory), start=False)
    os.makedirs(t.path("state"), exist_ok=True)
    rc, out, err = gw.ctl("-c", gw.conf_path, "db", "init", sock=False)
    t.is_(rc, 0, "imgwctl db init")

    def pol(*args):
        return gw.ctl("-c", gw.conf_path, "policy", *args, sock=False)

    for args in (("set", "partner", "local_access", "listed"),
                 ("set", "partner", "default_allow", "no"),
                 ("add", "partner", "allow-group", "feds")):
        rc, out, err = pol(*args)
        t.ok(rc == 0, "policy %s" % " ".join(args), out + err)

    def decide(frm):
        rc, out, err = gw.ctl("policy", "test", frm, "bob@partner.example")
        return rc, out + err

    def loaded(s):
        d = s.get("directory") or {}
        return d.get("state") == "up" and any(
            e.get("loaded") for e in d.get("entries", []))

    # --- 1. StartTLS with the right CA ---------------------------------------
    gw.start()
    st = gw.wait_status(loaded, timeout=15)
    d = st.get("directory") or {}
    t.is_(d.get("state"), "up", "StartTLS, test CA: the directory is up")
    t.is_(d.get("starttls"), True, "status: starttls")
    ents = {e["name"]: e for e in d.get("entries", [])}
    t.is_((ents.get("feds") or {}).get("addresses"), 1,
          "the group resolved over TLS")
    rc, out = decide("alice@corp.example")
    t.ok(rc == 0 and "allow-group" in out, "a member may write", out)
    rc, out = decide("zoe@corp.example")
    t.ok(rc == 1 and "default-deny" in out, "a non-member may not", out)
    corp = t.client(gw.listen("corp"))
    corp.bind("alice@corp.example")
    partner = t.client(gw.listen("partner"))
    partner.bind("bob@partner.example")
    corp.send({"type": "message", "from": "alice@corp.example",
               "to": "bob@partner.example", "id": "m1", "body": "hi"})
    got = partner.expect(lambda o: o.get("id") == "m1", timeout=5)
    t.ok(got is not None and got.get("type") == "message",
         "a member's message crosses", repr(got))

    # --- 2. reloaded with another CA: down, the cache goes on ------------------
    gw.write_config(conf(dict(directory, **{"ca-file": other.cert})))
    gw.hup()
    st = gw.wait_status(lambda s: (s.get("directory") or {}).get("state")
                        == "down", timeout=15)
    d = st.get("directory") or {}
    t.is_(d.get("state"), "down", "another CA: the directory is down")
    err = d.get("error") or ""
    t.like(err, "StartTLS", "status: the error names StartTLS: %s" % err)
    t.like(err, "certificate does not verify against ca-file %s"
           % other.cert, "status: ... and the TLS failure")
    rc, out, e2 = gw.ctl("status")
    t.like(out, "down", "status text: directory down")
    t.like(out, "StartTLS", "status text: the TLS reason")
    t.like(gw.log(), "StartTLS with %s" % ldap.uri, "the log names it")
    t.like(gw.log(), "does not verify against ca-file %s" % other.cert,
           "the log gives the TLS reason")
    t.like(gw.log(), "policies keep using the cached groups",
           "the log says the cache is used")
    rc, out = decide("alice@corp.example")
    t.ok(rc == 0 and "allow-group" in out, "the cached group still allows",
         out)
    rc, out = decide("zoe@corp.example")
    t.ok(rc == 1, "and a non-member is still refused", out)
    t.is_(gw.term(), 0, "stopped")

    # --- 3. a fresh start with the other CA: nothing cached ---------------------
    gw.start()
    st = gw.wait_status(lambda s: (s.get("directory") or {}).get("state")
                        == "down", timeout=15)
    d = st.get("directory") or {}
    t.is_(d.get("state"), "down", "a fresh start with another CA: down")
    t.like(d.get("error") or "", "StartTLS", "with StartTLS named")
    t.like(d.get("error") or "", "does not verify against ca-file",
           "and the TLS reason")
    rc, out = decide("alice@corp.example")
    t.ok(rc == 1 and "default-deny" in out, "no cache: the community's "
         "default decides (deny)", out)
    t.ok(gw.alive(), "imgwd runs on")
    t.is_(gw.term(), 0, "stopped")

    # --- 4. no StartTLS against a server that requires TLS ----------------------
    plain = dict(directory, starttls="no")
    del plain["ca-file"]
    gw.write_config(conf(plain))
    gw.start()
    st = gw.wait_status(lambda s: (s.get("directory") or {}).get("state")
                        == "down", timeout=15)
    d = st.get("directory") or {}
    t.is_(d.get("state"), "down", "without StartTLS: down")
    t.like((d.get("error") or "").lower(), "confidentiality required",
           "the server's reason: %s" % d.get("error"))
    t.is_(gw.term(), 0, "stopped")

    # --- 5. ldaps:// ------------------------------------------------------------------
    tls = dict(directory, uri=ldap.ldaps_uri)
    del tls["starttls"]
    gw.write_config(conf(tls))
    gw.start()
    st = gw.wait_status(loaded, timeout=15)
    d = st.get("directory") or {}
    t.is_(d.get("state"), "up", "ldaps://, test CA: up")
    rc, out = decide("alice@corp.example")
    t.ok(rc == 0 and "allow-group" in out, "ldaps://: the group allows", out)
    t.is_(gw.term(), 0, "stopped")
    gw.write_config(conf(dict(tls, **{"ca-file": other.cert})))
    gw.start()
    st = gw.wait_status(lambda s: (s.get("directory") or {}).get("state")
                        == "down", timeout=15)
    d = st.get("directory") or {}
    t.is_(d.get("state"), "down", "ldaps://, another CA: down")
    t.like(d.get("error") or "", "certificate does not verify against "
           "ca-file %s" % other.cert, "with the TLS reason: %s"
           % d.get("error"))
    t.is_(gw.term(), 0, "stopped")
    ldap.stop()


if __name__ == "__main__":
    T.Test(alarm=180).run(main)
