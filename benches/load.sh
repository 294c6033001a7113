#!/usr/bin/env bash
# Load and memory benchmark of hookgate against nginx on one machine, all on 127.0.0.1.
# Run by hand, never by CI: it takes about 9 minutes with the defaults and needs the whole
# machine. BENCHMARKS.md shows the results and explains the method.
#
#   benches/load.sh                          # build hookgate, run everything
#   ROUNDS=1 DURATION=5 MEMORY=0 benches/load.sh   # a quick, noisier look
#
# Settings, from the environment, with their defaults:
#   ROUNDS=3            measured rounds; each round runs every config at every size
#   DURATION=10         seconds per measured run
#   WARMUP=2            seconds of the warm-up run per config and size
#   CONNECTIONS=64      wrk connections
#   SIZES="1024 65536"  body sizes in bytes
#   CONFIGS             the seven configs below, or a subset
#   LOAD=1 MEMORY=1     0 skips the load runs or the memory scenarios
#   OUT_DIR=/tmp/hookgate-load   raw results and summary.md; emptied first
#   BASE_PORT=18080     ports BASE_PORT+1 to BASE_PORT+8 must be free
#   HOOKGATE_BIN        a prebuilt binary to measure; without it, load.sh runs
#                       `cargo build --release --locked` (into CARGO_TARGET_DIR, else target/)
#                       so that the binary matches the source tree
#   PINGORA_BIN         a prebuilt `pingora-passthrough` example; built beside hookgate
#                       unless set
#
# Configs, each measured at every body size:
#   direct              wrk straight to the upstream
#   nginx               nginx proxy_pass in front of the upstream
#   pingora             plain Pingora passthrough (benches/load/pingora_passthrough.rs):
#                       what the framework costs without hookgate's pipeline
#   none                hookgate, route without verification or replay detection
#   github, stripe, standard-webhooks
#                       hookgate verifying that scheme, replay detection on; every request
#                       is a fresh delivery signed just before the run
# wrk and the upstream (nginx `return 200`) share core 0; the proxy under test runs alone on
# core 1 (hookgate with one worker thread, nginx with one worker process).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE=$ROOT/benches/load
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${HOOKGATE_BIN:-$TARGET/release/hookgate}
BUILD=$([[ -n ${HOOKGATE_BIN:-} ]] && echo 0 || echo 1)
OUT=${OUT_DIR:-/tmp/hookgate-load}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-64}
SIZES=${SIZES:-"1024 65536"}
CONFIGS=${CONFIGS:-"direct nginx pingora none github stripe standard-webhooks"}
LOAD=${LOAD:-1}
MEMORY=${MEMORY:-1}
BASE_PORT=${BASE_PORT:-18080}

LOAD_CORE=0
PROXY_CORE=1
UPSTREAM_PORT=$((BASE_PORT + 1))
NGINX_PORT=$((BASE_PORT + 2))
HOOKGATE_PORT=$((BASE_PORT + 3))
HOOKGATE_ADMIN_PORT=$((BASE_PORT + 4))
MEMORY_HOOKGATE_PORT=$((BASE_PORT + 5))
MEMORY_HOOKGATE_ADMIN_PORT=$((BASE_PORT + 6))
MEMORY_NGINX_PORT=$((BASE_PORT + 7))
PINGORA_PORT=$((BASE_PORT + 8))

# Deliveries in a cycled list for configs without replay detection.
CYCLED_LIST_ENTRIES=1000
# A signed list contains this many times the deliveries expected in a run, so none repeats.
LIST_MARGIN=1.5

