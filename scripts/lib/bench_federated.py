"""The federated benchmark, run by scripts/bench: the same durable online load (W = 64 sends
in flight per sender, `valise-load bench`) through one relay and through two linked relays
on this machine (senders homed at hq, recipients at geneva: every envelope is committed at
hq, forwarded, committed at geneva, then delivered), alternating for --rounds rounds so that
both see the disk in the same minutes. Prints one JSON line for performance_doc.py.

    bench_federated.py SINGLE_WORK FEDERATED_WORK BIN SINGLE_PORT HQ_PORT GENEVA_PORT
                       --senders A,B,.. --recipients C,D,.. [--rounds N] [--count N]

SINGLE_WORK holds an organisation with one relay (WORK/relay); FEDERATED_WORK one with
relays hq (WORK/relay) and geneva (WORK/relay-geneva), as scripts/lib/organisation.sh
makes them. Each run starts the relays on fresh queues with the relay benchmark's settings.
"""
import argparse, json, os, signal, statistics, subprocess, sys, time

parser = argparse.ArgumentParser()
parser.add_argument("single")
parser.add_argument("federated")
parser.add_argument("bin")
parser.add_argument("single_port", type=int)
parser.add_argument("hq_port", type=int)
parser.add_argument("geneva_port", type=int)
parser.add_argument("--senders", required=True)
parser.add_argument("--recipients", required=True)
parser.add_argument("--rounds", type=int, default=3)
parser.add_argument("--count", type=int, default=40000)
parser.add_argument("--size", type=int, default=4096)
args = parser.parse_args()
senders, recipients = args.senders.split(","), args.recipients.split(",")
WINDOW = 64

from bench_settings import BENCH_ENV, start_valised  # noqa: E402  (the relay benchmark's settings)


def log(message):
    print(f"bench federated: {message}", file=sys.stderr, flush=True)


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_relay(directory, port, log_name):
    for suffix in ("", "-wal", "-shm", "-reserve"):
        path = os.path.join(directory, "queue.sqlite" + suffix)
        if os.path.exists(path):
            os.unlink(path)
    return start_valised(
        [os.path.join(args.bin, "valised"), "run", "--dir", directory, "--listen", f"127.0.0.1:{port}"],
        directory + ".out", os.path.join(os.path.dirname(directory), log_name), env=dict(os.environ, **BENCH_ENV),
        what="bench federated")


def stop_relay(process):
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def links_up(directory, wanted, seconds=30):
    """Until the relay's links.json says every link is up (bounded)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            links = json.load(open(os.path.join(directory, "links.json")))["links"]
            if len(links) >= wanted and all(link["state"] == "up" for link in links):
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    raise SystemExit(f"bench federated: the links of {directory} did not come up")


def run(federated):
    work = args.federated if federated else args.single
    relays = [start_relay(os.path.join(work, "relay"), args.hq_port if federated else args.single_port, "relay.log")]
    if federated:
        relays.append(start_relay(os.path.join(work, "relay-geneva"), args.geneva_port, "relay-geneva.log"))
        links_up(os.path.join(work, "relay"), 1)
        links_up(os.path.join(work, "relay-geneva"), 1)
    command = [os.path.join(args.bin, "valise-load"), "bench", "--case", "online", "--window", str(WINDOW),
               "--count", str(args.count), "--size", str(args.size), "--timeout", "300"]
    for name in senders:
        command += ["--sender", os.path.join(work, name)]
    for name in recipients:
        command += ["--recipient", os.path.join(work, name)]
    try:
        before = [cpu_seconds(relay.pid) for relay in relays]
        result = subprocess.run(command, capture_output=True, text=True, timeout=600)
        cpu = sum(cpu_seconds(relay.pid) - start for relay, start in zip(relays, before))
    finally:
        for relay in relays:
            stop_relay(relay)
    if result.returncode != 0:
        raise SystemExit(f"bench federated: valise-load bench failed: {result.stderr[-2000:]}")
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    figures["relayCPUPerMessageUs"] = cpu / args.count * 1e6
    return figures


single, federated = [], []
for round_number in range(1, args.rounds + 1):
    single.append(run(False))
    federated.append(run(True))
    log(f"round {round_number}/{args.rounds}: single {single[-1]['rate']:,.0f}/s, federated {federated[-1]['rate']:,.0f}/s")

ratios = [f["rate"] / s["rate"] for s, f in zip(single, federated) if s.get("rate")]
print(json.dumps({
    "case": "federated", "rounds": args.rounds, "window": WINDOW, "count": args.count, "size": args.size,
    "senders": len(senders), "recipients": len(recipients),
    "singleRate": statistics.median(r["rate"] for r in single),
    "federatedRate": statistics.median(r["rate"] for r in federated),
    "ratio": statistics.median(ratios) if ratios else None,
    "ratios": ratios,
    "singleP50ms": statistics.median(r.get("p50ms", 0) for r in single),
    "federatedP50ms": statistics.median(r.get("p50ms", 0) for r in federated),
    "singleRelayCPUPerMessageUs": statistics.median(r["relayCPUPerMessageUs"] for r in single),
    "federatedRelayCPUPerMessageUs": statistics.median(r["relayCPUPerMessageUs"] for r in federated),
}))
