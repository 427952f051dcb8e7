"""Settings the relay benchmarks share (scripts/lib/bench_relay.py, bench_federated.py)."""

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
