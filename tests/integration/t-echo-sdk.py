#!/usr/bin/env python3
"""The echo example builds out of tree against an installed imgw and runs.

`make install DESTDIR=TMP` installs imgw; the echo connector is compiled
with nothing but `pkg-config --cflags imgw-sdk` (and, the second time,
with the example's own Makefile), loaded by imgwd next to the installed
jsonl connector, and answers a message with its body reversed.
"""

import os
import shutil
import subprocess

import imgwtest as T

ALICE = "alice@corp.example"


def sh(cmd, env=None, timeout=600, cwd=None):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=timeout, env=e, cwd=cwd)
    return p.returncode, p.stdout.decode("utf-8", "replace"), \
        p.stderr.decode("utf-8", "replace")


def find(root, name):
    for d, dirs, files in os.walk(root):
        if name in files or name in dirs:
            return os.path.join(d, name)
    return None


def exported(path):
    rc, out, err = sh(["nm", "-D", "--defined-only", path])
    if rc != 0:
        return None
    return sorted(l.split()[-1] for l in out.splitlines()
                  if len(l.split()) >= 3 and l.split()[1] in "TDBRtdbr" and
                  l.split()[1].isupper())


def run_echo(t, conn, what, version):
    """Start imgwd on conn (echo.so + jsonl.so) and talk to echo."""
    gw = t.gateway({
        "gateway": {"connectors": conn},
        "community corp": {
            "connector": "jsonl", "local": True, "domains": "corp.example",
            "listen": "tcp:127.0.0.1:%d" % T.free_port(),
        },
        "community echo": {"connector": "echo", "domains": "echo.example",
                           "prefix": "echo:"},
    }, name="imgwd-" + what)
    e = gw.community("echo") or {}
    t.is_(e.get("state"), "running", "%s: the echo community runs" % what)
    t.is_(e.get("connector_version"), version, "%s: echo reports version %s" % (what, version))
    c = t.client(gw.listen("corp"))
    c.bind(ALICE)
    c.send({"type": "message", "from": ALICE, "to": "bot@echo.example", "id": "x1",
            "thread": "t1", "body": "stressed \u00e9\u00e8 \U0001F642"})
    ans = c.expect(lambda o: o.get("id") == "x1", timeout=10)
    t.ok(ans is not None and ans.get("type") == "message" and
         ans.get("body") == "echo:\U0001F642 \u00e8\u00e9 desserts" and
         ans.get("from") == "bot@echo.example" and
         (ans.get("to") or "").split("/")[0] == ALICE and ans.get("thread") == "t1",
         "%s: a message gets its reversed answer" % what, "answer: %r" % (ans,))
    c.send({"type": "subscribe", "from": ALICE, "to": "bot@echo.example", "id": "s1"})
    ans = c.expect(lambda o: o.get("type") in ("subscribed", "error"), timeout=10)
    t.is_((ans or {}).get("type"), "subscribed", "%s: a subscribe is accepted" % what)
    t.is_(gw.term(), 0, "%s: imgwd exits 0" % what)


def main(t):
    dest = t.path("inst")
    # install-exec + install-data is `make install` without its `all`
    # step: under `make -j check` other tests are running from this build
    # tree, and `all` would re-link the connectors/ folder under them.
    rc, out, err = sh(["make", "-s", "-C", T.BUILDDIR, "install-exec", "install-data",
                       "DESTDIR=" + dest], timeout=900)
    if not t.is_(rc, 0, "make install DESTDIR=TMP"):
        t.diag((out + err)[-4000:])
        return
    pc = find(dest, "imgw-sdk.pc")
    if not t.ok(pc is not None, "imgw-sdk.pc is installed"):
        return
    t.diag("installed %s" % pc)
    env = {"PKG_CONFIG_SYSROOT_DIR": dest, "PKG_CONFIG_PATH": os.path.dirname(pc),
           "PKG_CONFIG_LIBDIR": os.path.dirname(pc)}
    rc, cflags, err = sh(["pkg-config", "--cflags", "imgw-sdk"], env)
    t.is_(rc, 0, "pkg-config --cflags imgw-sdk")
    cflags = cflags.split()
    inc = [f[2:] for f in cflags if f.startswith("-I")]
    t.ok(any(os.path.isfile(os.path.join(d, "imgw", "imgw.h")) for d in inc),
         "the cflags point at the installed imgw/imgw.h", "cflags: %r" % cflags)
    t.ok(all(os.path.realpath(d).startswith(os.path.realpath(dest)) for d in inc),
         "the cflags point into the installation, not the source tree", "%r" % cflags)
    rc, cdir, err = sh(["pkg-config", "--variable=connectordir", "imgw-sdk"], env)
    cdir = cdir.strip()
    t.ok(rc == 0 and cdir.startswith("/"), "imgw-sdk.pc names the connectordir",
         "%r %r" % (cdir, err))
    # (some pkg-config versions put the sysroot before variables too)
    idir = cdir if cdir.startswith(dest) else dest + cdir
    jsonl = os.path.join(idir, "jsonl.so")
    if not t.ok(os.path.isfile(jsonl), "jsonl.so is installed in the connectordir",
                "expected %s; found %s" % (jsonl, find(dest, "jsonl.so"))):
        jsonl = find(dest, "jsonl.so") or os.path.join(T.CONNECTORS, "jsonl.so")

    # the public headers compile on their own, cleanly, for a third party
    probe = t.path("probe.c")
    with open(probe, "w") as f:
        f.write("#include <imgw/imgw.h>\nint probe(void) { return IMGW_ABI_MAJOR; }\n")
    rc, out, err = sh(["cc"] + cflags + ["-std=c11", "-Wall", "-Wextra", "-Werror",
                                         "-c", "-o", t.path("probe.o"), probe])
    t.is_(rc, 0, "the installed SDK headers compile alone with -Wall -Wextra -Werror")
    if rc != 0:
        t.diag(err)

    # 1: the command in the SDK documentation
    conn = t.path("conn")
    os.mkdir(conn)
    rc, out, err = sh(["cc"] + cflags + ["-shared", "-fPIC", "-o",
                                         os.path.join(conn, "echo.so"),
                                         os.path.join(T.SRCDIR, "sdk", "examples", "echo",
                                                      "echo.c")])
    if not t.is_(rc, 0, "cc $(pkg-config --cflags imgw-sdk) -shared -fPIC echo.c"):
        t.diag(out + err)
        return
    t.is_(exported(os.path.join(conn, "echo.so")), ["imgw_connector_entry"],
          "echo.so exports only imgw_connector_entry")
    os.symlink(jsonl, os.path.join(conn, "jsonl.so"))
    run_echo(t, conn, "cc-built", "1.0")

    # 2: the example's own Makefile, in a copy outside the source tree
    src = t.path("echo-src")
    os.mkdir(src)
    for f in ("echo.c", "Makefile"):
        shutil.copy(os.path.join(T.SRCDIR, "sdk", "examples", "echo", f), src)
    rc, out, err = sh(["make", "-C", src, "ECHO_VERSION=3.1"], env)
    if not t.is_(rc, 0, "the example's Makefile builds echo.so against the installed SDK"):
        t.diag(out + err)
        return
    conn2 = t.path("conn2")
    os.mkdir(conn2)
    shutil.copy(os.path.join(src, "echo.so"), conn2)
    os.symlink(jsonl, os.path.join(conn2, "jsonl.so"))
    run_echo(t, conn2, "make-built", "3.1")


T.Test(alarm=900).run(main)
