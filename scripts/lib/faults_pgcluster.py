"""PostgreSQL for scripts/faults' postgres rows: throwaway clusters started with
scripts/lib/postgres.sh (127.0.0.1, a free port, run as the unprivileged valise-pg user,
fsync on: durability is what the rows check), a synchronous standby made with
pg_basebackup, and a TCP proxy that cuts one relay node off the database.

Every cluster lives under one directory of /tmp of its own (the fault's work directory is
private to root, and PostgreSQL runs as another user); `Clusters.close` stops them all
(immediate) and removes it. Every wait is bounded."""
import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from faults_common import ROOT, free_port

PREAMBLE = "source scripts/lib/prerequisites.sh; source scripts/lib/postgres.sh; "


def _bash(script, *args, env=None, timeout=300):
    return subprocess.run(["bash", "-c", PREAMBLE + script, "_", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env or os.environ)


def _tail(result):
    return (result.stderr.strip() or result.stdout.strip())[-300:]


class Unavailable(Exception):
    """PostgreSQL cannot be installed or started here: the rows are skipped, not failed."""


_unavailable = []


def unavailable():
    """None when PostgreSQL is installed (or installs) here; else why the rows are skipped.
    Asked once per run."""
    if not _unavailable:
        _unavailable.append(_install())
    return _unavailable[0]


def _install():
    try:
        result = _bash("valise_postgres_install >&2 && valise_postgres_bin", timeout=900)
    except subprocess.TimeoutExpired:
        return "installing PostgreSQL took more than 15 minutes"
    if result.returncode != 0:
        return f"PostgreSQL could not be installed: {_tail(result)}"
    return None


class Cluster:
    """One PostgreSQL server: its directory (data/, server.log) and port."""

    def __init__(self, directory, name):
        self.dir, self.name = os.path.join(directory, name), name
        self.port, self.conf = None, ()

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self, *conf):
        """initdb (first time) and start; the same port again on a restart."""
        self.conf = conf or self.conf
        env = dict(os.environ, VALISE_PG_PORT_WANTED=str(self.port)) if self.port else None
        result = _bash('valise_postgres_start "$@" && echo "$VALISE_PG_PORT"', self.dir, *self.conf, env=env)
        if result.returncode != 0:
            raise RuntimeError(f"PostgreSQL {self.name} did not start: {_tail(result)}")
        self.port = int(result.stdout.split()[-1])
        return self

    def stop(self, mode="fast"):
        """pg_ctl stop; `immediate` is a crash as far as the data is concerned."""
        _bash('valise_postgres_stop "$@"', self.dir, mode, timeout=120)

    def pid(self):
        try:
            return int(open(os.path.join(self.dir, "data", "postmaster.pid")).readline())
        except (OSError, ValueError):
            return None

    def kill(self):
        """SIGKILL to the postmaster (its backends notice and exit); waits until the port refuses."""
        pid = self.pid()
        if pid is None:
            raise RuntimeError(f"PostgreSQL {self.name} has no postmaster.pid")
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (_alive(pid) or self.accepting()):
            time.sleep(0.05)

    def accepting(self):
        import socket
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def psql(self, sql, database="postgres", check=True):
        """SQL as the superuser `valise`; the output unaligned, tuples only."""
        result = _bash('valise_postgres_as psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U valise -d "$2" -c "$3"',
                       str(self.port), database, sql, timeout=120)
        if check and result.returncode != 0:
            raise RuntimeError(f"psql on {self.name} failed: {_tail(result)}")
        return result.stdout.strip()

    def standby_of(self, primary):
        """A streaming standby of PRIMARY (pg_basebackup -R), started on a port of its own.
        Its configuration is written whole by postgres.sh, so primary_conninfo is given again
        here, and synchronous_standby_names is not copied: promoted, it commits alone."""
        script = ('bin=$(valise_postgres_bin); mkdir -p "$1"; chmod 0755 "$1"; '
                  '[ "$(id -u)" -eq 0 ] && chown "$VALISE_PG_OWNER" "$1"; '
                  'valise_postgres_as "$bin/pg_basebackup" -h 127.0.0.1 -p "$2" -U valise -D "$1/data" -R -X stream -c fast')
        result = _bash(script, self.dir, str(primary.port), timeout=300)
        if result.returncode != 0:
            raise RuntimeError(f"pg_basebackup for {self.name} failed: {_tail(result)}")
        conninfo = f"host=127.0.0.1 port={primary.port} user=valise application_name={self.name}"
        return self.start(f"primary_conninfo = '{conninfo}'", "hot_standby = on")

    def promote(self):
        result = _bash('valise_postgres_as "$(valise_postgres_bin)/pg_ctl" -D "$1/data" -w -t 60 promote', self.dir, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl promote on {self.name} failed: {_tail(result)}")

    def in_recovery(self):
        return self.psql("SELECT pg_is_in_recovery()") == "t"


def _alive(pid):
    """Whether PID runs (a zombie left to a container's init that does not reap counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Clusters:
    """The clusters of one row, under one directory PostgreSQL's user can reach."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="valise-faults-pg-")
        os.chmod(self.root, 0o755)
        self.all = []

    def new(self, name):
        cluster = Cluster(self.root, name)
        self.all.append(cluster)
        return cluster

    def primary(self, name="pg"):
        """A started cluster with a database `valise` (owned by the superuser `valise`)."""
        try:
            cluster = self.new(name).start()
        except RuntimeError as error:
            raise Unavailable(str(error)) from error
        cluster.psql("CREATE DATABASE valise")
        return cluster

    def synchronous_pair(self):
        """A primary and a synchronous standby (synchronous_commit on, as postgres.sh sets):
        a commit returns once the standby has flushed it. The database exists before the
        standby is made (with no standby, a synchronous commit would wait for ever)."""
        primary = self.primary("primary")
        standby = self.new("standby").standby_of(primary)
        primary.psql("ALTER SYSTEM SET synchronous_standby_names = '*'")
        primary.psql("SELECT pg_reload_conf()")
        deadline = time.monotonic() + 60
        while primary.psql("SELECT string_agg(sync_state, ',') FROM pg_stat_replication") != "sync":
            if time.monotonic() > deadline:
                raise RuntimeError("the standby did not become synchronous within 60 s")
            time.sleep(0.2)
        return primary, standby

    def close(self):
        for cluster in self.all:
            if cluster.port is not None:
                cluster.stop("immediate")
        if os.environ.get("KEEP"):
            print(f"faults: kept the PostgreSQL clusters in {self.root}", flush=True)
        else:
            shutil.rmtree(self.root, ignore_errors=True)


class CutProxy:
    """A plain TCP proxy on 127.0.0.1 between one relay node and PostgreSQL. `cut()` aborts
    every connection through it and refuses new ones (the node is partitioned from the
    database); `heal()` listens again on the same port."""

    def __init__(self, target_port):
        self.port, self.target = free_port(), target_port
        self.loop = asyncio.new_event_loop()
        self.server, self.transports = None, set()
        self.counts = {"connections": 0, "cut": 0}
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self):
        self.thread.start()
        self.heal()
        return self

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=10)

    def heal(self):
        self._call(self._listen())

    def cut(self):
        self._call(self._cut())

    def stop(self):
        try:
            self._call(self._cut())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)

    async def _listen(self):
        if self.server is None:
            self.server = await asyncio.start_server(self._connection, "127.0.0.1", self.port, reuse_address=True)

    async def _cut(self):
        if self.server is not None:
            self.server.close()
            self.server = None
        for transport in list(self.transports):
            transport.abort()
            self.counts["cut"] += 1
        self.transports.clear()

    async def _connection(self, node_reader, node_writer):
        self.counts["connections"] += 1
        try:
            db_reader, db_writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.target), 5)
        except (OSError, asyncio.TimeoutError):
            node_writer.transport.abort()
            return
        pair = {node_writer.transport, db_writer.transport}
        self.transports |= pair

        async def pipe(reader, writer):
            try:
                while chunk := await reader.read(65536):
                    writer.write(chunk)
                    await writer.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                writer.transport.abort()

        await asyncio.gather(pipe(node_reader, db_writer), pipe(db_reader, node_writer))
        self.transports -= pair
