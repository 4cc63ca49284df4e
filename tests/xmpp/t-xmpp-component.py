#!/usr/bin/env python3
"""The xmpp connector in component mode against a real Prosody.

A private Prosody (xmpp.example, component gw.xmpp.example) and imgwd with
the XMPP community and a local jsonl community corp.example; the checks
themselves are in componentchecks.py, shared with t-xmpp-ejabberd.py so
that every server runs the same ones.
"""

import componentchecks
import imgwtest as T
import xmpptest as X


def main(t):
    if not X.have_prosody():
        t.ok(True, "# SKIP prosody is not installed")
        return
    pro = X.Prosody(t, users={"alice": "alice-pw", "carol": "carol-pw"})
    componentchecks.component_checks(t, pro)


T.Test(alarm=120).run(main)
