#!/usr/bin/env python3
"""imgwd -t checks configurations; imgwd -V prints version and ABI.

A valid file exits 0; each broken one exits 1 with stderr starting
"FILE:LINE:" naming the offending line.  imgwd without -t refuses the
same files the same way.
"""

import os
import re
import subprocess

import imgwtest as T

GOOD = """\
# a comment
; another comment
[gateway]
node = gw1
connectors = {conn}
control = {dir}/imgwd.sock
log-level = info
queue-size = 500
presence-rate = 10/10
loop-limit = 20/10

[community corp]
connector = jsonl
local = yes
domains = corp.example
listen = tcp:127.0.0.1:{port1}
max-line = 4096

[community partner]
connector = jsonl
domains = partner.example other.example
listen = unix:{dir}/partner.sock
queue-size = 100
"""


def run(args, cwd=None, timeout=30):
    p = subprocess.run([T.IMGWD] + args, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=timeout, cwd=cwd)
    return p.returncode, p.stdout.decode("utf-8", "replace"), \
        p.stderr.decode("utf-8", "replace")


def lineno(text, needle, nth=1):
    """1-based number of the nth line that starts with needle."""
    n = 0
    for i, line in enumerate(text.splitlines(), 1):
        if line.startswith(needle):
            n += 1
            if n == nth:
                return i
    raise ValueError("no line %r in config" % needle)


