#!/usr/bin/env python3
"""bench/bench-sip-xmpp.py's smoke run as a test, so that the benchmark and
its reference cannot rot unseen.

The bench's own setup (a private Prosody with two components, Kamailio with
its xmpp module -- and the shim when the module crashes, kamailio issue
#4154 -- imgwd with a sip and an xmpp community, the c2s sink) and 100
MESSAGEs by sipp at 50/s through each gateway.  Checked per pipeline:
every MESSAGE got its 202 and reached the XMPP sink once, with sipp's body
and the from/to the gateway's address mapping promises.  No timing is
checked.  Skipped only when a peer is not installed (sip-tester, prosody,
kamailio, kamailio-xmpp-modules).
"""

import importlib.util
import os

import imgwtest as T

SRCDIR = os.environ.get("IMGW_SRCDIR", ".")
spec = importlib.util.spec_from_file_location(
    "bench_sip_xmpp", os.path.join(SRCDIR, "bench", "bench-sip-xmpp.py"))
B = importlib.util.module_from_spec(spec)
spec.loader.exec_module(B)


def main(t):
    why = B.missing()
    if why:
        t.skip("SIP MESSAGE -> XMPP through Kamailio and imgwd", why)
        return
    b = B.Bench(t, children=2, prosody_log="info")
    if b.shim:
        t.diag("Kamailio's xmpp module crashed on Prosody's stream header; "
               "running it with bench/kamailio-xmpp-shim.c preloaded")
    for p in b.pipelines:
        r = b.run(p, 50, 2, keep=True)
        t.diag("%s: %d calls, %d at the sink, delivery p50 %.2f ms" % (
            p.name, r["calls"], r["got"], B.S.pct(r["lat"], 0.5) * 1e3))
        for ok, desc, diag in B.check(p, r):
            t.ok(ok, desc, diag)
    t.is_(b.imgwd.term(), 0, "imgwd stops cleanly on SIGTERM")


if __name__ == "__main__":
    T.Test(alarm=180).run(main)
