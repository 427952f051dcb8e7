"""The queue benchmark, run by scripts/bench after it has built release binaries and an
organisation (scripts/lib/organisation.sh). Prints one JSON line for performance_doc.py.

    bench_queue.py WORK BIN PORT SENDER RECIPIENT

Measures, in one run on one machine:
  - the disk's floor: 512-byte write + fdatasync, one at a time;
  - raw SQLite (WAL, synchronous=FULL), one insert per transaction: what a store without
    group commit pays per message;
  - Valise: durable send -> Accepted through a real valised, with 1 and with 64 concurrent
    senders (connections), throughput and latency p50/p99, and fsyncs per message (the
    relay's fsync/fdatasync calls counted by strace, and its group-commit counters);
  - Redis with appendonly yes / appendfsync always (a broker that fsyncs before it
    answers), LPUSH of the same size with 1 and 64 clients (redis-benchmark);
  - relay startup with one million queued envelopes.
"""
import csv, io, json, os, re, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

from bench_settings import start_valised

work, bin_dir, port, sender, recipient = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
SIZE = 512
ONE = int(os.environ.get("BENCH_QUEUE_ONE", "3000"))
MANY = int(os.environ.get("BENCH_QUEUE_MANY", "30000"))
STARTUP_ENVELOPES = int(os.environ.get("BENCH_QUEUE_STARTUP", "1000000"))
relay_dir = os.path.join(work, "relay")
strace = shutil.which("strace")
env = dict(os.environ, VALISED_QUEUE_MAX_MESSAGES_PER_MAILBOX="100000000",
           VALISED_QUEUE_MAX_BYTES_PER_MAILBOX=str(1 << 40),
           # One sender device sends as fast as it can (the relay's per-device rate lifted).
           VALISED_LIMITS_SENDS_PER_SECOND_PER_DEVICE="10000000", VALISED_LIMITS_SEND_BURST_PER_DEVICE="10000000")


def log(message):
    print(f"bench queue: {message}", file=sys.stderr, flush=True)


def fsync_floor(count=2000):
    path = os.path.join(work, "fsync.test")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    block = os.urandom(SIZE)
    started = time.perf_counter()
    for _ in range(count):
        os.write(fd, block)
        os.fdatasync(fd)
    seconds = time.perf_counter() - started
    os.close(fd)
    os.unlink(path)
    return count / seconds


