"""Peer brokers for scripts/bench --peers (see bench_peers.py)."""
