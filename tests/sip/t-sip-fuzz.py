#!/usr/bin/env python3
"""A bounded libFuzzer run of the inbound SIP-to-event path (tests/fuzz/fuzz-sip.c).

Builds tests/fuzz/fuzz-sip.c with the stack and connector sources under
clang -fsanitize=fuzzer,address,undefined, seeds it with valid MESSAGE,
isComposing, SUBSCRIBE, NOTIFY, OPTIONS and a response, and runs it for
IMGW_FUZZ_SECONDS (default 30).  Any crash, leak or sanitizer report
fails the test and leaves the reproducer in the kept folder.
"""

import glob
import os
import shutil
import subprocess

import siptest as S
import imgwtest as T


class Fake:
    proto = "udp"
    port = 5070


def main(t):
    clang = shutil.which("clang")
    if clang is None:
        t.skip("fuzz-sip", "clang is not installed (apt-get install clang)")
        return
    top = S.SRCDIR
    pc = subprocess.run(["pkg-config", "--cflags", "--libs", "libosip2", "expat", "openssl"],
                        capture_output=True, text=True)
    if pc.returncode != 0:
        t.skip("fuzz-sip", "pkg-config libosip2 expat openssl: %s" % pc.stderr.strip())
        return
    exe = t.path("fuzz-sip")
    srcs = sorted(glob.glob(os.path.join(top, "plugins", "sip", "*.c")) +
                  glob.glob(os.path.join(top, "plugins", "sipstack", "*.c")) +
                  glob.glob(os.path.join(top, "plugins", "common", "*.c")))
    cmd = [clang, "-g", "-O1", "-fsanitize=fuzzer,address,undefined",
           "-fno-sanitize-recover=undefined", "-I", os.path.join(top, "sdk", "include"),
           os.path.join(top, "tests", "fuzz", "fuzz-sip.c")] + srcs + \
        pc.stdout.split() + ["-lresolv", "-o", exe]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if not t.ok(p.returncode == 0, "fuzz-sip builds with clang -fsanitize=fuzzer",
                p.stderr[-3000:]):
        return
    corpus = t.path("corpus")
    os.makedirs(corpus)
    e = Fake()
    seeds = [
        S.request("MESSAGE", "sip:alice@corp.example", e, body="hello",
                  headers=["Subject: s", "Content-Language: en"]),
        S.request("MESSAGE", "sip:alice@corp.example", e,
                  body="<isComposing xmlns='urn:ietf:params:xml:ns:im-iscomposing'>"
                       "<state>active</state></isComposing>",
                  ctype="application/im-iscomposing+xml"),
        S.request("MESSAGE", "sip:alice@corp.example", e, body=b"Gr\xfc\xdfe",
                  ctype="text/plain;charset=ISO-8859-1"),
        S.request("SUBSCRIBE", "sip:alice@corp.example", e,
                  headers=["Event: presence", "Expires: 600",
                           "Contact: <sip:bob@127.0.0.1:5070>"]),
        S.request("NOTIFY", "sip:imgw@127.0.0.1", e,
                  headers=["Event: presence", "Subscription-State: active;expires=60"],
                  body="<presence xmlns='urn:ietf:params:xml:ns:pidf'><tuple id='a'>"
                       "<status><basic>open</basic></status><note xml:lang='en'>x"
                       "</note></tuple></presence>", ctype="application/pidf+xml"),
        # dialog routing: Record-Route into the route set and the 200,
        # Route values naming us removed, others counted
        S.request("SUBSCRIBE", "sip:alice@corp.example", e,
                  headers=["Event: presence", "Expires: 600",
                           "Contact: <sip:bob@127.0.0.1:5070>",
                           "Route: <sip:127.0.0.1:5060;lr>, <sip:192.0.2.1;lr>",
                           "Record-Route: <sip:192.0.2.7:5070;lr>, <sip:p.example>",
                           "Record-Route: <sips:[2001:db8::1];transport=tls;lr>"]),
        S.request("OPTIONS", "sip:gw@sip.example", e),
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-imgw1\r\n"
        b"From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\n"
        b"CSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n",
    ]
    for i, s in enumerate(seeds):
        with open(os.path.join(corpus, "seed%d" % i), "wb") as f:
            f.write(s)
    secs = int(os.environ.get("IMGW_FUZZ_SECONDS", "30"))
    p = subprocess.run([exe, "-max_total_time=%d" % secs, "-rss_limit_mb=2048",
                        "-artifact_prefix=" + t.path(""), corpus],
                       capture_output=True, text=True, timeout=secs + 120, cwd=t.dir)
    tail = p.stderr[-4000:]
    t.is_(p.returncode, 0, "fuzz-sip ran %d s without a crash, leak or "
          "sanitizer report" % secs)
    if p.returncode != 0:
        t.diag(tail)
    else:
        runs = [l for l in p.stderr.splitlines() if l.startswith("Done ")]
        t.diag(runs[-1] if runs else "")


if __name__ == "__main__":
    T.Test(alarm=600).run(main)