STARTED_PIDS=()

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Stops a process this script started: SIGTERM (SIGINT for hookgate, which then exits at
# once), then SIGKILL after 5 s.
stop_process() {
    local pid=$1 signal=${2:-TERM}
    kill -0 "$pid" 2>/dev/null || return 0
    kill -"$signal" "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    log "process $pid did not stop within 5 s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# Drops a pid that has exited from the cleanup list, so that cleanup never signals a later
# process that got the same pid.
forget_pid() {
    local pid=$1 kept=() other
    for other in "${STARTED_PIDS[@]}"; do
        [[ $other == "$pid" ]] || kept+=("$other")
    done
    STARTED_PIDS=("${kept[@]}")
}

cleanup() {
    local pid
    for pid in "${STARTED_PIDS[@]}"; do
        stop_process "$pid" TERM
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

install_tools() {
    local missing=()
    command -v wrk >/dev/null || missing+=(wrk)
    command -v nginx >/dev/null || missing+=(nginx-light)
    if ((${#missing[@]})); then
        [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null ||
            die "missing ${missing[*]}; install them (Debian: apt-get install -y wrk nginx-light)"
        log "installing ${missing[*]} from Debian"
        apt-get install -y -q "${missing[@]}" >/dev/null ||
            { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; } ||
            die "apt-get install ${missing[*]} failed"
    fi
    local tool
    for tool in taskset python3 curl ss timeout; do
        command -v "$tool" >/dev/null || die "$tool not found"
    done
}

check_machine() {
    (($(nproc) >= 2)) || die "2 cores needed (core 0 for load, core 1 for the proxy), but nproc is $(nproc)"
    # 10 000 client connections, plus upstream connections and files, in one process.
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    NOFILE=$(ulimit -n)
    [[ $NOFILE == unlimited ]] && NOFILE=65536 && ulimit -n "$NOFILE"
    ((NOFILE >= 12000)) || die "open-file limit $NOFILE is below the 12000 needed; raise it with ulimit -n"
    local port
    for port in $(seq $((BASE_PORT + 1)) $((BASE_PORT + 8))); do
        if ss -Htln "sport = :$port" | grep -q .; then
            die "port $port is in use; stop its process or set BASE_PORT"
        fi
    done
}

build_hookgate() {
    if [[ $BUILD == 1 ]]; then
        log "building hookgate (release) into $TARGET"
        (cd "$ROOT" && CARGO_TARGET_DIR=$TARGET cargo build --release --locked -q) ||
            die "cargo build --release failed"
    fi
    [[ -x $BIN ]] || die "no hookgate binary at $BIN; set HOOKGATE_BIN"
    if [[ -z ${PINGORA_BIN:-} ]]; then
        (cd "$ROOT" && CARGO_TARGET_DIR=$TARGET cargo build --release --locked -q \
            --example pingora-passthrough) || die "cargo build --example pingora-passthrough failed"
    fi
    PINGORA_BIN=${PINGORA_BIN:-$TARGET/release/examples/pingora-passthrough}
    [[ -x $PINGORA_BIN ]] || die "no pingora-passthrough binary at $PINGORA_BIN; set PINGORA_BIN"
}

# Names the source the binary was built from: the commit, and whether the tree differed.
describe_source() {
    [[ $BUILD == 1 ]] || { echo "prebuilt $BIN"; return; }
    local commit changes
    commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null) || { echo "not a git tree"; return; }
    changes=$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock | wc -l)
    if ((changes == 0)); then
        echo "commit $commit"
    else
        echo "commit $commit with $changes uncommitted changes under src/ or Cargo.*"
    fi
}

# Fills a template's @NAME@ placeholders from NAME=VALUE arguments.
render() {
    local template=$1 out=$2
    shift 2
    local script=() pair
    for pair in "$@"; do
        script+=(-e "s|@${pair%%=*}@|${pair#*=}|g")
    done
    sed "${script[@]}" "$template" >"$out"
    ! grep -q '@[A-Z_]*@' "$out" || die "unfilled placeholder in $out"
}

wait_for_port() {
    local port=$1
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.1
    done
    die "nothing listens on port $port after 10 s"
}

# Starts nginx in the foreground on a core. Sets NGINX_MASTER and NGINX_WORKER.
start_nginx() {
    local name=$1 template=$2 core=$3 port=$4
    mkdir -p "$OUT/$name-temp"
    render "$template" "$OUT/$name.conf" DIR="$OUT" NAME="$name" PORT="$port" \
        UPSTREAM_PORT="$UPSTREAM_PORT" NOFILE="$NOFILE"
    nginx -t -q -p "$OUT" -e "$OUT/$name-error.log" -c "$OUT/$name.conf" ||
        die "nginx rejected $OUT/$name.conf"
    taskset -c "$core" nginx -p "$OUT" -e "$OUT/$name-error.log" -c "$OUT/$name.conf" \
        -g 'daemon off;' &
    NGINX_MASTER=$!
    STARTED_PIDS+=("$NGINX_MASTER")
    wait_for_port "$port"
    NGINX_WORKER=$(pgrep -P "$NGINX_MASTER" | head -n1)
    [[ -n $NGINX_WORKER ]] || die "nginx $name has no worker process"
}

# Starts hookgate on core 1. Sets HOOKGATE_PID.
start_hookgate() {
    local name=$1 port=$2 admin_port=$3
    render "$HERE/hookgate.yaml.in" "$OUT/$name.yaml" PORT="$port" ADMIN_PORT="$admin_port" \
        UPSTREAM_PORT="$UPSTREAM_PORT"
    "$BIN" check -c "$OUT/$name.yaml" >/dev/null || die "hookgate check failed on $OUT/$name.yaml"
    taskset -c "$PROXY_CORE" "$BIN" run -c "$OUT/$name.yaml" --log-level warn \
        >"$OUT/$name.log" 2>&1 &
    HOOKGATE_PID=$!
    STARTED_PIDS+=("$HOOKGATE_PID")
    wait_for_port "$port"
    wait_for_port "$admin_port"
}

# Starts the plain Pingora proxy on core 1. Sets PINGORA_PID.
start_pingora() {
    taskset -c "$PROXY_CORE" "$PINGORA_BIN" "127.0.0.1:$PINGORA_PORT" "127.0.0.1:$UPSTREAM_PORT" \
        >"$OUT/pingora.log" 2>&1 &
    PINGORA_PID=$!
    STARTED_PIDS+=("$PINGORA_PID")
    wait_for_port "$PINGORA_PORT"
}

write_secrets() {
    mkdir -p "$OUT/secrets"
    printf 'bench-github-%s' "$(head -c 12 /dev/urandom | base64)" >"$OUT/secrets/github"
    printf 'whsec_bench%s' "$(head -c 18 /dev/urandom | base64 | tr '+/' 'ab')" >"$OUT/secrets/stripe"
    printf 'whsec_%s' "$(head -c 24 /dev/urandom | base64)" >"$OUT/secrets/standard-webhooks"
}

url_of() {
    local config=$1
    case $config in
        direct) echo "http://127.0.0.1:$UPSTREAM_PORT/hooks/none" ;;
        nginx) echo "http://127.0.0.1:$NGINX_PORT/hooks/none" ;;
        pingora) echo "http://127.0.0.1:$PINGORA_PORT/hooks/none" ;;
        *) echo "http://127.0.0.1:$HOOKGATE_PORT/hooks/$config" ;;
    esac
}

proxy_pid_of() {
    case $1 in
        direct) echo "" ;;
        nginx) echo "$PROXY_NGINX_WORKER" ;;
        pingora) echo "$PINGORA_PID" ;;
        *) echo "$HOOKGATE_PID" ;;
    esac
}

