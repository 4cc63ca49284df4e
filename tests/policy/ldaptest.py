"""A private slapd for the policy tests (Debian packages slapd, ldap-utils).

    import ldaptest as L

    ldap = L.Slapd(t)            # t: an imgwtest.Test; folder under t.dir
    ldap.start()                 # slapd -h ldap://127.0.0.1:PORT/ -f ...
    ldap.add(L.BASE_LDIF)        # ldapadd as the root DN
    ldap.stop()                  # by its pid; start() again keeps the data

    ca = L.TestCA(t, "ca")       # a CA made with openssl for the test
    ldap = L.Slapd(t, tls=ca.server("slapd"), require_tls=True)
    ldap.uri, ldap.ldaps_uri     # ldap:// (StartTLS) and ldaps:// ports

slapd runs in the foreground (-d 0) from a slapd.conf with the mdb
backend, suffix dc=example,dc=com, root DN cn=admin,dc=example,dc=com
(password "secret"), the core, cosine, inetorgperson and nis schemas
(groupOfNames with member DNs, posixGroup with memberUid).
"""

import os
import shutil
import signal
import subprocess

import imgwtest as T

SLAPD = os.environ.get("SLAPD", "/usr/sbin/slapd")
LDAPADD = shutil.which("ldapadd") or "/usr/bin/ldapadd"
SUFFIX = "dc=example,dc=com"
ROOT_DN = "cn=admin," + SUFFIX
ROOT_PW = "secret"
READER_DN = "cn=imgw," + SUFFIX
READER_PW = "imgw-reads"


OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"


class TestCA:
    """A certificate authority made with openssl in the test folder:
    `cert` is its certificate (a ca-file), server(name) a key and a
    certificate it signed for 127.0.0.1 and localhost."""

    def __init__(self, t, name):
        self.dir = t.path(name)
        os.makedirs(self.dir, exist_ok=True)
        self.key = os.path.join(self.dir, "ca.key")
        self.cert = os.path.join(self.dir, "ca.pem")
        self._run("req", "-x509", "-newkey", "rsa:2048", "-nodes",
                  "-keyout", self.key, "-out", self.cert, "-days", "2",
                  "-subj", "/CN=imgw test CA %s" % name,
                  "-addext", "basicConstraints=critical,CA:TRUE",
                  "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def _run(self, *args):
        p = subprocess.run([OPENSSL] + list(args), capture_output=True,
                           timeout=60)
        if p.returncode != 0:
            raise RuntimeError("openssl %s: %s" % (args[0],
                                                   p.stderr.decode()))

    def server(self, name):
        """(ca file, certificate, key) of a server certificate."""
        key = os.path.join(self.dir, name + ".key")
        csr = os.path.join(self.dir, name + ".csr")
        crt = os.path.join(self.dir, name + ".pem")
        ext = os.path.join(self.dir, name + ".ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                    "extendedKeyUsage=serverAuth\n"
                    "basicConstraints=CA:FALSE\n")
        self._run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                  "-out", csr, "-subj", "/CN=127.0.0.1")
        self._run("x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey",
                  self.key, "-CAcreateserial", "-out", crt, "-days", "2",
                  "-extfile", ext)
        return (self.cert, crt, key)


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


class Slapd(T.Server):
    def __init__(self, t, name="slapd", tls=None, require_tls=False):
        """tls: (ca file, certificate, key) -- slapd then takes StartTLS
        on its ldap:// port and listens on an ldaps:// port too;
        require_tls: binds and searches without TLS are refused."""
        self.t = t
        self.name = name
        self.dir = t.path(name)
        self.log_path = os.path.join(self.dir, "slapd.log")
        self.port = None
        self.tls_port = None
        self.tls = tls
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
%(tls)saccess to attrs=userPassword by anonymous auth by * none
access to * by dn.exact="%(r)s" read by * none
database mdb
maxsize 67108864
suffix "%(s)s"
rootdn "%(rd)s"
rootpw %(rp)s
directory %(d)s/db
""" % {"d": self.dir, "s": SUFFIX, "rd": ROOT_DN, "rp": ROOT_PW,
       "r": READER_DN,
       "tls": "" if not tls else
       "TLSCACertificateFile %s\nTLSCertificateFile %s\n"
       "TLSCertificateKeyFile %s\n%s" % (tls + ("security tls=1\n" if
                                                 require_tls else "",))})

    @property
    def uri(self):
        return "ldap://127.0.0.1:%d" % self.port

    @property
    def ldaps_uri(self):
        return "ldaps://127.0.0.1:%d" % self.tls_port

    @staticmethod
    def _free_port():
        return T.free_port()

    def start(self, timeout=10):
        if self.port is None:
            self.port = self._free_port()
        if self.tls and self.tls_port is None:
            self.tls_port = self._free_port()
        urls = self.uri + "/"
        if self.tls:
            urls += " " + self.ldaps_uri + "/"
        self.spawn([SLAPD, "-h", urls, "-f", self.conf, "-d", "0"],
                   self.log_path)
        try:
            self.wait_listening([("127.0.0.1", self.port)], timeout,
                                interval=0.05)
        except Exception as e:
            raise RuntimeError("%s: %s" % (e, self.log()[-4000:]))
        return self

    def stop(self):
        self.halt(signal.SIGTERM)
        self.proc = None

    def add(self, ldif):
        cmd = [LDAPADD, "-x", "-H", self.uri, "-D", ROOT_DN, "-w", ROOT_PW]
        env = dict(os.environ)
        if self.tls:
            cmd.append("-ZZ")
            env["LDAPTLS_CACERT"] = self.tls[0]
        p = subprocess.run(cmd, input=ldif.encode(), env=env,
                           capture_output=True, timeout=30)
        if p.returncode != 0:
            raise RuntimeError("ldapadd: %s" % p.stderr.decode())
