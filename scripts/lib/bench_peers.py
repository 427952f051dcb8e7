#!/usr/bin/env python3
"""Peer brokers for `scripts/bench --peers`: the same loads as Valise's load generator, against
durable brokers started privately for each run, so that the ratios come from one run on one
machine (issue 7).

    bench_peers.py install
        apt-get installs rabbitmq-server, redis-server and nats-server when missing (without
        starting their system services; any that the install started is stopped), and pip
        installs the pinned client libraries into a venv under ~/.cache/valise-bench (or
        $VALISE_BENCH_CACHE). `run` does the same by itself when something is missing.

    bench_peers.py run --peer P --case C [--window W] [--senders N] [--recipients M]
                       [--count K] [--size 256] --work DIR [--timeout 120]
        P: rabbitmq-quorum, redis-always, redis-everysec, nats-jetstream
        C: online   recipients consuming first; N senders with W unconfirmed sends each;
                    K messages round-robin over the M recipients; rate = delivered+acked/s
                    (first send -> last ack) and send->deliver p50/p99/p999 (ms)
           offline  no consumer: store K (storeRate), then consume and ack them (drainRate)
           latency  one sender, one in flight: publish->durable confirm p50/p99/p999, rate
        Prints one JSON line: peer, case, window, senders, recipients, messages, size,
        seconds, rate, p50ms, p99ms, p999ms, storeRate, drainRate, clientCPU, notes (only the
        fields the case measures). The broker starts with an empty data directory under DIR,
        listens on 127.0.0.1 only and is stopped by pid at the end, on error, on Ctrl-C and on
        SIGTERM; a run longer than --timeout seconds fails (exit 1) with a message.

    bench_peers.py fsync-probe --work DIR [--seconds 2]
        Appends 256-byte records with fdatasync after each, for the given time, in DIR;
        prints {"fsyncPerSecond": N}.

Defaults: --senders 4 --recipients 4 --size 256 --window 64; --count 20000 (online with
W >= 64, offline), 2000 (online with W < 64), 1000 (latency).
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# Debian 12: rabbitmq-server 3.10.8, redis-server 7.0.15, nats-server 2.9.10.
APT_PACKAGES = {
    "rabbitmq-server": "/usr/lib/rabbitmq/bin/rabbitmq-server",
    "redis-server": "/usr/bin/redis-server",
    "nats-server": "/usr/sbin/nats-server",
}
SERVICES = ("rabbitmq-server", "redis-server", "nats-server")
SERVER_EXES = ("beam.smp", "epmd", "redis-server", "nats-server", "erl_child_setup")

# The client libraries and everything they pull in, pinned exactly.
# The full client libraries (aiormq, redis-py, nats-py) cost more CPU per message than the
# brokers on this machine: see peers/amqp.py, peers/clients.py and peers/natsproto.py.
REQUIREMENTS = [
    "pamqp==4.0.1",  # AMQP 0-9-1 frame codec, for peers/amqp.py
    "hiredis==3.5.0",  # RESP parser and command packer, for the Redis client
    "uvloop==0.23.0",  # event loop of every client process
]


def say(message):
    print(f"==> bench_peers: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- install

def _installed(package):
    out = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
    return out.returncode == 0 and "install ok installed" in out.stdout


def _server_pids():
    pids = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            exe = os.path.basename(os.readlink(f"/proc/{entry}/exe"))
        except OSError:
            continue
        if exe in SERVER_EXES:
            pids.add(int(entry))
    return pids


def _pid1():
    try:
        with open("/proc/1/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def _apt(args, timeout=900):
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    result = subprocess.run(sudo + ["apt-get"] + args, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, timeout=timeout)
    if result.returncode != 0:
        sys.stderr.write(result.stderr[-4000:])
        raise SystemExit(f"bench_peers: apt-get {' '.join(args)} failed")


def ensure_apt(extra=()):
    missing = [p for p in list(APT_PACKAGES) + list(extra) if not _installed(p)]
    if not missing:
        return
    say(f"installing {' '.join(missing)} (apt)")
    before = _server_pids()
    # Keep the packages' postinst from starting system services: a broker left running
    # would compete for the two cores. policy-rc.d is the Debian way to say so; put one in
    # place only if the machine has none, and take it away afterwards.
    policy = "/usr/sbin/policy-rc.d"
    ours = False
    if os.geteuid() == 0 and not os.path.exists(policy):
        with open(policy, "w") as f:
            f.write("#!/bin/sh\n# bench_peers.py: no service starts during this install\nexit 101\n")
        os.chmod(policy, 0o755)
        ours = True
    try:
        _apt(["update", "-qq"])
        _apt(["install", "-y", "-qq"] + missing)
    finally:
        if ours:
            os.unlink(policy)
    # Whatever the install started anyway (under systemd, policy-rc.d may be bypassed):
    # disable the services of the packages installed here (not of those that were already
    # there), and stop the broker processes that appeared during the install.
    services = [p for p in missing if p in SERVICES]
    if _pid1() == "systemd":
        for service in services:
            subprocess.run(["systemctl", "disable", "--now", service], capture_output=True)
    else:
        for service in services:
            if os.path.exists(f"/etc/init.d/{service}"):
                subprocess.run(["update-rc.d", service, "disable"], capture_output=True)
    for pid in sorted(_server_pids() - before):
        say(f"stopping broker process {pid} started by the package install")
        try:
            os.kill(pid, 15)
        except ProcessLookupError:
            pass
    for _ in range(100):
        if not (_server_pids() - before):
            break
        time.sleep(0.1)
    for pid in _server_pids() - before:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass


def _base_python():
    if sys.prefix != sys.base_prefix:  # already inside some venv: build ours from its base
        for name in ("python3", "python"):
            path = os.path.join(sys.base_prefix, "bin", name)
            if os.path.exists(path):
                return path
    return sys.executable


def venv_dir():
    cache = os.environ.get("VALISE_BENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "valise-bench")
    base = _base_python()
    version = subprocess.run([base, "-c", "import sys; print(sys.version)"], capture_output=True, text=True).stdout
    digest = hashlib.sha256(("\n".join(REQUIREMENTS) + version).encode()).hexdigest()[:12]
    return os.path.join(cache, f"venv-{digest}"), base


def ensure_venv():
    path, base = venv_dir()
    python = os.path.join(path, "bin", "python")
    stamp = os.path.join(path, "valise-bench-requirements.txt")
    if os.path.exists(stamp) and os.path.exists(python):
        return python
    if subprocess.run([base, "-c", "import ensurepip, venv"], capture_output=True).returncode != 0:
        ensure_apt(["python3-venv"])  # Debian's python3 needs it for `python3 -m venv`
    say(f"creating the client venv {path} (pip, pinned)")
    parent = os.path.dirname(path)
    if os.path.isdir(parent):  # venvs of earlier pins
        for old in os.listdir(parent):
            if old.startswith("venv-") and old != os.path.basename(path):
                subprocess.run(["rm", "-rf", os.path.join(parent, old)], check=True)
    subprocess.run(["rm", "-rf", path], check=True)
    subprocess.run([base, "-m", "venv", path], check=True, timeout=300)
    pip = [python, "-m", "pip", "--disable-pip-version-check", "-q", "install"]
    result = subprocess.run(pip + ["--only-binary=:all:", "--no-deps"] + REQUIREMENTS, timeout=600)
    if result.returncode != 0:  # no wheel for this Python: let pip build from source
        result = subprocess.run(pip + ["--no-deps"] + REQUIREMENTS, timeout=900)
    if result.returncode != 0:
        raise SystemExit("bench_peers: pip install of the client libraries failed")
    check = subprocess.run([python, "-c", "import pamqp, hiredis, uvloop"], capture_output=True, text=True)
    if check.returncode != 0:
        sys.stderr.write(check.stderr)
        raise SystemExit("bench_peers: the client venv does not import its libraries")
    with open(stamp, "w") as f:
        f.write("\n".join(REQUIREMENTS) + "\n")
    return python


def in_our_venv():
    venv = os.environ.get("VALISE_BENCH_VENV")
    return bool(venv) and os.path.realpath(venv) == os.path.realpath(sys.prefix)


# ---------------------------------------------------------------- fsync probe

def fsync_probe(work, seconds, size=256):
    os.makedirs(work, exist_ok=True)
    path = os.path.join(work, f"fsync-probe-{os.getpid()}.dat")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
    record = os.urandom(size)
    count = 0
    try:
        started = time.monotonic()
        end = started + seconds
        now = started
        while now < end:
            os.write(fd, record)
            os.fdatasync(fd)
            count += 1
            now = time.monotonic()
        elapsed = now - started
    finally:
        os.close(fd)
        os.unlink(path)
    return {"fsyncPerSecond": round(count / elapsed, 1)}


# ---------------------------------------------------------------- command line

def parse(argv):
    parser = argparse.ArgumentParser(prog="bench_peers.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("install", help="install the brokers (apt) and the client venv (pip)")
    run = sub.add_parser("run", help="run one peer and case, print one JSON line")
    run.add_argument("--peer", required=True,
                     choices=["rabbitmq-quorum", "redis-always", "redis-everysec", "nats-jetstream"])
    run.add_argument("--case", required=True, choices=["online", "offline", "latency"])
    run.add_argument("--window", type=int, default=64, help="unconfirmed sends in flight per sender")
    run.add_argument("--senders", type=int, default=4)
    run.add_argument("--recipients", type=int, default=4)
    run.add_argument("--count", type=int, help="messages in all")
    run.add_argument("--size", type=int, default=256, help="payload bytes")
    run.add_argument("--work", required=True, help="directory for the broker's data (emptied per run)")
    run.add_argument("--timeout", type=float, default=120.0, help="seconds for the whole run")
    run.add_argument("--prefetch", type=int, help="consumer prefetch (default: max(window, 64))")
    run.add_argument("--sender-procs", type=int, default=1, help="client processes for the senders")
    run.add_argument("--receiver-procs", type=int, default=1, help="client processes for the receivers")
    probe = sub.add_parser("fsync-probe", help="fdatasync rate of 256-byte appends")
    probe.add_argument("--work", required=True)
    probe.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args(argv)
    if args.command == "run":
        if args.count is None:
            if args.case == "latency":
                args.count = 1000
            elif args.case == "online" and args.window < 64:
                args.count = 2000
            else:
                args.count = 20000
        for name in ("window", "senders", "recipients", "count", "sender_procs", "receiver_procs"):
            if getattr(args, name) < 1:
                parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv):
    args = parse(argv)
    if args.command == "fsync-probe":
        print(json.dumps(fsync_probe(args.work, args.seconds)), flush=True)
        return 0
    if args.command == "install":
        ensure_apt()
        python = ensure_venv()
        say(f"ready: brokers installed, client venv {os.path.dirname(os.path.dirname(python))}")
        return 0
    # run: in the client venv (re-executing this script there if need be)
    if not in_our_venv():
        ensure_apt()
        python = ensure_venv()
        venv = os.path.dirname(os.path.dirname(python))
        env = dict(os.environ, VALISE_BENCH_VENV=venv)
        os.execve(python, [python, os.path.abspath(__file__)] + argv, env)
    sys.dont_write_bytecode = True  # no __pycache__ in the work tree
    sys.path.insert(0, HERE)
    from peers import load
    return load.main(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
