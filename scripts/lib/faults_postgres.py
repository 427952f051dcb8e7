"""scripts/faults' postgres rows: two valised nodes of one relay (the same keys, copied from
`valised init`'s directory; the directory lists both addresses) on a PostgreSQL cluster of
the row's own (faults_pgcluster.py), under load from valise-load senders and a receiver
pinned to the nodes, and the real valise CLI (which tries the directory's addresses in
order). Faults: a node SIGKILLed, the server stopped in immediate mode, a node cut off the
database, the primary of a synchronous pair SIGKILLed and its standby promoted.

A load process pinned to a node that is gone is moved to the other node with the same ids
(what a client does on failing over); a sender whose sends were refused (UNAVAILABLE while
the database is away) runs again with the same ids until all are accepted (bounded). The
row counts what valise-load logged as Accepted against what the receiver logged, and what
alice's `valise sent` says was accepted against what bob's inbox shows."""
import json
import os
import random
import shutil
import signal
import subprocess
import time

from faults_common import free_port, logged
import faults_pgcluster

SENDERS = ("s1@lagos", "s2@lagos")
RECEIVER = "r1@jakarta"
ALICE, BOB = "alice@lagos", "bob@quito"


class Node:
    """One valised of the relay: its own directory (a copy of the first), port and config."""

    def __init__(self, fault, index, directory, hosts):
        self.fault, self.index, self.dir = fault, index, directory
        self.name = f"node {index + 1}"
        self.port = fault.port if index == 0 else free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.config = os.path.join(fault.work, f"node{index + 1}.yaml")
        self.process = None
        quoted = ", ".join(f'"{host}"' for host in hosts)
        with open(self.config, "w") as config:
            config.write("store:\n  kind: postgres\n  postgres:\n"
                         f"    hosts: [{quoted}]\n    database: valise\n    user: valise\n    tls: disable\n    pool: 4\n")

    def start(self, wait=60):
        out_path = os.path.join(self.fault.work, f"node{self.index + 1}.out")
        log_path = os.path.join(self.fault.work, f"node{self.index + 1}.log")
        open(out_path, "w").close()
        with open(out_path, "wb") as stdout, open(log_path, "ab") as stderr:
            process = self.fault.spawn([f"{self.fault.bin}/valised", "run", "--dir", self.dir, "--listen", self.address,
                                        "--config", self.config], stdout=stdout, stderr=stderr)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and process.poll() is None:
            if "valised listening on" in open(out_path).read():
                self.process = process
                return
            time.sleep(0.05)
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        tail = open(log_path, errors="replace").read().strip().splitlines()[-3:]
        raise RuntimeError(f"{self.name} did not start (exit {process.returncode}): {' | '.join(tail)[-400:]}")

    def kill(self, sig=signal.SIGKILL):
        if self.running():
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)
        self.process = None

    def running(self):
        return self.process is not None and self.process.poll() is None

    def check_running(self, when):
        if self.process is not None and self.process.poll() is not None:
            self.fault.problem(f"{self.name} exited {self.process.returncode} {when} (it should answer UNAVAILABLE and wait)")
            self.process = None


def relay_on(fault, hosts_of_node):
    """The organisation, two nodes on the hosts given for each, the directory listing both
    addresses (published through node 1), bob's prekeys on the relay. Returns the nodes."""
    fault.organisation(*SENDERS, RECEIVER, ALICE, BOB)
    shutil.copytree(fault.relay_dir, fault.relay_dir + "-2")
    nodes = [Node(fault, 0, fault.relay_dir, hosts_of_node[0]), Node(fault, 1, fault.relay_dir + "-2", hosts_of_node[1])]
    for node in nodes:
        node.start()
    fault.run([f"{fault.bin}/valise", "admin", "set-relay-addresses", "--org", os.path.join(fault.work, "org"),
               "--name", "hq", "--address", nodes[0].address, "--address", nodes[1].address])
    fault.publish()
    fault.valise(BOB, "sync", timeout=90)
    fault.valise(ALICE, "sync", timeout=90)
    return nodes


