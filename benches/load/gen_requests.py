#!/usr/bin/env python3
"""Write a list of webhook deliveries for requests.lua to send, each a distinct delivery with
its own id, signed now with the bench secrets.

Every body is JSON of exactly --size bytes and ends with the delivery id,
`{"object":"event",...,"id":"evt_..."}`, so the shared part before the id is stored once. Output
lines, tab-separated (JSON bodies here never contain a tab or newline):

    line 1: the body before the id
    line 2: the body after the id
    then one line per delivery: id, then each header as `Name: value`

Signing follows the providers' documented schemes, as hookgate's presets read them:
github signs the body, stripe signs `<t>.<body>` with the whole `whsec_` secret as the key,
standard-webhooks signs `<id>.<t>.<body>` with the base64 key after `whsec_`. All deliveries
of one list share the timestamp of the moment the list was written, so a list must be used
within the route's `tolerance` (5 minutes by default).
"""

import argparse
import base64
import hashlib
import hmac
import os
import secrets
import sys
import time

PROVIDERS = ("none", "github", "stripe", "standard-webhooks")

# `evt_` plus 8 hex characters of list prefix and 16 of counter, so every body has the same size.
ID_LENGTH = 28


def body_parts(size, created):
    """Return (head, tail) of a JSON body of `size` bytes once an id of ID_LENGTH is inserted."""
    head = '{"object":"event","type":"invoice.paid","created":%d,"data":{"lines":[' % created
    tail = '"}'
    end_of_data = '],"note":"'
    id_key = '"},"id":"'
    fixed = len(head) + len(end_of_data) + len(id_key) + ID_LENGTH + len(tail)
    if size < fixed:
        raise SystemExit(f"body size {size} is below the minimum of {fixed} bytes")
    items = []
    used = fixed
    n = 0
    while True:
        item = '{"sku":"sku-%05d","quantity":%d,"amount":%d,"currency":"usd"}' % (n, n % 7 + 1, 1999 + n)
        extra = len(item) + (1 if items else 0)
        # Keep room for the padding string so that the total lands exactly on `size`.
        if used + extra > size:
            break
        items.append(item)
        used += extra
        n += 1
    padding = "x" * (size - used)
    head = head + ",".join(items) + end_of_data + padding + id_key
    assert len(head) + ID_LENGTH + len(tail) == size
    return head.encode(), tail.encode()


def read_secret(secret_dir, provider):
    with open(os.path.join(secret_dir, provider), "rb") as f:
        return f.read().rstrip(b"\r\n")


class Signer:
    """Signs deliveries for one provider. The HMAC state over the shared body head is computed once."""

    def __init__(self, provider, secret, head, timestamp):
        self.provider = provider
        self.timestamp = str(timestamp)
        if provider == "github":
            self.prefix_mac = hmac.new(secret, head, hashlib.sha256)
        elif provider == "stripe":
            self.prefix_mac = hmac.new(secret, self.timestamp.encode() + b"." + head, hashlib.sha256)
        elif provider == "standard-webhooks":
            if not secret.startswith(b"whsec_"):
                raise SystemExit("standard-webhooks secret must start with whsec_")
            # The id comes first in the signed bytes, so every delivery hashes the whole body.
            self.key_mac = hmac.new(base64.b64decode(secret[len(b"whsec_"):]), digestmod=hashlib.sha256)
            self.head = head
        elif provider != "none":
            raise SystemExit(f"unknown provider {provider}")

    def headers(self, delivery_id, tail):
        """Return the provider's headers for the body head + delivery_id + tail."""
        common = ["Content-Type: application/json", "User-Agent: hookgate-load/1"]
        if self.provider == "none":
            return common
        if self.provider == "github":
            mac = self.prefix_mac.copy()
            mac.update(delivery_id + tail)
            return common + [
                "X-GitHub-Event: invoice",
                "X-GitHub-Delivery: " + delivery_id.decode(),
                "X-Hub-Signature-256: sha256=" + mac.hexdigest(),
            ]
        if self.provider == "stripe":
            mac = self.prefix_mac.copy()
            mac.update(delivery_id + tail)
            return common + [f"Stripe-Signature: t={self.timestamp},v1={mac.hexdigest()}"]
        mac = self.key_mac.copy()
        mac.update(delivery_id + b"." + self.timestamp.encode() + b".")
        mac.update(self.head)
        mac.update(delivery_id + tail)
        signature = base64.b64encode(mac.digest()).decode()
        return common + [
            "webhook-id: " + delivery_id.decode(),
            "webhook-timestamp: " + self.timestamp,
            "webhook-signature: v1," + signature,
        ]


class Batch:
    """Deliveries signed at one moment: shared body parts, signer and a random id prefix."""

    def __init__(self, provider, secret_dir, size):
        now = int(time.time())
        self.head, self.tail = body_parts(size, now)
        secret = read_secret(secret_dir, provider) if provider != "none" else b""
        self.signer = Signer(provider, secret, self.head, now)
        self.prefix = secrets.token_hex(4)

    def delivery(self, i):
        """Return (id, headers) of delivery number i."""
        delivery_id = ("evt_%s%016x" % (self.prefix, i)).encode()
        return delivery_id, self.signer.headers(delivery_id, self.tail)

    def body(self, delivery_id):
        return self.head + delivery_id + self.tail


def write_list(provider, secret_dir, size, count, out):
    batch = Batch(provider, secret_dir, size)
    with open(out, "w", encoding="ascii", buffering=1 << 20) as f:
        f.write(batch.head.decode() + "\n" + batch.tail.decode() + "\n")
        for i in range(count):
            delivery_id, headers = batch.delivery(i)
            f.write(delivery_id.decode() + "\t" + "\t".join(headers) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider", choices=PROVIDERS, required=True)
    parser.add_argument("--size", type=int, required=True, help="body size in bytes")
    parser.add_argument("--count", type=int, required=True, help="number of deliveries")
    parser.add_argument("--secrets", required=True, help="folder with one secret file per provider")
    parser.add_argument("--out", required=True, help="list file to write")
    args = parser.parse_args()
    started = time.monotonic()
    write_list(args.provider, args.secrets, args.size, args.count, args.out)
    print(
        f"wrote {args.count} {args.provider} deliveries of {args.size} B to {args.out}"
        f" in {time.monotonic() - started:.1f} s",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
