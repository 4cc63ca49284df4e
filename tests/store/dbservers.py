"""Private database servers for the store tests, on 127.0.0.1.

    import dbservers as D
    pg = D.Postgres(t)          # t: an imgwtest.Test; None when not installed
    pg.start(); pg.dsn; pg.stop(); pg.start()   # same data, same port
    my = D.MariaDB(t)

Each server lives in its own temporary folder (owned by the server's
system user when the tests run as root: PostgreSQL refuses to run as
root), with its own port and socket folder, so that nothing on the machine
is touched and several tests can run side by side.  available() says
whether the server and its ODBC driver are installed; tests skip (with the
Debian packages to install) when not.
"""

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time

import imgwtest as T


def odbc_driver(*names):
    """The first of `names` registered in odbcinst.ini, or None."""
    have = set()
    for path in ("/etc/odbcinst.ini", "/usr/local/etc/odbcinst.ini"):
        try:
            with open(path) as f:
                for line in f:
                    line = line.strip()
                    if line.startswith("[") and line.endswith("]"):
                        have.add(line[1:-1])
        except OSError:
            pass
    for n in names:
        if n in have:
            return n
    return None


def _run(cmd, user=None, timeout=120, **kw):
    if user is not None and os.getuid() == 0:
        cmd = ["runuser", "-u", user, "--"] + cmd
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=timeout, **kw)
    if p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), p.returncode,
                           (p.stdout + p.stderr).decode("utf-8", "replace")))
    return p.stdout.decode("utf-8", "replace")


class _Server:
    user = None     # the system user the server runs as when we are root

    def __init__(self, t, name):
        self.t = t
        self.name = name
        self.port = T.free_port()
        self.dir = tempfile.mkdtemp(prefix="imgw-%s-" % name)
        os.chmod(self.dir, 0o755)
        if os.getuid() == 0 and self.user is not None:
            pw = pwd.getpwnam(self.user)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.running = False
        t.diag("%s in %s, port %d" % (name, self.dir, self.port))

    def cleanup(self):
        try:
            self.stop()
        except Exception as e:
            self.t.diag("stopping %s: %s" % (self.name, e))
        if not self.t.failed:
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            self.t.diag("kept %s" % self.dir)

    def wait_port(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if T.probe_addr("tcp:127.0.0.1:%d" % self.port):
                return True
            time.sleep(0.1)
        return False


class Postgres(_Server):
    user = "postgres"
    BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))

    @staticmethod
    def available():
        """None when usable, else what to install."""
        if not Postgres.BIN or not os.path.exists(
                os.path.join(Postgres.BIN[-1], "initdb")):
            return "postgresql is not installed (apt-get install postgresql)"
        if os.getuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                return "no postgres user"
        if odbc_driver("PostgreSQL Unicode") is None:
            return "no ODBC driver 'PostgreSQL Unicode' (apt-get install " \
                "odbc-postgresql)"
        return None

    def __init__(self, t):
        super().__init__(t, "postgresql")
        self.bin = Postgres.BIN[-1]
        self.data = os.path.join(self.dir, "data")
        _run([os.path.join(self.bin, "initdb"), "-D", self.data, "-A", "trust",
              "-U", "imgw", "-E", "UTF8", "--locale=C", "--no-sync"],
             user=self.user)
        self.dsn = ("DRIVER={PostgreSQL Unicode};Server=127.0.0.1;Port=%d;"
                    "Database=postgres;UID=imgw" % self.port)

    def start(self):
        _run([os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-l",
              os.path.join(self.dir, "log"), "-w", "-t", "60", "-o",
              "-k %s -p %d -c listen_addresses=127.0.0.1 -c fsync=off "
              "-c full_page_writes=off" % (self.dir, self.port), "start"],
             user=self.user)
        self.running = True
        return self.wait_port()

    def stop(self, mode="fast"):
        if not self.running:
            return
        _run([os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-m", mode,
              "-w", "stop"], user=self.user)
        self.running = False

    def sql(self, text):
        """Run SQL with psql; returns its output (unaligned, no header)."""
        return _run(["psql", "-h", self.dir, "-p", str(self.port), "-U", "imgw",
                     "-d", "postgres", "-X", "-A", "-t", "-q", "-c", text])


class MariaDB(_Server):
    user = "mysql"

    @staticmethod
    def available():
        if shutil.which("mariadbd") is None and not os.path.exists(
                "/usr/sbin/mariadbd"):
            return "mariadb-server is not installed (apt-get install " \
                "mariadb-server)"
        if os.getuid() == 0:
            try:
                pwd.getpwnam("mysql")
            except KeyError:
                return "no mysql user"
        if MariaDB.driver() is None:
            return "no MariaDB ODBC driver (apt-get install odbc-mariadb)"
        return None

    @staticmethod
    def driver():
        return odbc_driver("MariaDB Unicode", "MariaDB", "MariaDB ODBC 3.1 Driver")

    def __init__(self, t):
        super().__init__(t, "mariadb")
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "sock")
        self.proc = None
        args = ["mariadb-install-db", "--no-defaults", "--datadir=" + self.data,
                "--auth-root-authentication-method=normal",
                "--skip-test-db", "--skip-name-resolve"]
        if os.getuid() == 0:
            args.append("--user=mysql")
        _run(args, timeout=180)
        self.dsn = ("DRIVER={%s};SERVER=127.0.0.1;PORT=%d;DATABASE=imgw;"
                    "UID=root;CHARSET=utf8mb4" % (MariaDB.driver(), self.port))
        self.created = False

    def start(self):
        args = ["/usr/sbin/mariadbd", "--no-defaults", "--datadir=" + self.data,
                "--socket=" + self.sock, "--port=%d" % self.port,
                "--bind-address=127.0.0.1", "--pid-file=" + os.path.join(
                    self.dir, "pid"), "--skip-name-resolve",
                "--innodb-flush-log-at-trx-commit=2", "--skip-log-bin",
                "--log-error=" + os.path.join(self.dir, "log")]
        if os.getuid() == 0:
            args.append("--user=mysql")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.running = True
        if not self.wait_port(120):
            return False
        if not self.created:
            self.sql("CREATE DATABASE imgw CHARACTER SET utf8mb4 "
                     "COLLATE utf8mb4_bin")
            self.created = True
        return True

    def stop(self):
        if not self.running:
            return
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.running = False

    def sql(self, text):
        return _run(["mariadb", "--no-defaults", "-S", self.sock, "-u", "root",
                     "-N", "-B", "-e", text])
