"""The relay benchmark, run by scripts/bench after it has built release binaries and an
organisation (scripts/lib/organisation.sh) with sender and recipient devices. Prints one
JSON line for performance_doc.py.

    bench_relay.py WORK BIN PORT --senders A,B,.. --recipients C,D,.. [--peers] [--rounds N]
                   [--postgres HOST:PORT] [--quick]

Each run starts a fresh relay (empty queue) with the bench configuration and measures one
case with `valise-load bench` (real Noise sessions, the real relay protocol, 256-byte
pre-made envelopes): online with W = 1, 64 and 256 sends in flight per sender, offline
store-then-drain, and one send in flight (the durable round trip); the online W=64 case
again with `durability: os`. With --postgres (the `postgres` case), only online W=64 and one in
flight, the relay on SQLite (durability full) and on PostgreSQL (store.kind postgres, the
cluster at HOST:PORT, which scripts/bench starts with fsync and synchronous_commit on),
each run on a fresh database copied from the template `valise` (migrated, the directory
published; scripts/bench makes it), and with --peers RabbitMQ's quorum queue beside them.
--quick divides the message counts by 20 (a smoke run of the harness, not a measurement).
With --peers, the same cases run against the peer brokers
(scripts/lib/bench_peers.py), alternating with Valise for --rounds rounds, each round
beside an fsync-rate probe: the disk here varies about tenfold within minutes, so only
figures from the same run are compared, as medians and ratios.
"""
import argparse, json, os, signal, statistics, subprocess, sys, threading, time, urllib.request

parser = argparse.ArgumentParser()
parser.add_argument("work")
parser.add_argument("bin")
parser.add_argument("port", type=int)
parser.add_argument("--senders", required=True)
parser.add_argument("--recipients", required=True)
parser.add_argument("--peers", action="store_true")
parser.add_argument("--rounds", type=int, default=3)
parser.add_argument("--size", type=int, default=256)
# The metrics case: online W=64 with the Prometheus endpoint off and on (scraped every
# second, harsher than Prometheus' usual 15 s), alternating, instead of the relay suite.
parser.add_argument("--metrics", action="store_true")
parser.add_argument("--postgres", metavar="HOST:PORT")
parser.add_argument("--quick", action="store_true")
args = parser.parse_args()

work, bin_dir, port = args.work, args.bin, args.port
senders, recipients = args.senders.split(","), args.recipients.split(",")
relay_dir = os.path.join(work, "relay")
here = os.path.dirname(os.path.abspath(__file__))
SCALE = 20 if args.quick else 1
ONLINE_COUNT = {1: 2000 // SCALE, 64: 60000 // SCALE, 256: 60000 // SCALE}
OFFLINE_COUNT = 20000 // SCALE
LATENCY_COUNT = 1000 // SCALE

from bench_settings import BENCH_ENV, start_valised  # noqa: E402


def log(message):
    print(f"bench relay: {message}", file=sys.stderr, flush=True)


def fsync_probe(seconds=1.0):
    """Appends 256-byte records with fdatasync after each, for `seconds`: fsyncs per second."""
    path = os.path.join(work, "fsync.probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    block = os.urandom(256)
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        os.write(fd, block)
        os.fdatasync(fd)
        count += 1
    elapsed = time.perf_counter() - started
    os.close(fd)
    os.unlink(path)
    return count / elapsed


def cpu_seconds(pid):
    """User + system CPU seconds of a running process, from /proc."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fresh_queue():
    for suffix in ("", "-wal", "-shm", "-reserve"):
        path = os.path.join(relay_dir, "queue.sqlite" + suffix)
        if os.path.exists(path):
            os.unlink(path)


def fresh_database():
    """A fresh copy of the template database `valise` as `valise_bench`; the path of a
    valised.yaml that stores the relay's queue there."""
    host, pg_port = args.postgres.rsplit(":", 1)
    for sql in ("DROP DATABASE IF EXISTS valise_bench", "CREATE DATABASE valise_bench TEMPLATE valise"):
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", host, "-p", pg_port, "-U", "valise",
                        "-d", "postgres", "-c", sql], check=True, capture_output=True, timeout=300)
    path = os.path.join(work, "postgres.yaml")
    with open(path, "w") as config:
        config.write(f'store:\n  kind: postgres\n  postgres:\n    hosts: ["{args.postgres}"]\n'
                     "    database: valise_bench\n    user: valise\n    tls: disable\n    pool: 8\n")
    return path


def start_relay(durability, metrics=False, postgres=False):
    fresh_queue()
    out_path = os.path.join(work, "relay.out")
    env = dict(os.environ, **BENCH_ENV, VALISED_DURABILITY=durability)
    if metrics:
        env["VALISED_METRICS_LISTEN"] = "127.0.0.1:0"
    config = ["--config", fresh_database()] if postgres else []
    return start_valised(
        [os.path.join(bin_dir, "valised"), "run", "--dir", relay_dir, "--listen", f"127.0.0.1:{port}", *config],
        out_path, os.path.join(work, "relay.log"), env=env, what="bench relay")


class Scraper:
    """Scrapes the relay's /metrics once a second while a run lasts; counts the scrapes."""

    def __init__(self):
        line = next(l for l in open(os.path.join(work, "relay.out")) if l.startswith("valised metrics on "))
        self.url = "http://" + line.split(" on ", 1)[1].strip() + "/metrics"
        self.stopped, self.scrapes, self.bytes = threading.Event(), 0, 0
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopped.wait(1.0):
            with urllib.request.urlopen(self.url, timeout=10) as answer:
                self.bytes = len(answer.read())
            self.scrapes += 1

    def stop(self):
        self.stopped.set()
        self.thread.join(timeout=15)


