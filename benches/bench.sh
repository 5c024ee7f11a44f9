#!/usr/bin/env bash
# benches/bench.sh -- time kubepki against the openssl-CLI baseline with hyperfine.
#
#   benches/bench.sh                 # from the repo root (or anywhere: it cd's there)
#   RUNS=20 benches/bench.sh         # more timed runs per command (default 10)
#
# Env: RUNS (10), WARMUP (2), QUICK_RUNS (100, for the millisecond commands),
#      GO_RUNS (50, for ECDSA-P256 against the Go baseline: benches/go-compare.sh),
#      EXPORT_JSON=FILE (keep hyperfine's JSON of the main run), CARGO_TARGET_DIR (honoured).
# Needs: cargo, openssl, hyperfine, /usr/bin/time, python3 or jq. hyperfine and time are
# installed with apt-get when missing.
set -euo pipefail

# ---------------------------------------------------------------------------
# The benchmarks. One line each: "NAME|PREPARE|COMMAND".
#   {kubepki}  the release binary          {baseline}  benches/openssl-baseline.sh
#   {out}      this benchmark's own scratch directory; PREPARE runs before every timed run
#   {tree}     a complete RSA-2048 tree made once by kubepki init, never written to
# Everything in BENCHMARKS runs in ONE hyperfine invocation, so the numbers are side by side.
# To add e.g. renewal (needs a fresh copy of a tree per run):
#   "kubepki certs renew all|rm -rf {out} && cp -a {tree} {out}|{kubepki} certs renew all --cert-dir {out}/pki --kubeconfig-dir {out}"
# ---------------------------------------------------------------------------
INIT='{kubepki} init --cert-dir {out}/pki --kubeconfig-dir {out} --node-name cp1 --apiserver-advertise-address 127.0.0.1 --encryption-algorithm'
BENCHMARKS=(
    "kubepki init RSA-2048|rm -rf {out}|$INIT RSA-2048"
    "kubepki init RSA-4096|rm -rf {out}|$INIT RSA-4096"
    "kubepki init ECDSA-P256|rm -rf {out}|$INIT ECDSA-P256"
    "kubepki init ECDSA-P384|rm -rf {out}|$INIT ECDSA-P384"
    "openssl baseline RSA-2048|rm -rf {out}|{baseline} {out} RSA-2048"
    "kubepki certs renew all RSA-2048|rm -rf {out} && cp -a {tree} {out}|{kubepki} certs renew all --cert-dir {out}/pki --kubeconfig-dir {out}"
)
# Commands that take a few milliseconds: no shell (-N), QUICK_RUNS runs. "NAME|COMMAND".
# e.g. "kubepki certs check-expiration|{kubepki} certs check-expiration --cert-dir {tree}/pki --kubeconfig-dir {tree}"
QUICK_BENCHMARKS=(
    "kubepki --version|{kubepki} --version"
    "kubepki certs check-expiration|{kubepki} certs check-expiration --cert-dir {tree}/pki --kubeconfig-dir {tree}"
    "kubepki certs renew (no-op, 30d)|{kubepki} certs renew all --expiring-within 30d --cert-dir {tree}/pki --kubeconfig-dir {tree}"
)
BASELINE_NAME="openssl baseline RSA-2048"   # the ratio column is BASELINE / this row
REFERENCE_NAME="kubepki init RSA-2048"      # headline ratio, tree compared with the baseline's

RUNS=${RUNS:-10}
WARMUP=${WARMUP:-2}
QUICK_RUNS=${QUICK_RUNS:-100}

cd "$(dirname "${BASH_SOURCE[0]}")/.."
say() { printf '\n== %s\n' "$*"; }

# --- tools ------------------------------------------------------------------
missing=()
command -v hyperfine >/dev/null || missing+=(hyperfine)
[[ -x /usr/bin/time ]] || missing+=(time)
if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    SUDO=()
    [[ $(id -u) -eq 0 ]] || SUDO=(sudo)
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq "${missing[@]}"
fi
for tool in cargo openssl hyperfine; do
    command -v "$tool" >/dev/null || { echo "bench.sh: $tool not found" >&2; exit 1; }
done
if command -v python3 >/dev/null; then JSONTOOL=python3
elif command -v jq >/dev/null; then JSONTOOL=jq
else echo "bench.sh: need python3 or jq to read hyperfine's JSON" >&2; exit 1; fi

