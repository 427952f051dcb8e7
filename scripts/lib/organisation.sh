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
    for member in "$@"; do valise_enroll "$work" "$bin" "$member"; done
    valise_quietly "$work" "$bin/valise" admin bundle --out "$work/org.bundle" "${org[@]}"
    for member in "$@"; do
        valise_quietly "$work" "$bin/valise" init --home "$work/$member" --org-bundle "$work/org.bundle"
    done
}

valise_start_relay() {
    local work=$1 bin=$2 port=$3
    shift 3
    valise_start_named_relay "$work" "$bin" relay "$port" "$@"
    relay_pid=$named_relay_pid
}

valise_publish() {
    valise_quietly "$1" "$2/valise" admin publish --relay hq --org "$1/org"
}

valise_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Two relays, for the federation runs: "hq" at 127.0.0.1:PORT_HQ (in WORK/relay) and
# "geneva" at 127.0.0.1:PORT_GENEVA (in WORK/relay-geneva). The members listed before "--"
# are homed at hq, those after it at geneva. geneva starts from a bundle that lists hq, so
# it admits hq's link; the admin publishes once, to hq, and hq passes the entries on.
#
#   valise_federated_organisation WORK BIN PORT_HQ PORT_GENEVA HQ_MEMBER... -- GENEVA_MEMBER...
#   valise_start_named_relay WORK BIN DIR PORT [ARG...]  starts valised in WORK/DIR (log
#                                                   WORK/DIR.log); sets named_relay_pid; waits (bounded)
#   valise_wait_directory WORK BIN DIR COUNT       until WORK/DIR holds COUNT entries (bounded)
valise_federated_organisation() {
    local work=$1 bin=$2 port_hq=$3 port_geneva=$4
    shift 4
    local org=(--org "$work/org") insecure=(--kdf-profile insecure-test) member fingerprint home=hq all=()
    valise_quietly "$work" "$bin/valise" admin init --name Ministry --admin-name registrar "${org[@]}" "${insecure[@]}"
    valise_quietly "$work" "$bin/valise" admin bundle --out "$work/genesis.bundle" "${org[@]}"
    valise_quietly "$work" "$bin/valised" init --dir "$work/relay" --org-bundle "$work/genesis.bundle" --unencrypted-key
    valise_quietly "$work" "$bin/valise" admin add-relay --name hq --address "127.0.0.1:$port_hq" --relay-pub "$work/relay/relay.pub" "${org[@]}"
    valise_quietly "$work" "$bin/valise" admin bundle --out "$work/hq.bundle" "${org[@]}"
    valise_quietly "$work" "$bin/valised" init --dir "$work/relay-geneva" --org-bundle "$work/hq.bundle" --unencrypted-key
    valise_quietly "$work" "$bin/valise" admin add-relay --name geneva --address "127.0.0.1:$port_geneva" \
        --relay-pub "$work/relay-geneva/relay.pub" "${org[@]}"
    for member in "$@"; do
        if [ "$member" = "--" ]; then home=geneva; continue; fi
        all+=("$member")
        valise_enroll "$work" "$bin" "$member" --home-relay "$home"
    done
    valise_quietly "$work" "$bin/valise" admin bundle --out "$work/org.bundle" "${org[@]}"
    for member in "${all[@]}"; do
        valise_quietly "$work" "$bin/valise" init --home "$work/$member" --org-bundle "$work/org.bundle"
    done
}

# A member's device keys (insecure-test profile), enrolled by its fingerprint; extra
# arguments go to `admin enroll` (--home-relay NAME).
valise_enroll() {
    local work=$1 bin=$2 member=$3 fingerprint
    shift 3
    valise_quietly "$work" "$bin/valise" init --name "$member" --home "$work/$member" --kdf-profile insecure-test
    fingerprint=$("$bin/valise" whoami --home "$work/$member" --json 2>>"$work/setup.log" \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["fingerprint"])')
    valise_quietly "$work" "$bin/valise" admin enroll "$work/$member/enrollment.request" --expect-fingerprint "$fingerprint" \
        "$@" --org "$work/org"
}

valise_start_named_relay() {
    local work=$1 bin=$2 dir=$3 port=$4
    shift 4
    "$@" "$bin/valised" run --dir "$work/$dir" --listen "127.0.0.1:$port" >"$work/$dir.out" 2>>"$work/$dir.log" &
    named_relay_pid=$!
    local _
    for _ in $(seq 1 400); do
        grep -q "^valised listening on " "$work/$dir.out" 2>/dev/null && return 0
        kill -0 "$named_relay_pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "error: the relay in $dir did not start" >&2
    tail -20 "$work/$dir.log" >&2
    exit 1
}

valise_wait_directory() {
    local work=$1 bin=$2 dir=$3 count=$4 _ have
    for _ in $(seq 1 300); do
        have=$("$bin/valise" directory verify "$work/$dir/organisation.bundle" --json 2>/dev/null \
            | python3 -c 'import json, sys; print(json.load(sys.stdin)["entries"])' 2>/dev/null || echo 0)
        [ "$have" = "$count" ] && return 0
        sleep 0.1
    done
    echo "error: the relay in $dir did not receive the directory from its links (has $have of $count entries)" >&2
    tail -20 "$work/$dir.log" >&2
    exit 1
}
