#!/usr/bin/env python3
"""Turn the raw results of load.sh (one folder) into Markdown tables on stdout.

Per config and body size: requests/s (median and range over rounds), p50 and p99 latency
(medians), the per-round ratio to nginx, and the proxy's CPU use. Then the checks (non-2xx
responses, socket errors, duplicates, rejections), the noise seen on the cores, the memory
scenarios, and one line per run.
"""

import glob
import json
import os
import re
import statistics
import sys

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
HOOKGATE_CONFIGS = ("none", "github", "stripe", "standard-webhooks")
CONFIG_NAMES = {
    "direct": "upstream direct",
    "nginx": "nginx proxy_pass",
    "pingora": "plain Pingora passthrough",
    "none": "hookgate, `provider: none`",
    "github": "hookgate, github",
    "stripe": "hookgate, stripe",
    "standard-webhooks": "hookgate, standard-webhooks",
}
UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_wrk(text):
    run = {}
    match = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    run["rps"] = float(match.group(1))
    for percent in ("50", "99"):
        match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        run[f"p{percent}_ms"] = float(match.group(1)) * UNIT_MS[match.group(2)]
    run["requests"] = int(re.search(r"^\s+(\d+) requests in", text, re.M).group(1))
    run["connections"] = int(re.search(r"(\d+) connections", text).group(1))
    match = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    run["non_2xx"] = int(match.group(1)) if match else 0
    match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    run["socket_errors"] = sum(map(int, match.groups())) if match else 0
    match = re.search(r"list restarted: (\d+) times", text)
    run["list_restarts"] = int(match.group(1)) if match else 0
    return run


def parse_snapshot(text):
    snapshot = {"cores": {}, "metrics": {}}
    for line in text.splitlines():
        if line.startswith("time "):
            snapshot["time"] = float(line.split()[1])
        elif re.match(r"cpu\d+ ", line):
            name, *values = line.split()
            snapshot["cores"][name] = [int(v) for v in values]
        elif line.startswith(("proxy ", "upstream ")):
            role, stat = line.split(" ", 1)
            # Fields after the command name, which is in brackets and may contain spaces.
            fields = stat.rsplit(")", 1)[1].split()
            snapshot[role] = int(fields[11]) + int(fields[12])
            snapshot[role + "_system"] = int(fields[12])
        elif line.startswith("hookgate_"):
            series, value = line.rsplit(" ", 1)
            snapshot["metrics"][series] = float(value)
    return snapshot


def core_use(before, after, core):
    """Return (busy %, steal %) of one core between two /proc/stat snapshots."""
    delta = [a - b for a, b in zip(after["cores"][core], before["cores"][core])]
    user, nice, system, idle, iowait, irq, softirq, steal = delta[:8]
    total = user + nice + system + idle + iowait + irq + softirq + steal
    if total == 0:
        return 0.0, 0.0
    return 100.0 * (user + nice + system + irq + softirq) / total, 100.0 * steal / total


def metric_delta(before, after, name, route, label, value):
    series = f'{name}{{{label}="{value}",route="{route}"}}'
    return after["metrics"].get(series, 0.0) - before["metrics"].get(series, 0.0)


def load_run(prefix):
    with open(prefix + ".wrk") as f:
        run = parse_wrk(f.read())
    with open(prefix + ".meta") as f:
        for line in f:
            key, value = line.split(" ", 1)
            run[key] = value.strip()
    run["size"] = int(run["size"])
    run["name"] = os.path.basename(prefix)
    with open(prefix + ".before") as f:
        before = parse_snapshot(f.read())
    with open(prefix + ".after") as f:
        after = parse_snapshot(f.read())
    elapsed = after["time"] - before["time"]

    run["core0_busy"], run["core0_steal"] = core_use(before, after, "cpu0")
    run["core1_busy"], run["core1_steal"] = core_use(before, after, "cpu1")
    run["upstream_cpu"] = 100.0 * (after["upstream"] - before["upstream"]) / CLOCK_TICKS / elapsed

    if "proxy" in before:
        seconds = (after["proxy"] - before["proxy"]) / CLOCK_TICKS
        run["proxy_cpu"] = 100.0 * seconds / elapsed
        run["proxy_us_per_request"] = 1e6 * seconds / run["requests"]
        run["other_on_proxy_core"] = run["core1_busy"] - run["proxy_cpu"]
        system = after["proxy_system"] - before["proxy_system"]
        total = after["proxy"] - before["proxy"]
        run["proxy_system_share"] = 100.0 * system / total if total else float("nan")

    if run["config"] in HOOKGATE_CONFIGS:
        for outcome in ("forwarded", "duplicate", "rejected"):
            run[outcome] = metric_delta(
                before, after, "hookgate_requests_total", run["config"], "outcome", outcome
            )
        run["upstream_2xx"] = metric_delta(
            before, after, "hookgate_upstream_responses_total", run["config"], "class", "2xx"
        )
    return run