def raw_sqlite(count=ONE):
    import sqlite3
    path = os.path.join(work, "raw.sqlite")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE envelope (id BLOB PRIMARY KEY, mailbox TEXT, body BLOB)")
    latencies = []
    started = time.perf_counter()
    for _ in range(count):
        begin = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO envelope VALUES (?, ?, ?)", (os.urandom(16), recipient, os.urandom(SIZE)))
        db.execute("COMMIT")
        latencies.append((time.perf_counter() - begin) * 1000)
    seconds = time.perf_counter() - started
    db.close()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.unlink(path + suffix)
    latencies.sort()
    return {"perSecond": count / seconds, "p50ms": latencies[len(latencies) // 2], "p99ms": latencies[int(len(latencies) * 0.99)]}


def start_relay(count_fsyncs):
    command = [os.path.join(bin_dir, "valised"), "run", "--dir", relay_dir, "--listen", f"127.0.0.1:{port}"]
    trace = os.path.join(work, "strace.txt")
    if count_fsyncs and strace:
        command = [strace, "-f", "--seccomp-bpf", "-c", "-e", "trace=fsync,fdatasync", "-o", trace] + command
    started = time.perf_counter()
    process = start_valised(command, os.path.join(work, "relay.out"), os.path.join(work, "relay.log"), env=env, what="bench queue")
    return process, time.perf_counter() - started


def stop_server(process):
    # Under strace, the process started is strace: valised is its child, and strace writes
    # its counts once valised has exited.
    try:
        children = [int(pid) for pid in open(f"/proc/{process.pid}/task/{process.pid}/children").read().split()]
    except OSError:
        children = []
    is_strace = strace is not None and os.path.basename(os.readlink(f"/proc/{process.pid}/exe")).startswith("strace")
    for pid in (children if is_strace and children else [process.pid]):
        os.kill(pid, signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        for pid in children + [process.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        process.wait(timeout=10)
        raise SystemExit("bench queue: a server did not stop within 60 s of SIGTERM")


def fresh_queue():
    for suffix in ("", "-wal", "-shm"):
        path = os.path.join(relay_dir, "queue.sqlite" + suffix)
        if os.path.exists(path):
            os.unlink(path)


def last_statistics():
    lines = [line for line in open(os.path.join(work, "relay.log")) if "queue statistics" in line]
    if not lines:
        return {}
    return {key: int(value) for key, value in re.findall(r"(commits\.[a-z-]+)=(\d+)", lines[-1])}


def fsync_calls():
    path = os.path.join(work, "strace.txt")
    if not os.path.exists(path):
        return None
    calls = 0
    for line in open(path):
        fields = line.split()
        if fields and fields[-1] in ("fsync", "fdatasync"):
            calls += int(fields[3])
    os.unlink(path)
    return calls


def valise_send(count, connections, run):
    fresh_queue()
    relay, _ = start_relay(count_fsyncs=True)
    try:
        result = subprocess.run(
            [os.path.join(bin_dir, "valise-load"), "send", "--home", os.path.join(work, sender), "--to", recipient,
             "--count", str(count), "--run", run, "--connections", str(connections), "--size", str(SIZE),
             "--timeout", "600"], capture_output=True, text=True, env=env, timeout=900)
    finally:
        stop_server(relay)
    if result.returncode != 0:
        raise SystemExit(f"bench queue: valise-load failed: {result.stderr[-2000:]}")
    load = json.loads(result.stdout.strip().splitlines()[-1])
    counters = last_statistics()
    fsyncs = fsync_calls()
    load["commits"] = counters.get("commits.accept")
    load["commitsPerMessage"] = counters.get("commits.accept", 0) / max(1, load["accepted"])
    load["fsyncsPerMessage"] = None if fsyncs is None else fsyncs / max(1, load["accepted"])
    return load


def redis(count, clients):
    server = shutil.which("redis-server")
    benchmark = shutil.which("redis-benchmark")
    if not server or not benchmark:
        return None
    directory = tempfile.mkdtemp(dir=work)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        redis_port = s.getsockname()[1]
    trace = os.path.join(work, "strace.txt")
    command = [server, "--port", str(redis_port), "--bind", "127.0.0.1", "--dir", directory, "--appendonly", "yes",
               "--appendfsync", "always", "--save", "", "--daemonize", "no"]
    if strace:
        command = [strace, "-f", "--seccomp-bpf", "-c", "-e", "trace=fsync,fdatasync", "-o", trace] + command
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(400):
            try:
                socket.create_connection(("127.0.0.1", redis_port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.025)
        result = subprocess.run([benchmark, "-p", str(redis_port), "-t", "lpush", "-n", str(count), "-c", str(clients),
                                 "-d", str(SIZE), "-P", "1", "--csv"], capture_output=True, text=True, timeout=900)
    finally:
        stop_server(process)
        shutil.rmtree(directory, ignore_errors=True)
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    if not rows:
        return None
    row = rows[0]
    fsyncs = fsync_calls()
    return {"perSecond": float(row["rps"]), "p50ms": float(row["p50_latency_ms"]), "p99ms": float(row["p99_latency_ms"]),
            "fsyncsPerMessage": None if fsyncs is None else fsyncs / count}


def startup(envelopes, repetitions=3):
    fresh_queue()
    members = [recipient, sender]
    started = time.perf_counter()
    subprocess.run([os.path.join(bin_dir, "valise-bench"), "fill-queue", "--store", os.path.join(relay_dir, "queue.sqlite"),
                    "--mailboxes", ",".join(members), "--count", str(envelopes), "--size", "256"],
                   check=True, stdout=subprocess.DEVNULL, timeout=1800)
    fill_seconds = time.perf_counter() - started
    size = sum(os.path.getsize(os.path.join(relay_dir, name)) for name in os.listdir(relay_dir) if name.startswith("queue.sqlite"))
    times = []
    opened = ""
    for _ in range(repetitions):
        relay, seconds = start_relay(count_fsyncs=False)
        stop_server(relay)
        times.append(seconds)
    for line in open(os.path.join(work, "relay.log")):
        if "store opened" in line:
            opened = line.strip()
    held = re.search(r"queue\.envelopes=(\d+)", opened)
    return {"envelopes": envelopes, "held": int(held.group(1)) if held else None, "fileBytes": size,
            "fillSeconds": fill_seconds, "runs": times, "medianSeconds": statistics.median(times)}


log("disk floor (write + fdatasync)")
floor = fsync_floor()
log("raw SQLite, one insert per transaction")
sqlite_one = raw_sqlite()
log(f"valise, 1 sender, {ONE} envelopes")
valise_one = valise_send(ONE, 1, "bench-one")
log(f"valise, 64 senders, {MANY} envelopes")
valise_many = valise_send(MANY, 64, "bench-many")
log("redis (appendfsync always), 1 and 64 clients")
redis_one = redis(ONE, 1)
redis_many = redis(MANY, 64)
log(f"startup with {STARTUP_ENVELOPES:,} queued envelopes")
start = startup(STARTUP_ENVELOPES)
print(json.dumps({"case": "queue", "size": SIZE, "fsyncFloorPerSecond": floor, "rawSQLite": sqlite_one,
                  "valiseOne": valise_one, "valiseMany": valise_many, "redisOne": redis_one, "redisMany": redis_many,
                  "startup": start}))