# Records CPU counters, and hookgate's request counters, around a run.
snapshot() {
    local proxy_pid=$1
    echo "time $(date +%s.%N)"
    grep -E '^cpu[0-9]+ ' /proc/stat
    [[ -z $proxy_pid ]] || echo "proxy $(cat "/proc/$proxy_pid/stat")"
    echo "upstream $(cat "/proc/$UPSTREAM_WORKER/stat")"
    curl -sf --max-time 5 "http://127.0.0.1:$HOOKGATE_ADMIN_PORT/metrics" |
        grep -E '^hookgate_(requests_total|rejections_total|upstream_responses_total)\{' || true
}

# Writes the request list for one run and prints its path. Signed lists are written fresh,
# just before their run, with enough deliveries that none repeats.
request_list() {
    local config=$1 size=$2 seconds=$3
    if [[ $config == direct || $config == nginx || $config == pingora || $config == none ]]; then
        echo "$OUT/lists/none-$size.txt"
        return
    fi
    local estimate=${ESTIMATE[$config-$size]:-}
    local count
    if [[ -z $estimate ]]; then
        # Nothing measured yet (warm-up): more deliveries than one core can verify.
        count=$(((size <= 4096 ? 60000 : 25000) * seconds))
    else
        count=$(python3 -c "import math; print(math.ceil($estimate * $seconds * $LIST_MARGIN) + 2000)")
    fi
    local list="$OUT/lists/$config-$size.txt"
    taskset -c "$LOAD_CORE" timeout 300 python3 "$HERE/gen_requests.py" --provider "$config" \
        --size "$size" --count "$count" --secrets "$OUT/secrets" --out "$list" 2>>"$OUT/gen.log" ||
        die "gen_requests.py failed; see $OUT/gen.log"
    echo "$list"
}

