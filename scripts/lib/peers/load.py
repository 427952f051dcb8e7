"""The load: a coordinator (this process) that starts the broker, declares the queues and runs
sender and receiver client processes, then prints one JSON line.

Client processes. Senders run in one process and receivers in another (--sender-procs and
--receiver-procs split them further), so that sending and receiving each can have a core and
do not queue behind each other in one event loop; more processes than that only add
scheduling on two cores that the broker needs too. With the lean clients (peers/amqp.py,
natsproto.py and the RESP client) a process spends about 5-10 us of CPU per message, so one
sender process would saturate only past ~100,000 messages/s, well above what any peer does
here. `clientCPU` (user+sys seconds of all client processes over the measured wall time, in
cores) and the per-process figures in `notes` show when a client process comes near one core
anyway; `notes` also gives the broker's CPU and what other processes on the machine used
meanwhile (a build running beside the benchmark shows there).

Every client process uses uvloop. Timestamps are CLOCK_MONOTONIC (time.monotonic_ns), one
clock for every process on the machine, so a receiver computes send->deliver latency from the
8-byte send time embedded at the start of each payload (the rest is random bytes).
"""
import array
import asyncio
import json
import multiprocessing
import os
import queue as queue_module
import signal
import time
import traceback

from . import brokers, clients


class RunError(Exception):
    pass


_T0 = time.monotonic()
MIN_CPU_WINDOW = 0.5  # seconds: below this, /proc's 10 ms ticks make CPU shares meaningless


def trace(message):
    """Progress with elapsed time on stderr, when VALISE_BENCH_TRACE is set."""
    if os.environ.get("VALISE_BENCH_TRACE"):
        print(f"[{time.monotonic() - _T0:7.2f}s] {message}", file=os.sys.stderr, flush=True)


