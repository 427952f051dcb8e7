"""What every fault of scripts/faults shares: an organisation made by organisation.sh, a
relay started and stopped by pid, valise commands with bounded waits, and the row."""
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PASSPHRASE = "faults test passphrase"


def say(text):
    print(f"\033[1m==> {text}\033[0m", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def logged(path):
    """The ids in one of valise-load's logs (none if it was never written)."""
    return open(path).read().split() if os.path.exists(path) else []


def signal_group(process, sig):
    """Signals a process this suite started and its own children (faketime runs the relay
    as its child), by the process group the spawn gave it."""
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


class Fault:
    def __init__(self, name, bin_dir, work, short):
        self.name, self.bin, self.work, self.short = name, bin_dir, work, short
        os.makedirs(work, exist_ok=True)
        self.runs = 0
        self.sent = self.accepted = self.delivered = 0
        self.lost = 0
        self.duplicates = 0
        self.problems, self.notes = [], []
        self.skipped = None
        self.processes = []
        self.relay = None
        self.relay_dir = os.path.join(work, "relay")
        self.port = None
        self.env = dict(os.environ, VALISE_PASSPHRASE=PASSPHRASE, VALISE_RECEIPT_DELAY="0-1")
        self.seconds = 0.0

    # -- the row ------------------------------------------------------------------------
    def problem(self, text):
        self.problems.append(text)

    def check(self, condition, text):
        if not condition:
            self.problem(text)
        return condition

    def row(self):
        result = "FAIL" if self.problems else (f"skipped: {self.skipped}" if self.skipped else "ok")
        result += f" ({self.seconds:.0f} s)"
        return (self.name, self.runs, self.sent, self.accepted, self.delivered, self.lost, self.duplicates, result)

    # -- processes ----------------------------------------------------------------------
    def spawn(self, args, stdout=None, stderr=None, env=None, prefix=()):
        process = subprocess.Popen(list(prefix) + list(args), stdout=stdout or subprocess.DEVNULL,
                                   stderr=stderr or subprocess.DEVNULL, env=env or self.env, cwd=self.work,
                                   start_new_session=True)  # its own group: faketime's child goes with it
        self.processes.append(process)
        return process

    def stop_all(self):
        for process in self.processes:
            if process.poll() is None:
                signal_group(process, signal.SIGKILL)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
        self.processes = []
        self.relay = None

    def run(self, args, timeout=60, env=None, prefix=(), check=True):
        """Runs a command to completion (bounded); returns (status, stdout, stderr)."""
        process = self.spawn(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, prefix=prefix)
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate(timeout=10)
            raise RuntimeError(f"timed out after {timeout} s: {' '.join(args[:3])}")
        out, err = out.decode(errors="replace"), err.decode(errors="replace")
        with open(os.path.join(self.work, "commands.log"), "a") as log:  # for KEEP=1 post-mortems
            log.write(f"$ {' '.join(args)}\n[exit {process.returncode}]\n{out}{err}\n")
        if check and process.returncode != 0:
            raise RuntimeError(f"{' '.join(os.path.basename(a) for a in args[:3])} exited {process.returncode}: {err.strip()[-300:]}")
        return process.returncode, out, err

    def valise(self, home, *args, timeout=60, check=True, prefix=(), env=None):
        return self.run([f"{self.bin}/valise", *args, "--home", self.home(home)], timeout=timeout, check=check,
                        prefix=prefix, env=env)

    def home(self, member):
        return os.path.join(self.work, member)

    # -- an organisation and its relay ----------------------------------------------------
    def organisation(self, *members):
        self.port = free_port()
        script = 'source scripts/lib/organisation.sh; valise_organisation "$@"'
        status = subprocess.run(["bash", "-c", script, "_", self.work, self.bin, str(self.port), *members],
                                cwd=ROOT, env=self.env, timeout=300, capture_output=True, text=True)
        if status.returncode != 0:
            raise RuntimeError(f"organisation setup failed: {status.stderr.strip()[-300:]}")

    def start_relay(self, prefix=(), env=None, expect_start=True, directory=None, wait=20):
        """Starts valised on self.port; returns None once listening, else its stderr tail."""
        directory = directory or self.relay_dir
        out_path = os.path.join(self.work, "relay.out")
        open(out_path, "w").close()
        log_path = os.path.join(self.work, "relay.log")
        logged = os.path.getsize(log_path) if os.path.exists(log_path) else 0
        stderr = open(os.path.join(self.work, "relay.log"), "ab")
        stdout = open(out_path, "wb")
        process = self.spawn([f"{self.bin}/valised", "run", "--dir", directory, "--listen", f"127.0.0.1:{self.port}"],
                             stdout=stdout, stderr=stderr, prefix=prefix, env=env)
        stdout.close()
        stderr.close()
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if "valised listening on" in open(out_path).read():
                self.relay = process
                return None
            if process.poll() is not None:
                break
            time.sleep(0.05)
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
            return f"did not listen within {wait} s"
        with open(log_path, errors="replace") as log:
            log.seek(logged)
            lines = log.read().strip().splitlines()
        errors = [line for line in lines if "error" in line] or lines[-3:]
        message = f"exited {process.returncode}: " + " | ".join(errors)
        if expect_start:
            raise RuntimeError(f"the relay did not start: {message}")
        return message

    def kill_relay(self, sig=signal.SIGKILL):
        if self.relay is not None and self.relay.poll() is None:
            signal_group(self.relay, sig)
            self.relay.wait(timeout=30)
        status = self.relay.returncode if self.relay is not None else None
        self.relay = None
        return status

    def messaging_world(self, *members, recipient=None):
        """An organisation of MEMBERS, its relay started and the directory published; the
        RECIPIENT syncs once so that its prekeys are on the relay."""
        self.organisation(*members)
        self.start_relay()
        self.publish()
        if recipient:
            self.valise(recipient, "sync", timeout=90)

    def kill_at_random(self, args, duration):
        """Runs ARGS and sends it SIGKILL at a random moment of about DURATION seconds;
        whether it was still running then."""
        process = self.spawn(args)
        time.sleep(random.uniform(0, duration * 1.3))
        killed = process.poll() is None
        if killed:
            process.kill()
        process.wait(timeout=30)
        return killed

    def tally_logs(self, count, accepted_log, delivered_log):
        """The row from valise-load's logs: ids a sender saw Accepted (one log, or a list of
        several senders' logs), ids a receiver stored."""
        accepted_logs = [accepted_log] if isinstance(accepted_log, str) else accepted_log
        accepted, delivered = set().union(*(logged(path) for path in accepted_logs)), logged(delivered_log)
        self.sent += count
        self.accepted += len(accepted)
        self.delivered += len(set(delivered) & accepted)
        self.lost += len(accepted - set(delivered))
        self.duplicates += len(delivered) - len(set(delivered))
        self.check(len(accepted) == count, f"only {len(accepted)} of {count} were accepted")

    def publish(self):
        self.run([f"{self.bin}/valise", "admin", "publish", "--relay", "hq", "--org", os.path.join(self.work, "org")])

    # -- what clients show ----------------------------------------------------------------
    def inbox(self, member):
        _, out, _ = self.valise(member, "inbox", "--json")
        return json.loads(out)["messages"]

    def texts(self, member, messages):
        """The text of each message shown (valise read --json), by id."""
        texts = {}
        for message in messages:
            _, out, _ = self.valise(member, "read", message["id"], "--json")
            texts[message["id"]] = json.loads(out)["text"]
        return texts

    def sent_states(self, member):
        _, out, _ = self.valise(member, "sent", "--json")
        return json.loads(out)["messages"]

    def sync_until_sent(self, member, attempts=5, relay=None):
        """valise sync until the outbox is empty (bounded); returns the last sync's JSON."""
        report = {}
        for _ in range(attempts):
            extra = ["--relay", relay] if relay else []
            status, out, err = self.valise(member, "sync", "--json", *extra, check=False, timeout=90)
            if status == 0:
                report = json.loads(out)
                if report.get("outboxWaiting", 1) == 0:
                    return report
            time.sleep(0.5)
        return report

    def compare(self, sender, recipient, texts_sent):
        """The contract between what the sender's `sent` says the relay accepted and what
        the recipient's inbox shows: every accepted id shown once, with the text sent, and
        no text shown under two ids. Fills accepted, delivered, lost and duplicates."""
        states = [m for m in self.sent_states(sender) if m["to"] == recipient]
        accepted = {m["id"] for m in states if m["state"] in ("accepted", "delivered")}
        waiting = [m["id"] for m in states if m["state"] == "waiting"]
        self.check(not waiting, f"{len(waiting)} messages still wait in {sender}'s outbox after the final syncs")
        shown = self.inbox(recipient)
        ids = [m["id"] for m in shown]
        texts = self.texts(recipient, shown)
        shown_texts = list(texts.values())
        self.accepted += len(accepted)
        self.delivered += len(set(ids) & accepted)
        lost = accepted - set(ids)
        self.lost += len(lost)
        self.duplicates += (len(ids) - len(set(ids))) + (len(shown_texts) - len(set(shown_texts)))
        for text in {t for t in shown_texts if shown_texts.count(t) > 1}:
            twice = [id for id, t in texts.items() if t == text]
            states_of = {m["id"]: m["state"] for m in states}
            self.problem(f"shown twice: {text!r} as {twice}, sender's states {[states_of.get(i) for i in twice]}")
        strange = [t for t in shown_texts if t not in texts_sent]
        self.check(not strange, f"{recipient} shows {len(strange)} texts that were never sent: {strange[:2]}")
        for id in sorted(lost)[:5]:
            self.problem(f"lost: {id} ({sender} -> {recipient})")
        return accepted, ids, texts