# Runs wrk once and writes the results to $OUT/runs/NAME.*.
run_wrk() {
    local name=$1 config=$2 size=$3 seconds=$4
    local list url proxy_pid
    list=$(request_list "$config" "$size" "$seconds")
    url=$(url_of "$config")
    proxy_pid=$(proxy_pid_of "$config")

    local result=$OUT/runs/$name.wrk sync=$OUT/runs/$name.sync
    # requests.lua loads the list, creates SYNC.ready and waits for SYNC.go before wrk sends
    # anything, so the counters read in between cover exactly this run, without the loading.
    timeout $((seconds + 120)) taskset -c "$LOAD_CORE" wrk -t1 -c"$CONNECTIONS" \
        -d"${seconds}s" --timeout 5s --latency -s "$HERE/requests.lua" "$url" -- "$list" "$sync" \
        >"$result" 2>&1 &
    local wrk_pid=$!
    STARTED_PIDS+=("$wrk_pid")
    while [[ ! -e $sync.ready ]] && kill -0 "$wrk_pid" 2>/dev/null; do
        sleep 0.01
    done
    snapshot "$proxy_pid" >"$OUT/runs/$name.before"
    touch "$sync.go"
    wait "$wrk_pid" || die "wrk failed on $config $size; see $result"
    forget_pid "$wrk_pid"
    snapshot "$proxy_pid" >"$OUT/runs/$name.after"

    printf 'config %s\nsize %s\nlist_entries %s\n' "$config" "$size" \
        "$(($(wc -l <"$list") - 2))" >"$OUT/runs/$name.meta"
    local rps
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$OUT/runs/$name.wrk")
    [[ -n $rps ]] || die "no Requests/sec in $OUT/runs/$name.wrk"

    local key=$config-$size
    if [[ -z ${ESTIMATE[$key]:-} ]] || python3 -c "import sys; sys.exit(not $rps > ${ESTIMATE[$key]})"; then
        ESTIMATE[$key]=$rps
    fi
    log "$(printf '%-8s %-18s %6s B  %9s req/s  %s' "$name" "$config" "$size" "$rps" \
        "$(grep -E 'Non-2xx|Socket errors|list restarted' "$OUT/runs/$name.wrk" | tr '\n' ' ')")"
}

