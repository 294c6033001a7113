#!/usr/bin/env python3
"""Test client for load.sh: a sanity check before the load runs, and the two memory scenarios.

  check   sends one delivery per path and exits non-zero unless each gets 200 with "ok\\n"
  uploads keeps N concurrent uploads open with all but the last KiB of their bodies sent,
          samples the server's memory, then finishes them and checks every status
  idle    opens N keep-alive connections, sends one small request on each, keeps them
          open and idle, and samples the server's memory

Memory is read from /proc/PID/status (VmRSS, VmHWM) of every --pid given. Output is one JSON
object on stdout.
"""

import argparse
import asyncio
import json
import sys
import time
import urllib.request

import gen_requests


def memory(pids):
    """Return {pid: {"VmRSS": KiB, "VmHWM": KiB}} for each pid."""
    result = {}
    for pid in pids:
        fields = {}
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                name, _, value = line.partition(":")
                if name in ("VmRSS", "VmHWM"):
                    fields[name] = int(value.split()[0])
        result[str(pid)] = fields
    return result


def raw_request(host, port, path, headers, body):
    head = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {len(body)}\r\n"
    head += "".join(h + "\r\n" for h in headers) + "\r\n"
    return head.encode() + body


async def read_response(reader):
    """Read one response with a Content-Length body and return (status, headers text, body)."""
    head = await reader.readuntil(b"\r\n\r\n")
    text = head.decode("latin-1")
    status = int(text.split(" ", 2)[1])
    length = 0
    for line in text.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
        if name.strip().lower() == "transfer-encoding":
            raise ValueError("chunked response; this client reads only Content-Length bodies")
    body = await reader.readexactly(length)
    return status, text, body


def metric(url, name, labels):
    """Return the value of one Prometheus sample from `url`, or None if it is absent."""
    if not url:
        return None
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


async def check(args):
    failures = 0
    for spec in args.path:
        path, provider = spec.split("=")
        batch = gen_requests.Batch(provider, args.secrets, 1024)
        delivery_id, headers = batch.delivery(0)
        reader, writer = await asyncio.open_connection(args.host, args.port)
        writer.write(raw_request(args.host, args.port, path, headers, batch.body(delivery_id)))
        status, text, body = await asyncio.wait_for(read_response(reader), 10)
        writer.close()
        ok = status == 200 and body == b"ok\n"
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {provider:18} {path}: {status} {body[:80]!r}", file=sys.stderr)
    return {"failures": failures}


class Barrier:
    """Counts arrivals and sets `all_arrived` once `parties` have arrived or given up."""

    def __init__(self, parties):
        self.remaining = parties
        self.all_arrived = asyncio.Event()

    def arrive(self):
        self.remaining -= 1
        if self.remaining <= 0:
            self.all_arrived.set()


async def uploads(args):
    batch = gen_requests.Batch(args.provider, args.secrets, args.size)
    requests = []
    for i in range(args.connections):
        delivery_id, headers = batch.delivery(i)
        requests.append(raw_request(args.host, args.port, args.url_path, headers, batch.body(delivery_id)))
    arrived = Barrier(args.connections)
    release = asyncio.Event()
    connect_slots = asyncio.Semaphore(args.connect_concurrency)
    statuses = {}

    async def upload(request):
        partial_sent = False
        try:
            async with connect_slots:
                reader, writer = await asyncio.open_connection(args.host, args.port)
            # Everything but the last KiB: the server has the headers and most of the body,
            # and waits for the rest.
            writer.write(request[:-1024])
            await writer.drain()
            partial_sent = True
            arrived.arrive()
            await release.wait()
            writer.write(request[-1024:])
            await writer.drain()
            status, _, _ = await read_response(reader)
            writer.close()
            statuses[status] = statuses.get(status, 0) + 1
        except (OSError, asyncio.IncompleteReadError, ValueError) as e:
            key = type(e).__name__
            statuses[key] = statuses.get(key, 0) + 1
            if not partial_sent:
                arrived.arrive()

    before = memory(args.pid)
    tasks = [asyncio.create_task(upload(r)) for r in requests]
    await arrived.all_arrived.wait()
    await asyncio.sleep(args.hold)
    during = memory(args.pid)
    in_flight = metric(args.metrics, "hookgate_requests_in_flight", {"route": args.route})
    release.set()
    await asyncio.gather(*tasks)
    await asyncio.sleep(1)
    after = memory(args.pid)
    return {
        "scenario": "uploads",
        "connections": args.connections,
        "body_bytes": args.size,
        "statuses": statuses,
        "in_flight_while_held": in_flight,
        "memory_before": before,
        "memory_held": during,
        "memory_after": after,
    }


async def idle(args):
    batch = gen_requests.Batch("none", args.secrets, args.size)
    delivery_id, headers = batch.delivery(0)
    request = raw_request(args.host, args.port, args.url_path, headers, batch.body(delivery_id))
    connect_slots = asyncio.Semaphore(args.connect_concurrency)
    writers = []
    statuses = {}

    async def open_one():
        try:
            async with connect_slots:
                reader, writer = await asyncio.open_connection(args.host, args.port)
                writer.write(request)
                await writer.drain()
                status, text, _ = await read_response(reader)
            if "connection: close" in text.lower():
                status = f"{status} with Connection: close"
            statuses[status] = statuses.get(status, 0) + 1
            writers.append(writer)
        except (OSError, asyncio.IncompleteReadError, ValueError) as e:
            key = type(e).__name__
            statuses[key] = statuses.get(key, 0) + 1

    before = memory(args.pid)
    started = time.monotonic()
    await asyncio.gather(*(open_one() for _ in range(args.connections)))
    opened_in = time.monotonic() - started
    await asyncio.sleep(args.hold)
    during = memory(args.pid)
    for writer in writers:
        writer.close()
    await asyncio.sleep(2)
    after = memory(args.pid)
    return {
        "scenario": "idle",
        "connections": args.connections,
        "open_after_request": len(writers),
        "seconds_to_open": round(opened_in, 2),
        "statuses": {str(k): v for k, v in statuses.items()},
        "memory_before": before,
        "memory_held": during,
        "memory_after": after,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("check", "uploads", "idle"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secrets", required=True, help="folder with one secret file per provider")
    parser.add_argument("--path", action="append", default=[], help="check: PATH=PROVIDER, repeatable")
    parser.add_argument("--url-path", default="/hooks/none", help="uploads, idle: request path")
    parser.add_argument("--provider", default="none", help="uploads: signing scheme")
    parser.add_argument("--route", default="", help="uploads: hookgate route name, for the in-flight gauge")
    parser.add_argument("--metrics", default="", help="uploads: hookgate /metrics URL")
    parser.add_argument("--size", type=int, default=1024, help="body size in bytes")
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--connect-concurrency", type=int, default=100, help="connection attempts at once")
    parser.add_argument("--hold", type=float, default=2.0, help="seconds to hold before sampling memory")
    parser.add_argument("--pid", type=int, action="append", default=[], help="server process to sample")
    args = parser.parse_args()
    run = {"check": check, "uploads": uploads, "idle": idle}[args.mode]
    result = asyncio.run(run(args))
    print(json.dumps(result))
    if result.get("failures"):
        sys.exit(1)


if __name__ == "__main__":
    main()
