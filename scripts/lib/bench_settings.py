"""Settings the relay benchmarks share (scripts/lib/bench_relay.py, bench_federated.py), and
the start of a relay every benchmark uses."""

import subprocess
import time

# Everything comes from 127.0.0.1: per-address limits are lifted, mailbox quotas raised so
# the offline case fits, the delivery window and pending requests allow W = 256, and each
# sender device may send as fast as it can.
BENCH_ENV = {
    "VALISED_LIMITS_MAX_CONNECTIONS": "20000",
    "VALISED_LIMITS_MAX_CONNECTIONS_PER_ADDRESS": "20000",
    "VALISED_LIMITS_HANDSHAKES_PER_SECOND_PER_ADDRESS": "100000",
    "VALISED_LIMITS_HANDSHAKE_BURST_PER_ADDRESS": "100000",
    "VALISED_LIMITS_DELIVERY_WINDOW": "256",
    "VALISED_LIMITS_MAX_PENDING_REQUESTS": "256",
    "VALISED_LIMITS_SENDS_PER_SECOND_PER_DEVICE": "10000000",
    "VALISED_LIMITS_SEND_BURST_PER_DEVICE": "10000000",
    "VALISED_QUEUE_MAX_MESSAGES_PER_MAILBOX": "100000000",
    "VALISED_QUEUE_MAX_BYTES_PER_MAILBOX": str(1 << 40),
}


def start_valised(command, out_path, log_path, env=None, what="bench"):
    """Starts COMMAND (valised run …, possibly behind strace) with its stdout in OUT_PATH and
    its stderr appended to LOG_PATH, and waits (60 s at most) until valised says it listens.
    Returns the process; on failure kills it and stops the benchmark, quoting the log."""
    process = subprocess.Popen(command, stdout=open(out_path, "w"), stderr=open(log_path, "a"), env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if "valised listening on" in open(out_path).read():
            return process
        if process.poll() is not None:
            break
        time.sleep(0.005)
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)
    raise SystemExit(f"{what}: the relay did not start; see {log_path}: " + open(log_path).read()[-400:])
