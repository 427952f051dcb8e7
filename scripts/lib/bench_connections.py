"""The connections benchmark (issue 7): how many idle authenticated connections one relay
holds, what each costs it in memory, and how fast it completes handshakes. Run by
scripts/bench after it has built release binaries and an organisation
(scripts/lib/organisation.sh). Prints one JSON line for performance_doc.py.

    bench_connections.py WORK BIN PORT [MEMBER]

MEMBER is the enrolled device whose key every connection uses (the relay admits many
connections of one key); by default the first home under WORK with a device.key.
$VALISE_PASSPHRASE unlocks it, as for the other cases. BENCH_CONNECTIONS (10000),
BENCH_CONNECTIONS_CONCURRENCY (64 handshakes at a time) and BENCH_CONNECTIONS_HOLD (10 s)
change the run.

The relay runs with a configuration that lifts its limits (everything comes from
127.0.0.1, so the per-address ones would stop the run at 64 connections); both processes
get a raised open-file limit. The relay's VmRSS is read from /proc before the first
connection and again near the end of the hold, with every connection open; the per
connection figure is the difference divided by the connections held. After the hold,
valise-load sends a Ping on every connection: `held` counts those that answered.
"""
import json, os, resource, signal, subprocess, sys, threading, time

from bench_settings import start_valised

work, bin_dir, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
COUNT = int(os.environ.get("BENCH_CONNECTIONS", "10000"))
CONCURRENCY = int(os.environ.get("BENCH_CONNECTIONS_CONCURRENCY", "64"))
HOLD = float(os.environ.get("BENCH_CONNECTIONS_HOLD", "10"))
relay_dir = os.path.join(work, "relay")


def log(message):
    print(f"bench connections: {message}", file=sys.stderr, flush=True)


def member_home():
    if len(sys.argv) > 4:
        return os.path.join(work, sys.argv[4])
    for name in sorted(os.listdir(work)):
        if os.path.exists(os.path.join(work, name, "device.key")):
            return os.path.join(work, name)
    raise SystemExit("bench connections: no device home (with device.key) under " + work)


def raise_open_files(needed):
    """Both processes inherit this limit: each holds one descriptor per connection."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
            return
        except (ValueError, OSError):
            raise SystemExit(f"bench connections: the open-file limit is {hard}, {needed} are needed (ulimit -Hn)")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, needed), hard))


def write_config():
    """The relay's limits, lifted for one address and COUNT connections."""
    path = os.path.join(work, "connections.yaml")
    with open(path, "w") as f:
        f.write(f"""# scripts/lib/bench_connections.py: every connection comes from 127.0.0.1.
limits:
  maxConnections: {COUNT + 100}
  maxConnectionsPerAddress: {COUNT + 100}
  handshakesPerSecondPerAddress: 1000000
  handshakeBurstPerAddress: {COUNT + 100}
  handshakeTimeoutSeconds: 60
  idleTimeoutSeconds: 3600
""")
    return path


def vm_rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise SystemExit("bench connections: no VmRSS for the relay")


def cpu_seconds(pid):
    """User and system time the process has used so far."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def map_count(pid):
    with open(f"/proc/{pid}/maps") as maps:
        return sum(1 for _ in maps)


def start_relay(config):
    command = [os.path.join(bin_dir, "valised"), "run", "--dir", relay_dir, "--listen", f"127.0.0.1:{port}",
               "--config", config]
    return start_valised(command, os.path.join(work, "relay.out"), os.path.join(work, "relay.log"), what="bench connections")


def stop_relay(process):
    if process.poll() is not None:
        return process.returncode
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
        raise SystemExit("bench connections: the relay did not stop within 60 s of SIGTERM")


def run_load(home, relay):
    """Runs valise-load connections; samples the relay's memory while the connections are held."""
    command = [os.path.join(bin_dir, "valise-load"), "connections", "--home", home, "--relay", f"127.0.0.1:{port}",
               "--count", str(COUNT), "--concurrency", str(CONCURRENCY), "--hold", str(HOLD)]
    load = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(600 + HOLD, load.kill)
    watchdog.start()
    held, done, samples = None, None, []
    cpu_before = cpu_seconds(relay.pid)
    try:
        for line in load.stdout:
            if not line.startswith("{"):
                continue
            event = json.loads(line)
            if event.get("event") == "held":
                held = event
                # The relay's own cost of a handshake, whatever the load generator beside it costs.
                held["relayCPUSeconds"] = cpu_seconds(relay.pid) - cpu_before
                log(f"{event['admitted']} admitted at {event['handshakesPerSecond']:.0f} handshakes/s; holding {HOLD:g} s")
                # Samples through the hold; the last, taken about a second before it ends, is
                # the one reported (the relay has settled by then).
                started = time.monotonic()
                while time.monotonic() - started < max(HOLD - 1, 0):
                    time.sleep(min(1.0, max(HOLD - 1, 0)))
                    if relay.poll() is not None:
                        break
                    samples.append((vm_rss_kib(relay.pid), map_count(relay.pid)))
                if not samples and relay.poll() is None:
                    samples.append((vm_rss_kib(relay.pid), map_count(relay.pid)))
            elif event.get("event") == "done":
                done = event
        load.wait(timeout=60)
    finally:
        watchdog.cancel()
    if done is None:
        raise SystemExit(f"bench connections: valise-load ended without a result: {load.stderr.read()[-2000:]}")
    return held, done, samples


home = member_home()
raise_open_files(COUNT + 1024)
relay = start_relay(write_config())
try:
    if os.path.isdir(os.path.join(work, "org")):
        # Harmless when the caller already published: only missing entries are sent.
        subprocess.run([os.path.join(bin_dir, "valise"), "admin", "publish", "--relay", "hq", "--org", os.path.join(work, "org")],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    time.sleep(1)
    before, maps_before = vm_rss_kib(relay.pid), map_count(relay.pid)
    log(f"relay RSS before: {before} KiB; opening {COUNT} connections, {CONCURRENCY} handshakes at a time")
    held, done, samples = run_load(home, relay)
    relay_alive = relay.poll() is None
finally:
    status = stop_relay(relay)
if not relay_alive:
    raise SystemExit(f"bench connections: the relay died during the run (status {status}); see {work}/relay.log")
if not samples:
    raise SystemExit("bench connections: no memory sample was taken while the connections were held")
after, maps_after = samples[-1]
count = max(done["held"], 1)
print(json.dumps({
    "case": "connections", "connections": COUNT, "held": done["held"],
    "handshakesPerSecond": round(done["handshakesPerSecond"], 1),
    "relayRSSBeforeKiB": before, "relayRSSAfterKiB": after,
    "rssPerConnectionKiB": round((after - before) / count, 2),
    "admitted": done["admitted"], "concurrency": CONCURRENCY, "holdSeconds": HOLD,
    "relayCPUMicrosecondsPerHandshake": round(held["relayCPUSeconds"] * 1e6 / max(done["admitted"], 1), 1),
    "relayRSSPeakHeldKiB": max(rss for rss, _ in samples),
    "relayMapsBefore": maps_before, "relayMapsAfter": maps_after,
    "failures": done["failures"], "pingFailures": done["pingFailures"],
}))