def main(t):
    subst = {"conn": T.CONNECTORS, "dir": t.dir, "port1": T.free_port()}
    good = GOOD.format(**subst)
    path = t.path("good.conf")
    with open(path, "w") as f:
        f.write(good)

    rc, out, err = run(["-t", "-c", path])
    t.is_(rc, 0, "imgwd -t on a valid file exits 0")
    t.is_(err, "", "imgwd -t on a valid file prints nothing on stderr")
    t.ok(not os.path.exists(t.path("imgwd.sock")), "imgwd -t does not open the control socket")

    # connectors relative to the config file's folder, whatever the cwd
    os.symlink(T.CONNECTORS, t.path("conn"))
    rel = good.replace("connectors = %s" % T.CONNECTORS, "connectors = conn")
    with open(t.path("rel.conf"), "w") as f:
        f.write(rel)
    rc, out, err = run(["-t", "-c", t.path("rel.conf")], cwd="/")
    t.is_(rc, 0, "a relative connectors folder is found from the config's folder")
    if rc != 0:
        t.diag(err)

    # the sample configuration shipped in etc/ is valid (with the build's
    # connectors folder)
    sample = os.path.join(T.BUILDDIR, "etc", "imgwd.conf.sample")
    if os.path.exists(sample):
        with open(sample) as f:
            text = re.sub(r"(?m)^connectors\s*=.*$", "connectors = " + T.CONNECTORS, f.read())
        with open(t.path("sample.conf"), "w") as f:
            f.write(text)
        rc, out, err = run(["-t", "-c", t.path("sample.conf")])
        t.is_(rc, 0, "the shipped sample configuration is valid")
        if rc != 0:
            t.diag(err)
    else:
        t.skip("the shipped sample configuration is valid", "no %s" % sample)

    # broken files: (description, text, line(s) the error must name)
    bad = []

    def case(desc, text, lines, needle=None):
        bad.append((desc, text, lines if isinstance(lines, (list, tuple)) else [lines],
                    needle))

    text = good.replace("log-level = info", "log-level = info\nnode-name = gw2")
    case("unknown key in [gateway]", text, lineno(text, "node-name"), "node-name")

    text = good.replace("listen = tcp:", "lisen = tcp:")
    case("unknown key in a community (checked against the connector's options)",
         text, lineno(text, "lisen"), "lisen")

    text = good.replace("max-line = 4096", "max-line = lots")
    case("connector option of the wrong type", text, lineno(text, "max-line"), "max-line")

    text = good.replace("max-line = 4096", "max-line = 10")
    case("connector option out of range", text, lineno(text, "max-line"), "max-line")

    text = good + "\n[community corp]\nconnector = jsonl\ndomains = third.example\n" \
        "listen = tcp:127.0.0.1:%d\n" % T.free_port()
    case("duplicate community", text, lineno(text, "[community corp]", 2), "corp")

    text = good + "\n[community third]\nconnector = jsonl\ndomains = x.example corp.example\n" \
        "listen = tcp:127.0.0.1:%d\n" % T.free_port()
    case("two communities claiming one domain", text,
         [lineno(text, "[community third]"), lineno(text, "domains = x.example")],
         "corp.example")

    text = good.replace("domains = partner.example", "local = yes\ndomains = partner.example")
    case("two local communities", text,
         [lineno(text, "[community partner]"), lineno(text, "local = yes", 2)], "local")

    text = good.replace("[community partner]\nconnector = jsonl\n", "[community partner]\n")
    case("missing connector key", text, lineno(text, "[community partner]"), "connector")

    text = good.replace("[community partner]\nconnector = jsonl\ndomains = partner.example "
                        "other.example\n", "[community partner]\nconnector = jsonl\n")
    case("missing domains key", text, lineno(text, "[community partner]"), "domains")

    text = good.replace("listen = unix:", "max-connections = 5\n#listen = unix:")
    case("missing required connector option", text,
         [lineno(text, "[community partner]"), lineno(text, "max-connections")], "listen")

    text = good.replace("log-level = info", "log-level = chatty")
    case("bad log-level", text, lineno(text, "log-level"), "chatty")

    # [store] numbers, each with its bound in the message
    for kv, needle in (("batch = 0", "batch '0': expected a number from 1 to 100000"),
                       ("flush-ms = 0", "flush-ms '0': expected milliseconds from 1 to 600000"),
                       ("refresh = 99999", "refresh '99999': expected seconds from 1 to 86400"),
                       ("retry-max = 5", "retry-max '5': expected milliseconds from 100 to 3600000"),
                       ("timeout = x", "timeout 'x': expected seconds from 0 to 3600")):
        text = good + "\n[store]\ndsn = none\n%s\n" % kv
        case("bad [store] %s" % kv.split()[0], text, lineno(text, kv.split()[0] + " ="), needle)

    text = good.replace("queue-size = 500", "queue-size = -5")
    case("bad queue-size", text, lineno(text, "queue-size"), "queue-size")

    text = good.replace("presence-rate = 10/10", "presence-rate = often")
    case("bad presence-rate", text, lineno(text, "presence-rate"), "presence-rate")

    text = good.replace("local = yes", "local = perhaps")
    case("bad boolean", text, lineno(text, "local = perhaps"), "perhaps")

    text = good.replace("; another comment", "this line has no equals sign")
    case("garbage line without '='", text, lineno(text, "this line has"))

    text = good.replace("[community partner]", "[partner]")
    case("unknown section", text, lineno(text, "[partner]"), "partner")

    text = good.replace("[community partner]", "[community partner")
    case("malformed section header", text, lineno(text, "[community partner"))

    text = good.replace("domains = corp.example", "domains = corp.example\ndomains = b.example")
    case("duplicate key", text, lineno(text, "domains = b.example"), "domains")

    text = good.replace("connector = jsonl", "connector = ../evil", 1)
    case("connector given as a path", text, lineno(text, "connector = ../evil"))

    for i, (desc, text, lines, needle) in enumerate(bad):
        path = t.path("bad%02d.conf" % i)
        with open(path, "w") as f:
            f.write(text)
        rc, out, err = run(["-t", "-c", path])
        t.is_(rc, 1, "%s: imgwd -t exits 1" % desc)
        m = re.match(re.escape(path) + r":(\d+): ", err)
        got = int(m.group(1)) if m else None
        t.ok(got in lines, "%s: stderr starts with FILE:LINE: naming line %s" %
             (desc, "/".join(str(x) for x in lines)), "stderr: %r" % err)
        if needle is not None:
            t.like(err, needle, "%s: the message names %r" % (desc, needle))

    # the daemon itself refuses a broken file the same way, and exits
    desc, text, lines, needle = bad[1]
    path = t.path("bad01.conf")
    rc, out, err = run(["-f", "-c", path], timeout=20)
    t.is_(rc, 1, "imgwd -f with a broken file exits 1")
    t.ok(re.match(re.escape(path) + r":%d: " % lines[0], err) is not None or
         (path + ":%d: " % lines[0]) in err,
         "imgwd -f with a broken file prints FILE:LINE:", "stderr: %r" % err)

    # a missing file
    rc, out, err = run(["-t", "-c", t.path("nonexistent.conf")])
    t.is_(rc, 1, "imgwd -t on a missing file exits 1")
    t.like(err, t.path("nonexistent.conf"), "the message names the missing file")

    # -V
    rc, out, err = run(["-V"])
    t.is_(rc, 0, "imgwd -V exits 0")
    t.like(out, "ABI 1.2", "imgwd -V prints the connector ABI")
    version = None
    try:
        with open(os.path.join(T.BUILDDIR, "config.h")) as f:
            m = re.search(r'#define PACKAGE_VERSION "([^"]+)"', f.read())
            version = m.group(1) if m else None
    except OSError:
        pass
    if version:
        t.like(out, version, "imgwd -V prints the package version")
    else:
        t.ok(re.search(r"\d+\.\d+", out) is not None, "imgwd -V prints a version")

    rc, out, err = run(["-x"])
    t.is_(rc, 2, "imgwd with an unknown option exits 2")


T.Test().run(main)
