#!/usr/bin/env bash
# benches/hostile-join.sh -- peak memory and time to give up of `kubepki join` against hostile
# TLS servers on 127.0.0.1 (#12): one answering 200 with an endless body, one sending one byte
# a second.
#
#   benches/hostile-join.sh                    # the release build (cargo build --release)
#   benches/hostile-join.sh /tmp/kubepki-old   # any kubepki binary, e.g. an older one
#
# Env: DISCOVERY_TIMEOUT (25s), LIMIT_SECONDS (30), LIMIT_MIB (2048).
# Each run is watched: its VmHWM is read every 20 ms, and it is killed past LIMIT_MIB of
# resident memory or LIMIT_SECONDS (the line then says so); prlimit also caps its address
# space at LIMIT_MIB + 1 GiB, so a run that eats memory cannot take the machine down.
# Needs: python3, prlimit (util-linux).
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${1:-}
if [ -z "$bin" ]; then
    cargo build --release --quiet
    bin=target/release/kubepki
fi
timeout=${DISCOVERY_TIMEOUT:-25s}
limit_seconds=${LIMIT_SECONDS:-30}
limit_mib=${LIMIT_MIB:-2048}
work=$(mktemp -d)
server=
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT

# The server: answers every request after reading its head, each connection for at most 60 s.
cat >"$work/server.py" <<'EOF'
import socket, ssl, sys, threading, time

cert, key, mode, portfile = sys.argv[1:5]
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(8)
listener.settimeout(1)
with open(portfile, "w") as f:
    f.write(str(listener.getsockname()[1]))
head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n"

def serve(tcp):
    started = time.monotonic()
    try:
        tls = context.wrap_socket(tcp, server_side=True)
        request = b""
        while b"\r\n\r\n" not in request and len(request) < 16384:
            data = tls.recv(4096)
            if not data:
                return
            request += data
        if mode == "trickle":
            for byte in (head + b"x" * 60)[:60]:
                tls.sendall(bytes([byte]))
                time.sleep(1)
            return
        tls.sendall(head)
        while time.monotonic() - started < 60:
            tls.sendall(b"x" * 65536)
    except OSError:
        pass
    finally:
        tcp.close()

stop = time.monotonic() + 300
while time.monotonic() < stop:
    try:
        tcp, _ = listener.accept()
    except socket.timeout:
        continue
    threading.Thread(target=serve, args=(tcp,), daemon=True).start()
EOF

# The watcher: runs the command, polls its VmHWM, kills it past the limits.
cat >"$work/watch.py" <<'EOF'
import os, signal, subprocess, sys, time

limit_kib, limit_seconds = int(sys.argv[1]) * 1024, float(sys.argv[2])
started = time.monotonic()
child = subprocess.Popen(sys.argv[3:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
peak_kib, killed = 0, ""
while child.poll() is None:
    try:
        with open(f"/proc/{child.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    peak_kib = max(peak_kib, int(line.split()[1]))
    except OSError:
        pass
    elapsed = time.monotonic() - started
    if peak_kib > limit_kib or elapsed > limit_seconds:
        killed = f", killed past the limit after {elapsed:.1f} s"
        child.kill()
        child.wait()
        break
    time.sleep(0.02)
elapsed = time.monotonic() - started
stderr = child.stderr.read().decode(errors="replace").strip()
print(f"  exit {child.returncode} after {elapsed:.2f} s, peak RSS {peak_kib / 1024:.1f} MiB{killed}")
if stderr:
    print(f"  stderr: {stderr}")
EOF

"$bin" init --cert-dir "$work/cp/pki" --kubeconfig-dir "$work/cp" --node-name cp1 \
    --apiserver-advertise-address 127.0.0.1 --encryption-algorithm ECDSA-P256 >/dev/null
for mode in body trickle; do
    rm -f "$work/port"
    python3 "$work/server.py" "$work/cp/pki/apiserver.crt" "$work/cp/pki/apiserver.key" \
        "$mode" "$work/port" &
    server=$!
    for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
    echo "$bin join against a server sending $([ "$mode" = body ] && echo 'an endless body' || echo 'one byte a second'), --discovery-timeout $timeout:"
    prlimit --as=$(((limit_mib + 1024) * 1024 * 1024)) -- \
        python3 "$work/watch.py" "$limit_mib" "$limit_seconds" \
        "$bin" join "127.0.0.1:$(cat "$work/port")" --token abcdef.0123456789abcdef \
        --discovery-token-unsafe-skip-ca-verification --discovery-timeout "$timeout" \
        --cert-dir "$work/worker/pki" --kubeconfig-dir "$work/worker"
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    server=
done
