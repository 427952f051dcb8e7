"""Private broker instances for the peer benchmarks: each one starts fresh in an empty
directory under the run's work directory, listens on 127.0.0.1 only (on a free port), runs in
its own session (so a Ctrl-C at the terminal reaches the benchmark, which then stops the
broker, and not the broker directly) and is stopped by its process id.

Durability of each, as configured here:
  rabbitmq-quorum  quorum queues; the Ra write-ahead log is fdatasync'ed before a publisher
                   confirm (RabbitMQ's documented quorum-queue guarantee).
  redis-always     appendonly yes, appendfsync always: the AOF is fsync'ed before replies
                   are written (one fsync per event-loop turn, a group commit); no RDB.
  redis-everysec   appendonly yes, appendfsync everysec: replies before the fsync, which runs
                   once a second in a background thread; a power cut loses up to ~1-2 s.
  nats-jetstream   file store. nats-server 2.9.10 has no sync setting (the jetstream
                   `sync_interval` option came with 2.10 and 2.9.10 rejects it as an unknown
                   field): a PubAck means the message was written to the OS, and the store
                   is fsync'ed every 2 minutes. It survives a process crash, not a power cut.
"""
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time


class BrokerError(Exception):
    pass


class StartupExit(BrokerError):
    """The broker process exited while starting (a port taken meanwhile, most often)."""


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
            return low, high
    except (OSError, ValueError):
        return 32768, 60999


def free_port():
    """A port free on 127.0.0.1 now, outside the kernel's ephemeral range, so that outgoing
    connections (ours or another program's) do not take it before the broker binds it."""
    low, high = _ephemeral_range()
    candidates = [p for p in range(10000, 65000) if not low <= p <= high]
    for _ in range(200):
        port = secrets.choice(candidates)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_cpu_seconds(pid):
    """utime + stime of one process (all its threads), from /proc; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def machine_busy_seconds():
    """CPU seconds all processes on the machine have used (every core), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    busy = sum(fields[:3]) + sum(fields[5:8])
    return busy / os.sysconf("SC_CLK_TCK")


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as gone
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _stop_pid(pid, popen=None, grace=15.0):
    """SIGTERM, wait up to `grace` seconds, then SIGKILL. Only ever a pid we started."""
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if popen is not None and popen.poll() is not None:
            return
        if popen is None and not _alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if popen is not None:
        try:
            popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def _listens(pid, port):
    """Whether process `pid` holds the socket listening on 127.0.0.1:`port` (so that a
    connection is known to reach our broker, not another program that took the port)."""
    inodes = set()
    try:
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[1] == f"0100007F:{port:04X}" and fields[3] == "0A":
                    inodes.add(f"socket:[{fields[9]}]")
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                    return True
            except OSError:
                continue
    except OSError:
        return False
    return False


def _wait_tcp(port, deadline, proc, what, log, owner=None):
    while True:
        if proc.poll() is not None:
            raise StartupExit(f"{what} exited during startup (status {proc.returncode}); see {log}")
        if _listens(owner or proc.pid, port):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                pass
        if time.monotonic() > deadline:
            raise BrokerError(f"timed out: {what} did not listen on 127.0.0.1:{port} in time; see {log}")
        time.sleep(0.05)


class Broker:
    name = ""
    durability = ""
    notes = ""

    def __init__(self, work):
        self.work = os.path.join(work, self.name)
        if os.path.exists(self.work):
            shutil.rmtree(self.work)
        os.makedirs(self.work)
        self.proc = None
        self.port = None
        self.startup_seconds = None

    def start(self, deadline, attempts=3):
        """Starts the broker; if it exits while starting (a port taken between our check and
        its bind), starts it again on other ports, afresh, while time remains."""
        for attempt in range(attempts):
            try:
                self._start(deadline)
                return
            except StartupExit:
                self.stop()
                if attempt == attempts - 1 or time.monotonic() > deadline:
                    raise
                kept = os.path.join(os.path.dirname(self.work), f"{self.name}.failed-start")
                shutil.rmtree(kept, ignore_errors=True)
                os.rename(self.work, kept)  # its logs, for a look afterwards
                os.makedirs(self.work)

    # the process whose CPU time is the broker's
    def server_pid(self):
        return self.proc.pid if self.proc else None

    def _spawn(self, argv, env=None, log_name="server.log"):
        log_path = os.path.join(self.work, log_name)
        log = open(log_path, "ab")
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=env, cwd=self.work, start_new_session=True)
        log.close()
        return proc, log_path

    def stop(self):
        if self.proc is not None:
            _stop_pid(self.proc.pid, self.proc)
            self.proc = None

    def client_info(self):
        return {"port": self.port}


class Redis(Broker):
    def __init__(self, work, fsync):
        self.fsync = fsync
        self.name = f"redis-{fsync}"
        if fsync == "always":
            self.durability = "AOF appendfsync always (fsync before the reply, group commit per event-loop turn); no RDB"
        else:
            self.durability = "AOF appendfsync everysec (reply before fsync; fsync once a second in the background); no RDB"
        super().__init__(work)

    def _start(self, deadline):
        self.port = free_port()
        started = time.monotonic()
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--protected-mode", "yes",
                "--dir", self.work, "--appendonly", "yes", "--appendfsync", self.fsync,
                "--save", "", "--daemonize", "no", "--logfile", os.path.join(self.work, "redis.log"),
                "--unixsocket", "", "--databases", "1"]
        self.proc, log = self._spawn(argv)
        _wait_tcp(self.port, deadline, self.proc, "redis-server", log)
        self.startup_seconds = time.monotonic() - started