def percentile(sorted_values, q):
    """The exact q-quantile of a sorted list (nearest rank), as HdrHistogram reports it."""
    if not sorted_values:
        return None
    rank = max(1, -(-int(q * 1_000_000) * len(sorted_values) // 1_000_000))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def plan(messages, senders, recipients):
    """Sender i sends counts[i] messages; its s-th goes to recipient (i + s) % recipients,
    so every sender spreads round-robin over all recipients. Returns (counts, expected)."""
    counts = [messages // senders + (1 if i < messages % senders else 0) for i in range(senders)]
    expected = [0] * recipients
    for i, count in enumerate(counts):
        full, rest = divmod(count, recipients)
        for r in range(recipients):
            expected[r] += full
        for s in range(rest):
            expected[(i + s) % recipients] += 1
    return counts, expected


def split(items, parts):
    parts = max(1, min(parts, len(items)))
    return [items[p::parts] for p in range(parts)]


# ---------------------------------------------------------------- client processes

async def _wait_event(event, deadline):
    loop = asyncio.get_running_loop()
    ok = await loop.run_in_executor(None, event.wait, max(0.0, deadline - time.monotonic()))
    if not ok:
        raise RunError("timed out waiting for the start signal")


async def _senders(peer, info, ids, p, go, results, index):
    family = clients.family(peer)
    window, size, counts = p["window"], p["size"], p["counts"]
    conns = []
    for _ in ids:
        conn = clients.SENDERS[family]()
        await conn.connect(info, window)
        conns.append(conn)
    results.put(("ready", "senders", index, None))
    await _wait_event(go, p["deadline"])
    cpu0, t_go = time.process_time(), time.monotonic_ns()
    random_block = os.urandom(65536 + size)
    record = p["record_confirm"]
    latencies = array.array("q")
    firsts, lasts = [], []

    async def one_sender(i, conn):
        total = counts[i]
        recipients = p["recipients"]
        next_seq = 0
        first = None
        last = 0
        body_len = size - 8

        async def worker():
            nonlocal next_seq, first, last
            send = conn.send
            while next_seq < total:
                s = next_seq
                next_seq += 1
                offset = (s * 97) & 65535
                t0 = time.monotonic_ns()
                if first is None:
                    first = t0
                await send((i + s) % recipients, t0.to_bytes(8, "little") + random_block[offset:offset + body_len])
                t1 = time.monotonic_ns()
                if record:
                    latencies.append(t1 - t0)
                if t1 > last:
                    last = t1

        await asyncio.gather(*(worker() for _ in range(min(window, max(total, 1)))))
        if first is not None:
            firsts.append(first)
            lasts.append(last)

    remaining = p["deadline"] - time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(one_sender(i, c) for i, c in zip(ids, conns))), timeout=remaining)
    t_end = time.monotonic_ns()
    cpu = time.process_time() - cpu0
    for conn in conns:
        try:
            await asyncio.wait_for(conn.close(), timeout=5)
        except Exception:
            pass
    results.put(("result", "senders", index, {
        "first": min(firsts) if firsts else None, "last": max(lasts) if lasts else None,
        "cpu": cpu, "wall": (t_end - t_go) / 1e9, "latencies": latencies}))


async def _receivers(peer, info, ids, p, go, results, index):
    family = clients.family(peer)
    conns = []
    for r in ids:
        conn = clients.RECEIVERS[family]()
        await conn.connect(info, r, p["prefetch"])
        conns.append(conn)
    latencies = array.array("q")
    record = p["record_delivery"]

    def on_message(body):
        if record:
            latencies.append(time.monotonic_ns() - int.from_bytes(body[:8], "little"))

    expected = p["expected"]
    # a recipient that gets no message (fewer messages than recipients) has nothing to wait for
    busy = [(r, c) for r, c in zip(ids, conns) if expected[r] > 0]
    if p["consume_first"]:
        # online: subscribed before the senders start; the clock starts when they do
        waits = [await c.start(on_message, expected[r]) for r, c in busy]
        results.put(("ready", "receivers", index, None))
        await _wait_event(go, p["deadline"])
        cpu0, t_go = time.process_time(), time.monotonic_ns()
    else:
        # offline drain: connected and idle until the signal, then subscribe and drain
        results.put(("ready", "receivers", index, None))
        await _wait_event(go, p["deadline"])
        cpu0, t_go = time.process_time(), time.monotonic_ns()
        waits = [await c.start(on_message, expected[r]) for r, c in busy]
    remaining = p["deadline"] - time.monotonic()
    last_acks = await asyncio.wait_for(asyncio.gather(*waits), timeout=remaining) if waits else [0]
    t_end = time.monotonic_ns()
    cpu = time.process_time() - cpu0
    for conn in conns:
        try:
            await asyncio.wait_for(conn.close(), timeout=5)
        except Exception:
            pass
    results.put(("result", "receivers", index, {
        "start": t_go, "last": max(last_acks), "cpu": cpu, "wall": (t_end - t_go) / 1e9,
        "latencies": latencies}))


def child_main(role, peer, info, ids, params, go, results, index):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator handles Ctrl-C and stops us
    try:
        import uvloop
        uvloop.install()
        run = _senders if role == "senders" else _receivers
        asyncio.run(run(peer, info, ids, params, go, results, index))
    except BaseException as e:  # noqa: B902 - report everything, the coordinator decides
        if isinstance(e, asyncio.TimeoutError):
            message = f"{role} process {index}: timed out"
        else:
            message = f"{role} process {index}: {traceback.format_exc()}"
        results.put(("error", role, index, message))


# ---------------------------------------------------------------- coordinator

class Phase:
    """One group of client processes started together, released together, collected together."""

    def __init__(self, ctx, role, peer, info, groups, params):
        self.role = role
        self.go = ctx.Event()
        self.results = ctx.Queue()
        self.procs = [ctx.Process(target=child_main, name=f"bench-{role}-{i}",
                                  args=(role, peer, info, ids, params, self.go, self.results, i))
                      for i, ids in enumerate(groups)]
        for proc in self.procs:
            proc.start()
        self.ready = set()
        self.done = {}

    def _collect(self, kind, deadline):
        want = self.ready if kind == "ready" else self.done
        while len(want) < len(self.procs):
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                raise RunError(f"timed out waiting for the {self.role} ({kind})")
            try:
                tag, _role, index, payload = self.results.get(timeout=min(timeout, 0.5))
            except queue_module.Empty:
                for i, proc in enumerate(self.procs):
                    if proc.exitcode not in (None, 0) and i not in self.done:
                        raise RunError(f"{self.role} process {i} died (exit {proc.exitcode})")
                continue
            if tag == "error":
                raise RunError(payload)
            if tag == "ready":
                self.ready.add(index)
            elif tag == "result":
                self.ready.add(index)
                self.done[index] = payload
        return want

    def wait_ready(self, deadline):
        self._collect("ready", deadline)

    def start(self):
        trace(f"{self.role} ready; go")
        self.go.set()

    def wait_done(self, deadline):
        self._collect("result", deadline)
        trace(f"{self.role} done")
        for proc in self.procs:
            proc.join(timeout=max(0.1, min(5.0, deadline - time.monotonic())))
        return [self.done[i] for i in range(len(self.procs))]

    def stop(self):
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()
        for proc in self.procs:
            proc.join(timeout=3)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=2)