# --- build ------------------------------------------------------------------
say "cargo build --release"
cargo build --release
TARGET_DIR=${CARGO_TARGET_DIR:-target}
KUBEPKI=$(cd "$TARGET_DIR/release" && pwd)/kubepki
BASELINE=$(pwd)/benches/openssl-baseline.sh
[[ -x $KUBEPKI ]] || { echo "bench.sh: no binary at $KUBEPKI" >&2; exit 1; }

WORK=$(mktemp -d -t kubepki-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
TREE=$WORK/tree
"$KUBEPKI" init --cert-dir "$TREE/pki" --kubeconfig-dir "$TREE" --node-name cp1 \
    --apiserver-advertise-address 127.0.0.1 >/dev/null

# expand TEMPLATE OUTDIR: fill in the placeholders (paths shell-quoted).
expand() {
    local s=$1
    s=${s//\{kubepki\}/$(printf %q "$KUBEPKI")}
    s=${s//\{baseline\}/$(printf %q "$BASELINE")}
    s=${s//\{tree\}/$(printf %q "$TREE")}
    s=${s//\{out\}/$(printf %q "$2")}
    printf '%s' "$s"
}

say "machine"
echo "date:      $(date -u +%FT%TZ)"
echo "cpu:       $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc) online"
echo "kernel:    $(uname -sr)"
echo "kubepki:   $("$KUBEPKI" --version) ($(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo "rustc:     $(rustc --version)"
echo "openssl:   $(openssl version)"
echo "hyperfine: $(hyperfine --version)"
echo "load avg:  $(cut -d' ' -f1-3 /proc/loadavg) (before timing)"
busy() { awk -v n="$(nproc)" '{ exit !($1 > 0.25 * n) }' /proc/loadavg; }
if busy; then
    echo "WARNING: the machine is busy (load above) -- other processes compete for the cores;"
    echo "         timings will be slower and noisier than on an idle host."
fi

# --- main run: everything that writes a tree, in one hyperfine invocation -------------
JSON=$WORK/main.json
args=(--warmup "$WARMUP" --runs "$RUNS" --export-json "$JSON")
declare -A OUTDIR=()
i=0
for b in "${BENCHMARKS[@]}"; do
    IFS='|' read -r name prep cmd <<<"$b"
    OUTDIR[$name]=$WORK/out$i
    args+=(-n "$name" --prepare "$(expand "$prep" "$WORK/out$i")" "$(expand "$cmd" "$WORK/out$i")")
    i=$((i + 1))
done
say "hyperfine: ${#BENCHMARKS[@]} commands, $RUNS runs + $WARMUP warmup each, fresh directory per run"
hyperfine "${args[@]}"
if [[ -n ${EXPORT_JSON:-} ]]; then cp "$JSON" "$EXPORT_JSON"; fi

# The last run of each command left its tree behind: the baseline must write the same PKI
# files. kubepki init also writes the cluster objects for joining workers (bootstrap/), which
# the baseline does not: that is extra work on kubepki's side of the comparison.
if [[ -n ${OUTDIR[$REFERENCE_NAME]:-} && -n ${OUTDIR[$BASELINE_NAME]:-} ]]; then
    # The lock files a run holds the tree with are not part of the PKI either.
    listing() { (cd "$1" && find . \( -path ./bootstrap -o -name .kubepki.lock \) -prune -o -printf '%M %p\n' | sort -k2); }
    if ! diff <(listing "${OUTDIR[$REFERENCE_NAME]}") <(listing "${OUTDIR[$BASELINE_NAME]}"); then
        echo "bench.sh: '$BASELINE_NAME' and '$REFERENCE_NAME' wrote different trees" >&2
        exit 1
    fi
    echo "check: '$BASELINE_NAME' wrote the same $(listing "${OUTDIR[$BASELINE_NAME]}" | wc -l) paths, same modes, as '$REFERENCE_NAME'"
fi

# --- quick commands ------------------------------------------------------------
QJSON=$WORK/quick.json
if ((${#QUICK_BENCHMARKS[@]})); then
    qargs=(-N --warmup 10 --runs "$QUICK_RUNS" --export-json "$QJSON")
    for b in "${QUICK_BENCHMARKS[@]}"; do
        IFS='|' read -r name cmd <<<"$b"
        qargs+=(-n "$name" "$(expand "$cmd" "$WORK/quick")")
    done
    say "hyperfine: ${#QUICK_BENCHMARKS[@]} quick command(s), $QUICK_RUNS runs each, no shell"
    hyperfine "${qargs[@]}"
else
    echo '{"results": []}' >"$QJSON"
fi

# --- peak RSS, binary size ------------------------------------------------------
peak_rss_kib() { # COMMAND... -> max RSS in KiB (for a script: its largest single process)
    /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F': ' '/Maximum resident set size/ {print $2}'
}
RSS_K=$(peak_rss_kib "$KUBEPKI" init --cert-dir "$WORK/rss/pki" --kubeconfig-dir "$WORK/rss" \
    --node-name cp1 --apiserver-advertise-address 127.0.0.1 --encryption-algorithm RSA-2048)
RSS_B=$(peak_rss_kib "$BASELINE" "$WORK/rss-baseline" RSA-2048)
SIZE=$(stat -c %s "$KUBEPKI")
if command -v strip >/dev/null; then
    strip -o "$WORK/kubepki.stripped" "$KUBEPKI"
    SIZE_STRIPPED=$(stat -c %s "$WORK/kubepki.stripped")
else
    SIZE_STRIPPED=$SIZE   # Cargo.toml's release profile strips already
fi

# --- report -------------------------------------------------------------------
say "results (times in ms; user/sys are means; cpu = (user+sys)/mean, 1.00 = one core busy)"
if [[ $JSONTOOL == python3 ]]; then
    python3 - "$JSON" "$QJSON" "$BASELINE_NAME" "$REFERENCE_NAME" <<'PY'
import json, sys
main = json.load(open(sys.argv[1]))["results"]
quick = json.load(open(sys.argv[2]))["results"]
base_name, ref_name = sys.argv[3], sys.argv[4]
by = {r["command"]: r for r in main}
base = by.get(base_name)
ms = lambda s: s * 1000.0
rows = [("command", "median", "mean ± σ", "min", "max", "user", "sys", "cpu", "runs",
         "baseline/this")]
def row(r, ratio):
    cpu = (r["user"] + r["system"]) / r["mean"] if r["mean"] else 0.0
    fmt = "{:.1f}" if r["median"] >= 0.1 else "{:.2f}"
    rows.append((r["command"], fmt.format(ms(r["median"])),
                 (fmt + " ± " + fmt).format(ms(r["mean"]), ms(r["stddev"] or 0.0)),
                 fmt.format(ms(r["min"])), fmt.format(ms(r["max"])),
                 fmt.format(ms(r["user"])), fmt.format(ms(r["system"])),
                 "{:.2f}".format(cpu), str(len(r["times"])), ratio))
for r in main:
    row(r, "{:.1f}×".format(base["median"] / r["median"]) if base else "-")
for r in quick:
    row(r, "-")
w = [max(len(x[i]) for x in rows) for i in range(len(rows[0]))]
for n, x in enumerate(rows):
    print("  ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(x)))
    if n == 0:
        print("  ".join("-" * k for k in w))
ref = by.get(ref_name)
if base and ref:
    print("\n{} / {} = {:.1f}× (medians {:.0f} ms / {:.0f} ms)".format(
        base_name, ref_name, base["median"] / ref["median"], ms(base["median"]), ms(ref["median"])))
PY
else
    jq -r --arg b "$BASELINE_NAME" --slurpfile q "$QJSON" '
        ([.results[] | select(.command == $b) | .median] | first) as $base
        | (["command", "median", "user", "sys", "baseline/this"] | @tsv),
          (.results[] | [.command, (.median * 1000 | floor), (.user * 1000 | floor),
                         (.system * 1000 | floor),
                         (if $base then (($base / .median * 10 | round) / 10 | tostring) + "×" else "-" end)] | @tsv),
          ($q[0].results[] | [.command, (.median * 1000000 | floor / 1000), (.user * 1000 | floor),
                              (.system * 1000 | floor), "-"] | @tsv)' "$JSON" | column -t -s $'\t'
fi
echo
echo "peak RSS, kubepki init RSA-2048:            $((RSS_K / 1024)) MiB ($RSS_K KiB)"
echo "peak RSS, openssl baseline (largest child): $((RSS_B / 1024)) MiB ($RSS_B KiB)"
echo "load avg after timing: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "release binary: $SIZE bytes; stripped: $SIZE_STRIPPED bytes ($(awk "BEGIN{printf \"%.1f\", $SIZE_STRIPPED/1048576}") MiB)"

# --- ECDSA-P256 init against the Go baseline: its own hyperfine run -------------------
say "kubepki init ECDSA-P256 against the Go baseline (benches/go-compare.sh)"
KUBEPKI=$KUBEPKI RUNS=${GO_RUNS:-50} benches/go-compare.sh
