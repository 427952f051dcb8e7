# Sourced by scripts/crash-test and scripts/bench: an organisation for automated runs, with
# the insecure-test key-derivation profile (fast, and labelled as such in every keystore).
#
#   valise_organisation WORK BIN PORT MEMBER...   admin, relay "hq" at 127.0.0.1:PORT, members
#   valise_start_relay WORK BIN PORT [ARG...]     starts valised; sets relay_pid; waits (bounded)
#   valise_publish WORK BIN                       publishes the directory to the running relay
# Every key file is encrypted with $VALISE_PASSPHRASE, which the caller sets.

valise_quietly() {
    local work=$1
    shift
    "$@" >>"$work/setup.log" 2>&1 || {
        echo "error: setup failed: $*" >&2
        tail -20 "$work/setup.log" >&2
        exit 1
    }
}

valise_organisation() {
    local work=$1 bin=$2 port=$3
    shift 3
    local org=(--org "$work/org") insecure=(--kdf-profile insecure-test) member fingerprint
    valise_quietly "$work" "$bin/valise" admin init --name Ministry --admin-name registrar "${org[@]}" "${insecure[@]}"
    valise_quietly "$work" "$bin/valise" admin bundle --out "$work/genesis.bundle" "${org[@]}"
    valise_quietly "$work" "$bin/valised" init --dir "$work/relay" --org-bundle "$work/genesis.bundle" --unencrypted-key
    valise_quietly "$work" "$bin/valise" admin add-relay --name hq --address "127.0.0.1:$port" --relay-pub "$work/relay/relay.pub" "${org[@]}"
    for member in "$@"; do
        valise_quietly "$work" "$bin/valise" init --name "$member" --home "$work/$member" "${insecure[@]}"
        fingerprint=$("$bin/valise" whoami --home "$work/$member" --json 2>>"$work/setup.log" \
            | python3 -c 'import json, sys; print(json.load(sys.stdin)["fingerprint"])')
        valise_quietly "$work" "$bin/valise" admin enroll "$work/$member/enrollment.request" --expect-fingerprint "$fingerprint" "${org[@]}"
    done
    valise_quietly "$work" "$bin/valise" admin bundle --out "$work/org.bundle" "${org[@]}"
    for member in "$@"; do
        valise_quietly "$work" "$bin/valise" init --home "$work/$member" --org-bundle "$work/org.bundle"
    done
}

valise_start_relay() {
    local work=$1 bin=$2 port=$3
    shift 3
    "$@" "$bin/valised" run --dir "$work/relay" --listen "127.0.0.1:$port" >"$work/relay.out" 2>>"$work/relay.log" &
    relay_pid=$!
    local _
    for _ in $(seq 1 400); do
        grep -q "^valised listening on " "$work/relay.out" 2>/dev/null && return 0
        kill -0 "$relay_pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "error: the relay did not start" >&2
    tail -20 "$work/relay.log" >&2
    exit 1
}

valise_publish() {
    valise_quietly "$1" "$2/valise" admin publish --relay hq --org "$1/org"
}

valise_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