def _ms(ns):
    return None if ns is None else round(ns / 1e6, 3)


def _latency_fields(latency_arrays):
    values = sorted(v for a in latency_arrays for v in a)
    return {"p50ms": _ms(percentile(values, 0.50)), "p99ms": _ms(percentile(values, 0.99)),
            "p999ms": _ms(percentile(values, 0.999))}


def run(args):
    """Runs one peer x case and returns the result dict (raises RunError on failure)."""
    peer, case = args.peer, args.case
    started = time.monotonic()
    deadline = started + args.timeout
    if case == "latency":
        senders, window = 1, 1
    else:
        senders, window = args.senders, args.window
    recipients = args.recipients
    messages = args.count
    size = args.size
    if size < 8:
        raise RunError("--size must be at least 8 (the send timestamp)")
    prefetch = args.prefetch or max(window, 64)
    counts, expected = plan(messages, senders, recipients)
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    ctx = multiprocessing.get_context("spawn")
    broker = brokers.make(peer, work)
    phases = []
    family = clients.family(peer)
    result = {"peer": peer, "case": case, "window": window, "senders": senders, "recipients": recipients,
              "messages": messages, "size": size}
    notes = [f"durability: {broker.durability}"]
    procs_note = []

    machine = []  # (machine busy seconds, monotonic seconds) at each broker sample

    def cpu_of_broker():
        machine.append((brokers.machine_busy_seconds(), time.monotonic()))
        pid = broker.server_pid()
        return brokers.process_cpu_seconds(pid) if pid else None

    def other_load(client_cpu, broker_cpu_seconds):
        """Cores that processes other than this run's used meanwhile (another build, say)."""
        busy = sum(machine[i + 1][0] - machine[i][0] for i in range(0, len(machine) - 1, 2))
        wall = sum(machine[i + 1][1] - machine[i][1] for i in range(0, len(machine) - 1, 2))
        if wall < MIN_CPU_WINDOW or broker_cpu_seconds is None:
            return None
        return max(0.0, (busy - client_cpu - broker_cpu_seconds) / wall)

    try:
        trace(f"starting {peer}")
        broker.start(deadline)
        trace(f"{peer} up; declaring")
        asyncio.run(asyncio.wait_for(clients.SETUP[family](broker.client_info(), recipients, deadline),
                                     timeout=max(1.0, deadline - time.monotonic())))
        notes.append(f"broker startup {broker.startup_seconds:.1f} s")
        info = broker.client_info()
        base = {"window": window, "size": size, "counts": counts, "recipients": recipients,
                "expected": expected, "prefetch": prefetch, "deadline": deadline}
        sender_groups = split(list(range(senders)), args.sender_procs)
        receiver_groups = split(list(range(recipients)), args.receiver_procs)

        def phase(role, groups, **extra):
            trace(f"starting {len(groups)} {role} process(es)")
            ph = Phase(ctx, role, peer, info, groups, dict(base, **extra))
            phases.append(ph)
            return ph

        def cpu_note(label, outs, wall):
            per = ", ".join(f"{o['cpu'] / wall:.2f}" for o in outs)
            procs_note.append(f"{label} {len(outs)} proc ({per} cores)")
            return sum(o["cpu"] for o in outs)

        if case == "online":
            rx = phase("receivers", receiver_groups, record_delivery=True, consume_first=True, record_confirm=False)
            rx.wait_ready(deadline)
            tx = phase("senders", sender_groups, record_confirm=False, record_delivery=False, consume_first=False)
            tx.wait_ready(deadline)
            b0 = cpu_of_broker()
            rx.start()
            tx.start()
            sent = tx.wait_done(deadline)
            got = rx.wait_done(deadline)
            b1 = cpu_of_broker()
            first = min(s["first"] for s in sent if s["first"] is not None)
            last = max(g["last"] for g in got)
            seconds = (last - first) / 1e9
            result.update(seconds=round(seconds, 3), rate=round(messages / seconds, 1))
            result.update(_latency_fields([g["latencies"] for g in got]))
            cpu = cpu_note("senders", sent, seconds) + cpu_note("receivers", got, seconds)
            result["clientCPU"] = round(cpu / seconds, 2)
            broker_cpu = (b1 - b0) / seconds if b0 is not None and b1 is not None else None
            other = other_load(cpu, None if broker_cpu is None else b1 - b0)
        elif case == "offline":
            tx = phase("senders", sender_groups, record_confirm=False, record_delivery=False, consume_first=False)
            tx.wait_ready(deadline)
            b0 = cpu_of_broker()
            tx.start()
            sent = tx.wait_done(deadline)
            b1 = cpu_of_broker()
            sent = [s for s in sent if s["first"] is not None]
            store_seconds = (max(s["last"] for s in sent) - min(s["first"] for s in sent)) / 1e9
            rx = phase("receivers", receiver_groups, record_delivery=False, consume_first=False, record_confirm=False)
            rx.wait_ready(deadline)
            b2 = cpu_of_broker()
            rx.start()
            got = rx.wait_done(deadline)
            b3 = cpu_of_broker()
            drain_seconds = (max(g["last"] for g in got) - min(g["start"] for g in got)) / 1e9
            seconds = store_seconds + drain_seconds
            result.update(seconds=round(seconds, 3), storeRate=round(messages / store_seconds, 1),
                          drainRate=round(messages / drain_seconds, 1))
            store_cpu = cpu_note("store: senders", sent, store_seconds)
            drain_cpu = cpu_note("drain: receivers", got, drain_seconds)
            result["clientCPU"] = round((store_cpu + drain_cpu) / seconds, 2)
            broker_cpu = other = None
            if None not in (b0, b1, b2, b3):
                broker_cpu = ((b1 - b0) + (b3 - b2)) / seconds
                other = other_load(store_cpu + drain_cpu, (b1 - b0) + (b3 - b2))
                if seconds >= MIN_CPU_WINDOW:
                    notes.append(f"broker CPU store {(b1 - b0) / store_seconds:.2f}, "
                                 f"drain {(b3 - b2) / drain_seconds:.2f} cores")
        elif case == "latency":
            tx = phase("senders", [[0]], record_confirm=True, record_delivery=False, consume_first=False)
            tx.wait_ready(deadline)
            b0 = cpu_of_broker()
            tx.start()
            sent = tx.wait_done(deadline)
            b1 = cpu_of_broker()
            seconds = (sent[0]["last"] - sent[0]["first"]) / 1e9
            result.update(seconds=round(seconds, 3), rate=round(messages / seconds, 1))
            result.update(_latency_fields([sent[0]["latencies"]]))
            cpu = cpu_note("sender", sent, seconds)
            result["clientCPU"] = round(cpu / seconds, 2)
            broker_cpu = (b1 - b0) / seconds if b0 is not None and b1 is not None else None
            other = other_load(cpu, None if broker_cpu is None else b1 - b0)
        else:
            raise RunError(f"unknown case {case}")
        if broker_cpu is not None and seconds >= MIN_CPU_WINDOW:
            notes.append(f"broker CPU {broker_cpu:.2f} cores")
        else:
            notes.append(f"measured for {seconds:.2f} s, too short for the broker's and the machine's "
                         "CPU shares (/proc counts 10 ms ticks)")
        notes.append("client CPU: " + "; ".join(procs_note))
        if other is not None:
            notes.append(f"other processes on the machine meanwhile {other:.2f} cores of {os.cpu_count()}"
                         + (" (the figures are disturbed)" if other > 0.25 else ""))
        notes.append(f"prefetch {prefetch}" if case != "latency" else "publish->confirm latency, no consumer")
        if peer == "nats-jetstream":
            notes.append("fsync: JetStream in nats-server 2.9.10 does NOT fsync before the PubAck: it writes to "
                         "the OS and fsyncs the file store every 2 minutes (no sync_interval option before 2.10); "
                         "it survives a process crash, not a power cut")
        if peer == "redis-everysec":
            notes.append("appendfsync everysec acknowledges before the fsync")
        if family == "redis" and case != "latency":
            notes.append("consumer XREADGROUP then XACK+XDEL (entry deleted after ack)")
        if family == "rabbitmq" and case != "latency":
            notes.append("one basic.ack per message")
        result["notes"] = "; ".join(notes)
        return result
    finally:
        for ph in phases:
            ph.stop()
        trace("stopping the broker")
        broker.stop()
        trace("stopped")


def main(args):
    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        result = run(args)
    except KeyboardInterrupt:
        print(f"bench_peers: {args.peer} {args.case}: interrupted; broker stopped", file=os.sys.stderr)
        return 130
    except (RunError, brokers.BrokerError, asyncio.TimeoutError, OSError) as e:
        message = str(e) or e.__class__.__name__
        if isinstance(e, asyncio.TimeoutError):
            message = "timed out"
        print(f"bench_peers: {args.peer} {args.case}: {message} (limit {args.timeout:.0f} s); broker stopped",
              file=os.sys.stderr)
        return 1
    print(json.dumps(result), flush=True)
    return 0