def fmt_int(x):
    return f"{x:,.0f}".replace(",", " ")


def median(values):
    return statistics.median(values) if values else float("nan")


def load_table(runs, size):
    lines = [
        f"#### {size // 1024} KiB bodies",
        "",
        "| config | req/s median (min–max) | p50 ms | p99 ms | req/s ÷ nginx (min–max) "
        "| proxy core CPU % | proxy CPU µs/req | CPU/req ÷ nginx |",
        "|---|---|---|---|---|---|---|---|",
    ]
    by_config = {}
    for run in runs:
        if run["size"] == size:
            by_config.setdefault(run["config"], []).append(run)
    nginx = {r["name"].split("-")[0]: r for r in by_config.get("nginx", [])}
    nginx_cpu = median([r["proxy_us_per_request"] for r in nginx.values()])
    for config in CONFIG_NAMES:
        config_runs = by_config.get(config)
        if not config_runs:
            continue
        rps = [r["rps"] for r in config_runs]
        ratios = [
            r["rps"] / nginx[r["name"].split("-")[0]]["rps"]
            for r in config_runs
            if r["name"].split("-")[0] in nginx
        ]
        ratio = f"{median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f})" if ratios else "–"
        cpu = [r["proxy_cpu"] for r in config_runs if "proxy_cpu" in r]
        per_request = [r["proxy_us_per_request"] for r in config_runs if "proxy_us_per_request" in r]
        lines.append(
            f"| {CONFIG_NAMES[config]} | {fmt_int(median(rps))} ({fmt_int(min(rps))}–{fmt_int(max(rps))}) "
            f"| {median([r['p50_ms'] for r in config_runs]):.2f} "
            f"| {median([r['p99_ms'] for r in config_runs]):.2f} | {ratio} "
            f"| {f'{median(cpu):.0f}' if cpu else '–'} "
            f"| {f'{median(per_request):.1f}' if per_request else '–'} "
            f"| {f'{median(per_request) / nginx_cpu:.2f}' if per_request and nginx else '–'} |"
        )
    return lines


def checks(runs):
    hookgate_runs = [r for r in runs if r["config"] in HOOKGATE_CONFIGS]
    signed_runs = [r for r in hookgate_runs if r["config"] != "none"]
    proxied = [r for r in runs if "other_on_proxy_core" in r]
    lines = [
        f"- Runs: {len(runs)}, {fmt_int(sum(r['requests'] for r in runs))} responses counted by wrk.",
        f"- Non-2xx responses (wrk): {sum(r['non_2xx'] for r in runs)}; "
        f"socket errors (connect, read, write, timeout): {sum(r['socket_errors'] for r in runs)}.",
        f"- hookgate outcomes: {fmt_int(sum(r['forwarded'] for r in hookgate_runs))} forwarded, "
        f"{fmt_int(sum(r['duplicate'] for r in hookgate_runs))} answered as duplicates, "
        f"{fmt_int(sum(r['rejected'] for r in hookgate_runs))} rejected; "
        f"upstream 2xx: {fmt_int(sum(r['upstream_2xx'] for r in hookgate_runs))}. "
        f"wrk counted {fmt_int(sum(r['requests'] for r in hookgate_runs))} responses on these runs; "
        "hookgate also counts the requests in flight when wrk stops, at most one per connection "
        f"({max((r['connections'] for r in hookgate_runs), default=0)}) per run.",
        f"- Signed lists restarted from the top (which repeats deliveries): "
        f"{sum(r['list_restarts'] for r in signed_runs)} times.",
    ]
    if proxied:
        lines.append(
            f"- Other processes' CPU on the proxy core (core 1 busy minus the proxy): "
            f"median {median([r['other_on_proxy_core'] for r in proxied]):.1f} %, "
            f"max {max(r['other_on_proxy_core'] for r in proxied):.1f} %; "
            f"steal on either core at most {max(max(r['core0_steal'], r['core1_steal']) for r in runs):.1f} %."
        )
    lines.append(
        f"- Core 0 (wrk + upstream) busy: median {median([r['core0_busy'] for r in runs]):.0f} %, "
        f"min {min(r['core0_busy'] for r in runs):.0f} %."
    )
    return lines