run_load() {
    mkdir -p "$OUT/runs" "$OUT/lists"
    local size config round
    for size in $SIZES; do
        taskset -c "$LOAD_CORE" python3 "$HERE/gen_requests.py" --provider none --size "$size" \
            --count "$CYCLED_LIST_ENTRIES" --secrets "$OUT/secrets" \
            --out "$OUT/lists/none-$size.txt" 2>>"$OUT/gen.log"
    done

    log "warm-up: $WARMUP s per config and size"
    for size in $SIZES; do
        for config in $CONFIGS; do
            run_wrk "warmup-$size-$config" "$config" "$size" "$WARMUP"
        done
    done

    # Configs are interleaved, and each round starts one config later, so that drift in
    # the machine's speed spreads over all of them.
    local configs=($CONFIGS)
    for round in $(seq "$ROUNDS"); do
        log "round $round of $ROUNDS: $DURATION s per run"
        for size in $SIZES; do
            local i
            for i in "${!configs[@]}"; do
                config=${configs[$(((i + round - 1) % ${#configs[@]}))]}
                run_wrk "r$round-$size-$config" "$config" "$size" "$DURATION"
            done
        done
    done
}

# Runs one memory scenario against a fresh server, so that its peak RSS is this scenario's.
memory_scenario() {
    local server=$1 scenario=$2
    local pids=() port metrics=""
    if [[ $server == hookgate ]]; then
        start_hookgate "memory-hookgate" "$MEMORY_HOOKGATE_PORT" "$MEMORY_HOOKGATE_ADMIN_PORT"
        pids=(--pid "$HOOKGATE_PID")
        port=$MEMORY_HOOKGATE_PORT
        metrics="http://127.0.0.1:$MEMORY_HOOKGATE_ADMIN_PORT/metrics"
    else
        start_nginx memory-nginx "$HERE/nginx-proxy.conf.in" "$PROXY_CORE" "$MEMORY_NGINX_PORT"
        pids=(--pid "$NGINX_MASTER" --pid "$NGINX_WORKER")
        port=$MEMORY_NGINX_PORT
    fi
    sleep 1

    local args=()
    if [[ $scenario == uploads ]]; then
        args=(uploads --connections 1000 --size 65536 --url-path /hooks/github --provider github
            --route github --metrics "$metrics")
    else
        args=(idle --connections 10000 --size 256 --url-path /hooks/none)
    fi
    log "memory: $server, $scenario"
    taskset -c "$LOAD_CORE" timeout 300 python3 "$HERE/client.py" "${args[@]}" --port "$port" \
        --secrets "$OUT/secrets" "${pids[@]}" >"$OUT/memory-$server-$scenario.json" ||
        die "memory scenario $server $scenario failed"

    if [[ $server == hookgate ]]; then
        stop_process "$HOOKGATE_PID" INT
        forget_pid "$HOOKGATE_PID"
    else
        stop_process "$NGINX_MASTER" TERM
        forget_pid "$NGINX_MASTER"
    fi
}

run_memory() {
    local server scenario
    for server in hookgate nginx; do
        for scenario in uploads idle; do
            memory_scenario "$server" "$scenario"
        done
    done
}

main() {
    local started=$SECONDS
    install_tools
    check_machine
    build_hookgate
    SOURCE=$(describe_source)
    rm -rf "$OUT"
    mkdir -p "$OUT"
    write_secrets
    declare -gA ESTIMATE=()

    start_nginx upstream "$HERE/nginx-upstream.conf.in" "$LOAD_CORE" "$UPSTREAM_PORT"
    UPSTREAM_WORKER=$NGINX_WORKER
    start_nginx proxy "$HERE/nginx-proxy.conf.in" "$PROXY_CORE" "$NGINX_PORT"
    PROXY_NGINX_WORKER=$NGINX_WORKER
    start_hookgate hookgate "$HOOKGATE_PORT" "$HOOKGATE_ADMIN_PORT"
    start_pingora

    timeout 30 python3 "$HERE/client.py" check --port "$HOOKGATE_PORT" --secrets "$OUT/secrets" \
        --path /hooks/none=none --path /hooks/github=github --path /hooks/stripe=stripe \
        --path /hooks/standard-webhooks=standard-webhooks >/dev/null ||
        die "a signed request through hookgate did not get 200 ok"
    timeout 30 python3 "$HERE/client.py" check --port "$NGINX_PORT" --secrets "$OUT/secrets" \
        --path /hooks/none=none >/dev/null || die "a request through nginx did not get 200 ok"
    timeout 30 python3 "$HERE/client.py" check --port "$PINGORA_PORT" --secrets "$OUT/secrets" \
        --path /hooks/none=none >/dev/null || die "a request through Pingora did not get 200 ok"

    {
        echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
        echo "kernel: $(uname -r)"
        echo "hookgate: $("$BIN" --version 2>&1 | head -n1), $SOURCE"
        echo "rustc: $(rustc --version 2>/dev/null || echo unknown)"
        echo "nginx: $(nginx -v 2>&1 | sed 's/^nginx version: //')"
        echo "wrk: $(wrk -v 2>&1 | head -n1 | awk '{print $2}')"
        echo "settings: ROUNDS=$ROUNDS DURATION=$DURATION WARMUP=$WARMUP CONNECTIONS=$CONNECTIONS SIZES=\"$SIZES\""
    } >"$OUT/machine.txt"

    if [[ $LOAD == 1 ]]; then
        run_load
    fi
    if [[ $MEMORY == 1 ]]; then
        run_memory
    fi
    python3 "$HERE/summarize.py" "$OUT" >"$OUT/summary.md"
    cat "$OUT/summary.md"
    log "done in $((SECONDS - started)) s; raw results in $OUT"
}

main "$@"