class Nats(Broker):
    name = "nats-jetstream"
    durability = "JetStream file store, WorkQueue retention (see the fsync note)"

    def _start(self, deadline):
        self.port = free_port()
        conf = os.path.join(self.work, "nats.conf")
        with open(conf, "w") as f:
            f.write(f'listen: "127.0.0.1:{self.port}"\n'
                    f'max_payload: 1048576\n'
                    f'jetstream {{\n  store_dir: "{os.path.join(self.work, "store")}"\n}}\n')
        started = time.monotonic()
        self.proc, log = self._spawn(["nats-server", "-c", conf])
        _wait_tcp(self.port, deadline, self.proc, "nats-server", log)
        self.startup_seconds = time.monotonic() - started


class RabbitMQ(Broker):
    """A private node: own node name, ports, Erlang cookie (in a private HOME) and epmd (on a
    free port, started here so that it is ours to stop), no plugins, the host's
    /etc/rabbitmq configuration ignored."""
    name = "rabbitmq-quorum"
    durability = "quorum queues: Ra WAL fdatasync before a publisher confirm; persistent messages"
    SCRIPT = "/usr/lib/rabbitmq/bin/rabbitmq-server"

    def __init__(self, work):
        super().__init__(work)
        self.epmd = None
        self.beam_pid = None

    def server_pid(self):
        return self.beam_pid

    def _start(self, deadline):
        self.beam_pid = None
        w = self.work
        home = os.path.join(w, "home")
        os.makedirs(home)
        cookie = os.path.join(home, ".erlang.cookie")
        with open(cookie, "w") as f:
            f.write(secrets.token_hex(20).upper())
        os.chmod(cookie, 0o400)
        with open(os.path.join(w, "enabled_plugins"), "w") as f:
            f.write("[].\n")
        open(os.path.join(w, "rabbitmq-env.conf"), "w").close()
        self.port = free_port()
        dist_port, epmd_port = free_port(), free_port()
        with open(os.path.join(w, "rabbitmq.conf"), "w") as f:
            f.write(f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
                    "loopback_users.guest = true\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        env.update(HOME=home, ERL_EPMD_PORT=str(epmd_port), ERL_EPMD_ADDRESS="127.0.0.1")
        started = time.monotonic()
        self.epmd, epmd_log = self._spawn(["epmd", "-port", str(epmd_port), "-address", "127.0.0.1"],
                                          env=env, log_name="epmd.log")
        _wait_tcp(epmd_port, deadline, self.epmd, "epmd", epmd_log)
        pid_file = os.path.join(w, "rabbit.pid")
        env.update(
            RABBITMQ_NODENAME=f"valisebench{os.getpid()}@localhost",
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(dist_port),
            RABBITMQ_MNESIA_BASE=os.path.join(w, "mnesia"),
            RABBITMQ_LOG_BASE=os.path.join(w, "log"),
            RABBITMQ_CONFIG_FILE=os.path.join(w, "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=os.path.join(w, "advanced.config"),
            RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(w, "enabled_plugins"),
            RABBITMQ_CONF_ENV_FILE=os.path.join(w, "rabbitmq-env.conf"),
            RABBITMQ_PID_FILE=pid_file,
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
        )
        # The script stays as the parent of the Erlang VM and turns SIGTERM into a clean stop.
        self.proc, log = self._spawn([self.SCRIPT], env=env)
        while self.beam_pid is None:
            try:
                with open(pid_file) as f:
                    self.beam_pid = int(f.read().strip() or "0") or None
            except (OSError, ValueError):
                pass
            if self.proc.poll() is not None:
                raise StartupExit(f"rabbitmq-server exited during startup; see {log} and {w}/log")
            if time.monotonic() > deadline:
                raise BrokerError(f"timed out: rabbitmq-server wrote no pid file in time; see {log}")
            time.sleep(0.05)
        _wait_tcp(self.port, deadline, self.proc, "rabbitmq-server", log, owner=self.beam_pid)
        self.startup_seconds = time.monotonic() - started

    def stop(self):
        beam = self.beam_pid
        if self.proc is not None:
            _stop_pid(self.proc.pid, self.proc, grace=20.0)
            self.proc = None
        if beam is not None and _alive(beam):
            _stop_pid(beam, None, grace=5.0)
        if self.epmd is not None:
            _stop_pid(self.epmd.pid, self.epmd, grace=5.0)
            self.epmd = None


def make(peer, work):
    if peer == "rabbitmq-quorum":
        return RabbitMQ(work)
    if peer == "redis-always":
        return Redis(work, "always")
    if peer == "redis-everysec":
        return Redis(work, "everysec")
    if peer == "nats-jetstream":
        return Nats(work)
    raise ValueError(f"unknown peer {peer}")


PEERS = ("rabbitmq-quorum", "redis-always", "redis-everysec", "nats-jetstream")