class Load:
    """valise-load senders (one per device, one pinned to each node at first) and a receiver
    (pinned to node 2), all logging ids."""

    def __init__(self, fault, nodes, count):
        self.fault, self.nodes, self.count = fault, nodes, count
        self.accepted_logs = [os.path.join(fault.work, f"accepted-{n}") for n in range(len(SENDERS))]
        self.delivered_log = os.path.join(fault.work, "delivered")
        self.senders = [None] * len(SENDERS)
        self.sender_node = [0, 1]
        self.receiver, self.receiver_node = None, 1
        self.runs = 0
        for number in range(len(SENDERS)):
            self._send(number)
        self._receive()

    def _send(self, number, timeout=120):
        node = self.nodes[self.sender_node[number]]
        rate = "60" if self.fault.short else "100"
        self.senders[number] = self.fault.spawn([
            f"{self.fault.bin}/valise-load", "send", "--home", self.fault.home(SENDERS[number]), "--to", RECEIVER,
            "--count", str(self.count), "--run", f"pg-{number}", "--log", self.accepted_logs[number], "--concurrency", "8",
            "--rate", rate, "--precedence", "mixed", "--size", "512", "--relay", node.address, "--timeout", str(timeout)])

    def _receive(self, idle=300, timeout=300):
        node = self.nodes[self.receiver_node]
        self.receiver = self.fault.spawn([f"{self.fault.bin}/valise-load", "receive", "--home", self.fault.home(RECEIVER),
                                          "--log", self.delivered_log, "--relay", node.address, "--idle", str(idle),
                                          "--timeout", str(timeout)])

    def accepted(self):
        return set().union(*(logged(path) for path in self.accepted_logs))

    def wait_accepted(self, fraction, limit=60):
        """Until that fraction of all envelopes was accepted (bounded): the fault lands mid-load."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and len(self.accepted()) < fraction * self.count * len(SENDERS):
            time.sleep(0.1)

    def move_off(self, gone):
        """Every load process pinned to node GONE goes to the other node (same ids)."""
        other = 1 - gone
        for number, process in enumerate(self.senders):
            if self.sender_node[number] == gone:
                _stop(process)
                self.sender_node[number] = other
                self._send(number)
        if self.receiver_node == gone:
            _stop(self.receiver)
            self.receiver_node = other
            self._receive()

    def finish(self, attempts=4):
        """Waits for the senders; runs again (same ids) those that were refused or gave up,
        then the receiver until it has every accepted id or is idle. Returns nothing; the
        tally reads the logs."""
        for attempt in range(attempts):
            for number, process in enumerate(self.senders):
                try:
                    process.wait(timeout=150)
                except subprocess.TimeoutExpired:
                    self.fault.problem(f"sender {number + 1} did not finish within 150 s")
                    _stop(process)
            missing = [n for n in range(len(SENDERS)) if len(set(logged(self.accepted_logs[n]))) < self.count]
            if not missing:
                break
            self.runs += 1
            time.sleep(1)
            for number in missing:
                self._send(number, timeout=45)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not self.accepted() <= set(logged(self.delivered_log)):
            if self.receiver.poll() is not None:
                self._receive(idle=5, timeout=30)
            time.sleep(0.5)
        _stop(self.receiver)

    def stop(self):
        for process in self.senders + [self.receiver]:
            _stop(process)

    def tally(self):
        accepted, delivered = self.accepted(), set(logged(self.delivered_log))
        self.fault.tally_logs(self.count * len(SENDERS), self.accepted_logs, self.delivered_log)
        if delivered - accepted:
            self.fault.notes.append(f"{len(delivered - accepted)} ids delivered whose Accepted the sender never saw")
        for id in sorted(accepted - delivered)[:5]:
            self.fault.problem(f"lost: {id}")


def _stop(process):
    if process is not None and process.poll() is None:
        process.kill()
        process.wait(timeout=30)


class Cli:
    """alice's `valise send` to bob with no --relay (the directory's addresses in order),
    possibly failing while the fault lasts (the message waits in the outbox), and bob's
    syncs; at the end, the outbox synced and the contract compared (fault.compare)."""

    def __init__(self, fault):
        self.fault, self.texts, self.failed = fault, set(), 0

    def send(self, count, label):
        for number in range(count):
            text = f"pg {label} {number} {random.random()}"
            self.texts.add(text)
            self.fault.sent += 1
            status, _, _ = self.fault.valise(ALICE, "send", "--to", BOB, text, check=False, timeout=90)
            self.failed += status != 0
            self.fault.valise(BOB, "sync", check=False, timeout=90)

    def send_via(self, address, label, seconds=30):
        """One message through ADDRESS only, synced again until the outbox is empty (bounded)."""
        text = f"pg {label} {random.random()}"
        self.texts.add(text)
        self.fault.sent += 1
        status, _, _ = self.fault.valise(ALICE, "send", "--to", BOB, "--relay", address, text, check=False, timeout=90)
        deadline = time.monotonic() + seconds
        while status != 0 and time.monotonic() < deadline:
            time.sleep(1)
            status, out, _ = self.fault.valise(ALICE, "sync", "--json", "--relay", address, check=False, timeout=90)
            try:
                if status == 0 and json.loads(out).get("outboxWaiting", 1) != 0:
                    status = 1
            except ValueError:
                status = 1
        return status == 0

    def finish(self):
        self.fault.sync_until_sent(ALICE, attempts=5)
        for _ in range(2):
            self.fault.valise(BOB, "sync", check=False, timeout=90)
        self.fault.compare(ALICE, BOB, self.texts)
        self.fault.notes.append(f"valise send: {self.failed} of {len(self.texts)} failed while the fault lasted, then synced")


def _row(fault, setup, disrupt):
    """The shape every row shares: SETUP(clusters) gives the hosts of each node; then load,
    DISRUPT(nodes, load, cli, clusters) mid-load, the load finished, the contract tallied."""
    reason = faults_pgcluster.unavailable()
    if reason:
        fault.skipped = "PostgreSQL unavailable"
        fault.notes.append(reason)
        return
    clusters = faults_pgcluster.Clusters()
    load = None
    try:
        try:
            hosts = setup(clusters)
        except faults_pgcluster.Unavailable as error:
            fault.skipped = "PostgreSQL did not start"
            fault.notes.append(str(error)[:300])
            return
        nodes = relay_on(fault, hosts)
        count = 150 if fault.short else 600
        cli = Cli(fault)
        cli.send(2, "before")
        load = Load(fault, nodes, count)
        load.wait_accepted(0.3)
        disrupt(nodes, load, cli, clusters)
        load.finish()
        cli.send(2, "after")
        cli.finish()
        load.tally()
        if load.runs:
            fault.notes.append(f"senders run again {load.runs} times with the same ids (refused or gave up during the fault)")
    finally:
        if load is not None:
            load.stop()
        fault.stop_all()
        clusters.close()


def node_kill(fault):
    """One node SIGKILLed mid-load; its clients move to the other; in the full run it is
    restarted and the other one killed in turn."""
    def setup(clusters):
        pg = clusters.primary()
        return [[pg.address], [pg.address]]

    def disrupt(nodes, load, cli, clusters):
        kills = 1 if fault.short else 3
        for run in range(kills):
            victim = run % 2
            nodes[victim].kill()
            fault.runs += 1
            load.move_off(victim)
            cli.send(2, f"node {victim + 1} down")
            if run + 1 < kills:
                nodes[victim].start()
                load.wait_accepted(0.3 + 0.2 * (run + 1))
        fault.notes.append(f"{kills} node kills" + ("" if kills > 1 else "; the killed node stays down"))

    _row(fault, setup, disrupt)


def server_stopped(fault):
    """PostgreSQL stopped in immediate mode mid-load (a crash as far as the data goes) and
    restarted on the same port: the nodes answer UNAVAILABLE meanwhile, then reconnect."""
    def setup(clusters):
        pg = clusters.primary()
        return [[pg.address], [pg.address]]

    def disrupt(nodes, load, cli, clusters):
        pg = clusters.all[0]
        stops = 1 if fault.short else 3
        for run in range(stops):
            pg.stop("immediate")
            fault.runs += 1
            time.sleep(random.uniform(1, 3))
            cli.send(1, f"server down {run}")
            pg.start()
            for node in nodes:
                node.check_running("while PostgreSQL was down")
            if run + 1 < stops:
                load.wait_accepted(0.3 + 0.2 * (run + 1))
        fault.notes.append(f"{stops} immediate stops and restarts")

    _row(fault, setup, disrupt)


def node_cut(fault):
    """Node 1 reaches PostgreSQL through a proxy that is cut mid-load (every connection
    aborted, new ones refused) and healed a few seconds later: node 1 answers UNAVAILABLE
    and closes its clients' connections; they move to node 2; afterwards node 1 serves again."""
    proxies = []

    def setup(clusters):
        pg = clusters.primary()
        proxies.append(faults_pgcluster.CutProxy(pg.port).start())
        return [[f"127.0.0.1:{proxies[0].port}"], [pg.address]]

    def disrupt(nodes, load, cli, clusters):
        proxy = proxies[0]
        proxy.cut()
        fault.runs += 1
        time.sleep(1)
        load.move_off(0)
        cli.send(2, "node 1 cut")
        time.sleep(random.uniform(2, 4))
        proxy.heal()
        nodes[0].check_running("while cut off the database")
        fault.check(cli.send_via(nodes[0].address, "node 1 healed"), "node 1 did not accept a send within 30 s of the cut healing")
        fault.notes.append("proxy: " + ", ".join(f"{k} {v}" for k, v in proxy.counts.items()))

    try:
        _row(fault, setup, disrupt)
    finally:
        for proxy in proxies:
            proxy.stop()


def primary_failover(fault):
    """A primary with a synchronous standby; both in every node's hosts. The primary's
    postmaster SIGKILLed mid-load, the standby promoted: the nodes find the new primary and
    nothing that was accepted is lost (it was on both machines when Accepted was sent)."""
    def setup(clusters):
        primary, standby = clusters.synchronous_pair()
        return [[primary.address, standby.address]] * 2

    def disrupt(nodes, load, cli, clusters):
        primary, standby = clusters.all
        primary.kill()
        fault.runs += 1
        time.sleep(random.uniform(0.5, 1.5))
        cli.send(1, "primary gone")
        standby.promote()
        fault.check(not standby.in_recovery(), "the standby is still in recovery after pg_ctl promote")
        for node in nodes:
            node.check_running("after the primary was killed")
        fault.notes.append("primary SIGKILLed, standby promoted; the old primary stays down (fenced)")

    _row(fault, setup, disrupt)
