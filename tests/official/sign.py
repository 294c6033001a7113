"""Signs a webhook body with a provider's official Python library.

Usage: sign.py PROVIDER SECRET BODY_FILE TIMESTAMP MESSAGE_ID
Prints a JSON object of the headers the provider would send. GitHub publishes no Python
library, so its signature is computed with hmac exactly as GitHub's documentation shows.
"""

import datetime
import hashlib
import hmac
import json
import sys


def sign(provider, secret, body, timestamp, msg_id):
    if provider == "github":
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return {"X-Hub-Signature-256": "sha256=" + digest}
    if provider == "stripe":
        import stripe

        header = stripe.WebhookSignature.generate_signature_header(
            body.decode("utf-8"), secret, timestamp
        )
        return {"Stripe-Signature": header}
    if provider == "slack":
        from slack_sdk.signature import SignatureVerifier

        signature = SignatureVerifier(secret).generate_signature(
            timestamp=str(timestamp), body=body
        )
        return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": signature}
    if provider == "standard-webhooks":
        from standardwebhooks import Webhook

        when = datetime.datetime.fromtimestamp(timestamp, tz=datetime.timezone.utc)
        signature = Webhook(secret).sign(msg_id, when, body)
        return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}
    if provider == "svix":
        from svix.webhooks import Webhook

        when = datetime.datetime.fromtimestamp(timestamp, tz=datetime.timezone.utc)
        signature = Webhook(secret).sign(msg_id, when, body.decode("utf-8"))
        return {"svix-id": msg_id, "svix-timestamp": str(timestamp), "svix-signature": signature}
    raise SystemExit(f"unknown provider {provider}")


def main():
    provider, secret, body_file, timestamp, msg_id = sys.argv[1:6]
    with open(body_file, "rb") as f:
        body = f.read()
    print(json.dumps(sign(provider, secret, body, int(timestamp), msg_id)))


if __name__ == "__main__":
    main()
