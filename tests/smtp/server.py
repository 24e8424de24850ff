"""A real SMTP server for Herald's end-to-end tests (aiosmtpd).

Every accepted message is appended to --out as one JSON line. --fail-transient N answers the
first N deliveries with 451 (try again later); --fail-permanent answers every delivery with 550;
--sink accepts without parsing or recording (benchmarks); --delay SECONDS holds every answer to
DATA that long (a slow mail server).
Prints "ready" once listening.
"""

import argparse
import asyncio
import email
import email.policy
import json

from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, out, fail_transient, fail_permanent, sink, delay):
        self.out = out
        self.delay = delay
        self.sink = sink
        self.transient_left = fail_transient
        self.fail_permanent = fail_permanent
        self.attempts = 0

    async def handle_DATA(self, server, session, envelope):
        self.attempts += 1
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        if self.fail_permanent:
            return "550 5.1.1 Mailbox unavailable: no such user here"
        if self.transient_left > 0:
            self.transient_left -= 1
            return "451 4.3.0 Temporary local problem, try again later"
        if self.sink:
            return "250 OK"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        parts = {}
        for part in message.walk():
            if part.get_content_maintype() == "text":
                parts[part.get_content_type()] = part.get_content()
        record = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "subject": message["subject"],
            "contentType": message.get_content_type(),
            "text": parts.get("text/plain"),
            "html": parts.get("text/html"),
            "attempt": self.attempts,
        }
        with open(self.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        return "250 OK"


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--fail-transient", type=int, default=0)
    parser.add_argument("--fail-permanent", action="store_true")
    parser.add_argument("--sink", action="store_true")
    parser.add_argument("--delay", type=float, default=0)
    args = parser.parse_args()
    handler = Handler(args.out, args.fail_transient, args.fail_permanent, args.sink, args.delay)
    controller = Controller(handler, hostname="127.0.0.1", port=args.port)
    controller.start()
    print("ready", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        controller.stop()


if __name__ == "__main__":
    asyncio.run(main())
