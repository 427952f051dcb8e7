# Sourced by scripts/test, scripts/demo and the other scripts: installs what the build needs
# when it is missing, so that a fresh Debian machine needs no step by hand.

# Debian packages the build needs: libsodium (all cryptography), SQLite (storage), pkg-config
# (how SwiftPM finds libsodium).
VALISE_APT_PACKAGES=(libsodium-dev libsqlite3-dev pkg-config)

# The build the scripts share: scripts/test builds with the Postgres trait (issue 19), and
# crash-test, faults, fuzz's seed maker, manuals and bench pass the same flags, so that they
# reuse that build: a trait change recompiles the whole package. scripts/demo alone keeps the
# default build (no trait), the one a clean clone must always build.
VALISE_SWIFT_TRAITS=(--traits Postgres)

valise_say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

valise_ensure_packages() {
    local missing=()
    for package in "${VALISE_APT_PACKAGES[@]}" "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    valise_say "installing ${missing[*]}"
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
}

valise_ensure_swift() {
    if ! command -v swift >/dev/null 2>&1; then
        [ -x /opt/swift/usr/bin/swift ] && export PATH="/opt/swift/usr/bin:$PATH"
    fi
    command -v swift >/dev/null 2>&1 || { echo "error: Swift 6.1 or later is required (https://swift.org/install)" >&2; exit 1; }
}

valise_prerequisites() {
    valise_ensure_swift
    valise_ensure_packages "$@"
}
