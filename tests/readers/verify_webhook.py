"""Verifies a webhook request with the Standard Webhooks reference library.

    verify_webhook.py SECRET < REQUEST.json

REQUEST.json is {"headers": {name: value}, "body": "<the body as sent>"}. Prints the
verified payload's `type` and exits 0, or prints why and exits 1.
"""

import json
import sys

from standardwebhooks.webhooks import Webhook


def main():
    secret = sys.argv[1]
    request = json.load(sys.stdin)
    try:
        payload = Webhook(secret).verify(request["body"], request["headers"])
    except Exception as e:  # the library's WebhookVerificationError, or a malformed request
        print(f"not verified: {type(e).__name__}: {e}")
        sys.exit(1)
    print(payload["type"])


if __name__ == "__main__":
    main()
