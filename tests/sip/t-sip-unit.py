#!/usr/bin/env python3
"""Builds t-sip-unit.c (the connector's mappings) with
-fsanitize=address,undefined and runs it; its TAP is this test's TAP."""

import glob
import os
import shutil
import subprocess
import sys
import tempfile

top = os.environ.get("IMGW_SRCDIR", os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))
cc = os.environ.get("CC", "cc")
d = tempfile.mkdtemp(prefix="imgw-sip-unit-")
exe = os.path.join(d, "t-sip-unit")
pc = subprocess.run(["pkg-config", "--cflags", "--libs", "libosip2", "expat", "openssl"],
                    capture_output=True, text=True)
srcs = sorted(glob.glob(os.path.join(top, "plugins", "sip", "*.c")) +
              glob.glob(os.path.join(top, "plugins", "sipstack", "*.c")) +
                  glob.glob(os.path.join(top, "plugins", "common", "*.c")))
cmd = [cc, "-g", "-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
       "-fno-omit-frame-pointer", "-Wall", "-Wextra", "-Wno-unused-parameter",
       "-I", os.path.join(top, "sdk", "include"),
       os.path.join(top, "tests", "sip", "t-sip-unit.c")] + srcs + \
    pc.stdout.split() + ["-lresolv", "-o", exe]
p = subprocess.run(cmd, capture_output=True, text=True)
if pc.returncode != 0 or p.returncode != 0:
    print("not ok 1 - t-sip-unit.c builds with -fsanitize=address,undefined")
    for line in (pc.stderr + p.stderr).splitlines()[-30:]:
        print("# " + line)
    print("1..1")
    sys.exit(1)
sys.stdout.flush()
r = subprocess.run([exe])
shutil.rmtree(d, ignore_errors=True)
sys.exit(r.returncode)
