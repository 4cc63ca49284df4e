"""A private slapd for the policy tests (Debian packages slapd, ldap-utils).

    import ldaptest as L

    ldap = L.Slapd(t)            # t: an imgwtest.Test; folder under t.dir
    ldap.start()                 # slapd -h ldap://127.0.0.1:PORT/ -f ...
    ldap.add(L.BASE_LDIF)        # ldapadd as the root DN
    ldap.stop()                  # by its pid; start() again keeps the data

slapd runs in the foreground (-d 0) from a slapd.conf with the mdb
backend, suffix dc=example,dc=com, root DN cn=admin,dc=example,dc=com
(password "secret"), the core, cosine, inetorgperson and nis schemas
(groupOfNames with member DNs, posixGroup with memberUid).
"""

import os
import shutil
import socket
import subprocess
import time

SLAPD = os.environ.get("SLAPD", "/usr/sbin/slapd")
LDAPADD = shutil.which("ldapadd") or "/usr/bin/ldapadd"
SUFFIX = "dc=example,dc=com"
ROOT_DN = "cn=admin," + SUFFIX
ROOT_PW = "secret"
READER_DN = "cn=imgw," + SUFFIX
READER_PW = "imgw-reads"


def available():
    """None when slapd and ldapadd are installed, else why not."""
    if not os.access(SLAPD, os.X_OK):
        return "slapd is not installed (apt-get install slapd)"
    if not os.access(LDAPADD, os.X_OK):
        return "ldapadd is not installed (apt-get install ldap-utils)"
    if not os.path.isdir("/usr/lib/ldap"):
        return "no slapd modules in /usr/lib/ldap"
    return None


def person(uid, mail, cn=None):
    return ("dn: uid=%s,ou=people,%s\nobjectClass: inetOrgPerson\n"
            "objectClass: posixAccount\nuid: %s\ncn: %s\nsn: %s\n"
            "uidNumber: %d\ngidNumber: 100\nhomeDirectory: /home/%s\n"
            "%s\n") % (uid, SUFFIX, uid, cn or uid.title(), uid,
                       1000 + sum(map(ord, uid)), uid,
                       "mail: %s\n" % mail if mail else "")


def group_of_names(cn, uids):
    return ("dn: cn=%s,ou=groups,%s\nobjectClass: groupOfNames\ncn: %s\n"
            % (cn, SUFFIX, cn)
            + "".join("member: uid=%s,ou=people,%s\n" % (u, SUFFIX)
                      for u in uids) + "\n")


def posix_group(cn, uids, gid=500):
    return ("dn: cn=%s,ou=groups,%s\nobjectClass: posixGroup\ncn: %s\n"
            "gidNumber: %d\n" % (cn, SUFFIX, cn, gid)
            + "".join("memberUid: %s\n" % u for u in uids) + "\n")


BASE_LDIF = """dn: %(s)s
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,%(s)s
objectClass: organizationalUnit
ou: people

dn: ou=groups,%(s)s
objectClass: organizationalUnit
ou: groups

dn: %(r)s
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: imgw
userPassword: %(p)s

""" % {"s": SUFFIX, "r": READER_DN, "p": READER_PW}


class Slapd:
    def __init__(self, t, name="slapd"):
        self.t = t
        self.dir = t.path(name)
        self.port = None
        self.proc = None
        self.log_fp = None
        os.makedirs(os.path.join(self.dir, "db"), exist_ok=True)
        self.conf = os.path.join(self.dir, "slapd.conf")
        with open(self.conf, "w") as f:
            f.write("""include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile %(d)s/slapd.pid
argsfile %(d)s/slapd.args
access to attrs=userPassword by anonymous auth by * none
access to * by dn.exact="%(r)s" read by * none
database mdb
maxsize 67108864
suffix "%(s)s"
rootdn "%(rd)s"
rootpw %(rp)s
directory %(d)s/db
""" % {"d": self.dir, "s": SUFFIX, "rd": ROOT_DN, "rp": ROOT_PW,
       "r": READER_DN})

    @property
    def uri(self):
        return "ldap://127.0.0.1:%d" % self.port

    def start(self, timeout=10):
        if self.port is None:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
            s.close()
        self.log_fp = open(os.path.join(self.dir, "slapd.log"), "ab")
        self.proc = subprocess.Popen(
            [SLAPD, "-h", self.uri + "/", "-f", self.conf, "-d", "0"],
            stdin=subprocess.DEVNULL, stdout=self.log_fp, stderr=self.log_fp)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("slapd exited with %r: %s" % (
                    self.proc.returncode, self.log()))
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("slapd not listening after %ss" % timeout)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        if self.log_fp is not None:
            self.log_fp.close()
            self.log_fp = None

    def log(self):
        try:
            with open(os.path.join(self.dir, "slapd.log")) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def add(self, ldif):
        p = subprocess.run([LDAPADD, "-x", "-H", self.uri, "-D", ROOT_DN,
                            "-w", ROOT_PW], input=ldif.encode(),
                           capture_output=True, timeout=30)
        if p.returncode != 0:
            raise RuntimeError("ldapadd: %s" % p.stderr.decode())
