#!/usr/bin/env python3
"""The xmpp connector in component mode against a real ejabberd.

A private ejabberd (Debian package ejabberd; xmpp.example, component
gw.xmpp.example on an ejabberd_service listener), started by
xmpptest.Ejabberd on 127.0.0.1 with its own Erlang node, cookie, config,
log and spool, users registered with ejabberd_ctl.  It runs the same
checks as t-xmpp-component.py does against Prosody (componentchecks.py):
messages both ways with every field, presence, subscriptions, chat states,
errors with their ids, disco#info; then a wrong component secret (down,
clear log line, the right secret on reload brings it up).  Skips when
ejabberd is not installed.
"""

import time

import componentchecks
import imgwtest as T
import xmpptest as X


def main(t):
    if not X.have_ejabberd():
        t.ok(True, "# SKIP ejabberd is not installed (Debian package ejabberd)")
        return
    t0 = time.monotonic()
    ej = X.Ejabberd(t, users={"alice": "alice-pw", "carol": "carol-pw"})
    t.diag("ejabberd started and users registered in %.1f s" % (time.monotonic() - t0))
    componentchecks.component_checks(t, ej)
    componentchecks.wrong_secret(t, ej)


T.Test(alarm=150).run(main)
