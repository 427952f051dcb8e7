"""scripts/faults' orchestration: each fault against real valise, valised and valise-load
processes on 127.0.0.1, then the delivery contract checked from what the processes show.

Run by scripts/faults (which builds first): python3 faults.py BIN WORK [--short].
Every wait is bounded; every process this starts is stopped by its pid.
"""
import os
import random
import sys
import time

from faults_common import Fault, say
import faults_attach
import faults_client
import faults_relay
import faults_network
import faults_postgres


def main():
    bin_dir, work, short = sys.argv[1], sys.argv[2], "--short" in sys.argv[3:]
    seed = int(os.environ.get("FAULTS_SEED", random.randrange(1 << 30)))
    random.seed(seed)
    say(f"faults: {'short' if short else 'full'} run, seed {seed} (FAULTS_SEED replays the random choices)")
    only = os.environ.get("FAULTS_ONLY", "")
    rows = []
    suites = [
        ("relay SIGKILL (crash-test)", faults_relay.relay_kill),
        ("federation: relay SIGKILL (crash-test --relays 2)", faults_relay.federated_relay_kill),
        ("federation: relay down, link down, then up", faults_relay.federated_relay_down),
        ("client SIGKILL in send", faults_client.kill_send),
        ("client SIGKILL in sync", faults_client.kill_sync),
        ("attachments: client and relay SIGKILL in upload, download, save", faults_attach.kill_transfers),
        ("relay store: corrupt header", faults_relay.corrupt_header),
        ("relay store: corrupt pages", faults_relay.corrupt_pages),
        ("relay store: torn WAL tail", faults_relay.torn_wal),
        ("disk full: relay", faults_relay.disk_full),
        ("disk full: client", faults_client.disk_full),
        ("clock skew", faults_client.clock_skew),
        ("network: cut after each frame", faults_network.cut_frames),
        ("network: drop/delay/dup", faults_network.network),
        ("postgres: node SIGKILL", faults_postgres.node_kill),
        ("postgres: server stopped", faults_postgres.server_stopped),
        ("postgres: node cut from database", faults_postgres.node_cut),
        ("postgres: primary failover", faults_postgres.primary_failover),
    ]
    for index, (name, run) in enumerate(suites):
        if only and only not in name:
            continue
        fault = Fault(name, bin_dir, os.path.join(work, f"f{index}"), short)
        started = time.monotonic()
        say(f"faults: {name}")
        try:
            run(fault)
        except Exception as error:  # a fault's harness failing is a failed row, never a pass
            fault.problem(f"harness error: {type(error).__name__}: {error}")
        finally:
            fault.stop_all()
        fault.seconds = time.monotonic() - started
        rows.append(fault)
        for problem in fault.problems:
            print(f"faults: {name}: {problem}", file=sys.stderr)

    header = ("fault", "runs", "messages sent", "accepted", "delivered", "lost", "duplicates shown", "result")
    table = [header] + [r.row() for r in rows]
    widths = [max(len(str(line[i])) for line in table) for i in range(len(header))]
    for number, line in enumerate(table):
        print("  ".join(str(cell).ljust(widths[i]) if i == 0 or i == len(header) - 1 else str(cell).rjust(widths[i])
                        for i, cell in enumerate(line)).rstrip())
        if number == 0:
            print("  ".join("-" * w for w in widths))
    for r in rows:
        if r.notes:
            print(f"  {r.name}: {'; '.join(r.notes)}")
    runs = sum(r.runs for r in rows)
    lost = sum(r.lost for r in rows if isinstance(r.lost, int))
    duplicates = sum(r.duplicates for r in rows if isinstance(r.duplicates, int))
    failed = [r.name for r in rows if r.problems]
    print(f"faults: runs={runs} lost={lost} duplicates={duplicates}")
    sys.exit(1 if failed or lost or duplicates else 0)


if __name__ == "__main__":
    main()