def optional(run, key, digits):
    return f"{run[key]:.{digits}f}" if key in run else "–"


def run_lines(runs):
    lines = [
        "| run | req/s | p50 ms | p99 ms | non-2xx | proxy CPU % | µs/req | of which kernel % "
        "| core 0 % | upstream CPU % | core 1 % | steal % | forwarded | duplicate | rejected |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(
            f"| {r['name']} | {fmt_int(r['rps'])} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['non_2xx']} "
            f"| {optional(r, 'proxy_cpu', 0)} | {optional(r, 'proxy_us_per_request', 1)} "
            f"| {optional(r, 'proxy_system_share', 0)} "
            f"| {r['core0_busy']:.0f} | {r['upstream_cpu']:.0f} | {r['core1_busy']:.0f} | {max(r['core0_steal'], r['core1_steal']):.1f} "
            f"| {fmt_int(r['forwarded']) if 'forwarded' in r else '–'} "
            f"| {fmt_int(r['duplicate']) if 'duplicate' in r else '–'} "
            f"| {fmt_int(r['rejected']) if 'rejected' in r else '–'} |"
        )
    return lines


def mib(kib):
    return f"{kib / 1024:.1f}"


def memory_lines(folder):
    lines = [
        "| server | scenario | RSS before MiB | RSS held MiB | peak RSS (VmHWM) MiB | RSS after MiB "
        "| KiB per connection held | responses |",
        "|---|---|---|---|---|---|---|---|",
    ]
    found = False
    for server in ("hookgate", "nginx"):
        for scenario in ("uploads", "idle"):
            path = os.path.join(folder, f"memory-{server}-{scenario}.json")
            if not os.path.exists(path):
                continue
            found = True
            with open(path) as f:
                result = json.load(f)
            # The last pid is the process that serves: hookgate itself, or the nginx worker.
            pid = list(result["memory_before"])[-1]
            before = result["memory_before"][pid]["VmRSS"]
            rss_held = result["memory_held"][pid]["VmRSS"]
            peak = result["memory_after"][pid]["VmHWM"]
            after = result["memory_after"][pid]["VmRSS"]
            per_connection = (rss_held - before) / result["connections"]
            label = "hookgate" if server == "hookgate" else "nginx worker"
            scenario_text = (
                f"{result['connections']} × {result['body_bytes'] // 1024} KiB uploads"
                if scenario == "uploads"
                else f"{result['connections']} idle keep-alive connections"
            )
            extra = ""
            if result.get("in_flight_while_held") is not None:
                extra = f"; in flight while held: {result['in_flight_while_held']:.0f}"
            lines.append(
                f"| {label} | {scenario_text} | {mib(before)} | {mib(rss_held)} | {mib(peak)} | {mib(after)} "
                f"| {per_connection:.1f} | {result['statuses']}{extra} |"
            )
            if server == "nginx":
                master = list(result["memory_before"])[0]
                lines.append(
                    f"| nginx master | same | {mib(result['memory_before'][master]['VmRSS'])} "
                    f"| {mib(result['memory_held'][master]['VmRSS'])} "
                    f"| {mib(result['memory_after'][master]['VmHWM'])} "
                    f"| {mib(result['memory_after'][master]['VmRSS'])} | – | – |"
                )
    return lines if found else []


def main():
    folder = sys.argv[1]
    runs = [
        load_run(path[: -len(".wrk")])
        for path in sorted(glob.glob(os.path.join(folder, "runs", "r*.wrk")))
    ]
    out = []
    with open(os.path.join(folder, "machine.txt")) as f:
        out += ["```text", f.read().rstrip(), "```", ""]
    if runs:
        for size in sorted({r["size"] for r in runs}):
            out += load_table(runs, size) + [""]
        out += ["#### Checks", ""] + checks(runs) + [""]
    memory = memory_lines(folder)
    if memory:
        out += ["#### Memory", ""] + memory + [""]
    if runs:
        out += ["#### Every run", ""] + run_lines(runs) + [""]
    print("\n".join(out))


if __name__ == "__main__":
    main()