def stop_relay(process):
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
        raise SystemExit("bench relay: the relay did not stop within 60 s of SIGTERM")


def valise(case, window, durability="full", metrics=False, postgres=False):
    """One `valise-load bench` run against a fresh relay; adds the relay's CPU per message."""
    count = {"online": ONLINE_COUNT.get(window, 40000), "offline": OFFLINE_COUNT, "latency": LATENCY_COUNT}[case]
    if args.metrics:
        count *= 5  # long enough (about ten seconds here) for several scrapes per run
    command = [os.path.join(bin_dir, "valise-load"), "bench", "--case", case, "--window", str(window),
               "--count", str(count), "--size", str(args.size), "--timeout", "300"]
    for name in senders:
        command += ["--sender", os.path.join(work, name)]
    if case != "latency":
        for name in recipients:
            command += ["--recipient", os.path.join(work, name)]
    relay = start_relay(durability, metrics, postgres)
    scraper = Scraper() if metrics else None
    try:
        before = cpu_seconds(relay.pid)
        started = time.monotonic()
        usage_before = os.times()
        result = subprocess.run(command, capture_output=True, text=True, timeout=600)
        usage_after = os.times()
        wall = time.monotonic() - started
        relay_cpu = cpu_seconds(relay.pid) - before
    finally:
        if scraper:
            scraper.stop()
        stop_relay(relay)
    if result.returncode != 0:
        raise SystemExit(f"bench relay: valise-load bench --case {case} failed: {result.stderr[-2000:]}")
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    load_cpu = (usage_after.children_user - usage_before.children_user) + (usage_after.children_system - usage_before.children_system)
    figures["relayCPUPerMessageUs"] = relay_cpu / count * 1e6
    figures["relayCPU"] = relay_cpu / wall
    figures["clientCPU"] = load_cpu / wall
    if scraper:
        figures["scrapes"], figures["scrapeBytes"] = scraper.scrapes, scraper.bytes
    return figures


def peer(name, case, window):
    # Fast brokers finish 60,000 in about a second; more messages give them a steadier window.
    count = {"online": 80000 if window > 1 else ONLINE_COUNT[1], "offline": OFFLINE_COUNT, "latency": LATENCY_COUNT}[case]
    command = [sys.executable, os.path.join(here, "bench_peers.py"), "run", "--peer", name, "--case", case,
               "--window", str(1 if case == "latency" else window), "--senders", str(1 if case == "latency" else len(senders)),
               "--recipients", str(len(recipients)), "--count", str(count), "--size", str(args.size),
               "--work", os.path.join(work, "peers")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        log(f"{name} {case} W={window} failed: {result.stderr.strip()[-600:]}")
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])


# (system, case, window): what runs in each round. Valise first, then each peer, so that
# every system sees the disk in the same minutes.
VALISE_RUNS = [("valise", "online", 1), ("valise", "online", 64), ("valise", "online", 256),
               ("valise", "offline", 64), ("valise", "latency", 1), ("valise-os", "online", 64)]
METRICS_RUNS = [("valise", "online", 64), ("valise-metrics", "online", 64)]
POSTGRES_RUNS = [("valise", "online", 64), ("valise-postgres", "online", 64), ("valise", "latency", 1),
                 ("valise-postgres", "latency", 1)]
PEER_RUNS = [("rabbitmq-quorum", "online", 64), ("rabbitmq-quorum", "offline", 64), ("rabbitmq-quorum", "latency", 1),
             ("redis-always", "online", 64), ("redis-always", "latency", 1),
             ("redis-everysec", "online", 64), ("nats-jetstream", "online", 64)]

runs = {}
fsyncs = []
for round_number in range(1, args.rounds + 1):
    fsyncs.append(fsync_probe())
    log(f"round {round_number}/{args.rounds}: fsync probe {fsyncs[-1]:,.0f}/s")
    if args.postgres:
        plan = POSTGRES_RUNS + (PEER_RUNS[:1] if args.peers else [])  # RabbitMQ's quorum queue, online W=64
    else:
        plan = METRICS_RUNS if args.metrics else VALISE_RUNS + (PEER_RUNS if args.peers else [])
    for system, case, window in plan:
        key = f"{system}|{case}|{window}"
        if system == "valise":
            figures = valise(case, window)
        elif system == "valise-os":
            figures = valise(case, window, durability="os")
        elif system == "valise-metrics":
            figures = valise(case, window, metrics=True)
        elif system == "valise-postgres":
            figures = valise(case, window, postgres=True)
        else:
            figures = peer(system, case, window)
        if figures is None:
            continue
        runs.setdefault(key, []).append(figures)
        shown = figures.get("rate") or figures.get("storeRate") or 0
        log(f"  {system} {case} W={window}: {shown:,.0f}/s p50 {figures.get('p50ms', 0):.2f} ms")
    fsyncs.append(fsync_probe())


def median(values):
    values = [value for value in values if value is not None]
    return statistics.median(values) if values else None


summary = {}
for key, figures in runs.items():
    fields = sorted({field for run in figures for field, value in run.items() if isinstance(value, (int, float))})
    summary[key] = {field: median([run.get(field) for run in figures]) for field in fields}
    summary[key]["runs"] = len(figures)
    notes = [run.get("notes") for run in figures if run.get("notes")]
    if notes:
        summary[key]["notes"] = notes[0]

print(json.dumps({"case": "metrics" if args.metrics else "postgres" if args.postgres else "relay", "rounds": args.rounds, "peers": args.peers, "quick": args.quick, "size": args.size,
                  "senders": len(senders), "recipients": len(recipients),
                  "fsyncPerSecond": median(fsyncs), "fsyncRuns": fsyncs, "results": summary}))
