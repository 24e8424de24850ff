"""A real SMTP server for Herald's end-to-end tests (aiosmtpd).

Every accepted message is appended to --out as one JSON line. --fail-transient N answers the
first N deliveries with 451 (try again later); --fail-permanent answers every delivery with 550;
--sink accepts without parsing or recording (benchmarks); --delay SECONDS holds every answer to
the end of the message that long (a slow mail server, after the body); --stall-first-rcpt SECONDS
holds the first RCPT TO for each recipient that long before accepting it, and lets later ones
through at once (a mail server hanging before the body).

--chaos (the fault suite, scripts/chaos) answers by recipient and by a control file instead:
  flaky-*@…   451 for the first two attempts at each message, then accept
  reject-*@…  550 always
  stall-*@…   the first RCPT TO for the address hangs 25 s (longer than Herald's 20 s to reach
              DATA), then 451; later attempts accept
and while the file named by --control holds `4xx` or `5xx`, every delivery gets that answer to
its message, and while it holds `stall`, every RCPT TO hangs 25 s, then 451. Stalls happen before
the body on purpose: a server that hangs after it leaves no client able to know whether the
message was taken, so a worker killed meanwhile must fail the email rather than risk a second
one, which the suite would count as lost (tests/tests/e2e/pipeline/interrupted_sends.rs covers that case). Every attempt (accepted or not) is appended to --attempts as a JSON line
{to, subject, outcome}, so the suite knows which emails were refused for good.
Listens on --port (default 0: a port the kernel picks, so no two servers race for one) and
prints "ready <port>" once listening.
"""

import argparse
import asyncio
import email
import email.policy
import json
import os

from aiosmtpd.smtp import SMTP

TRANSIENT = "451 4.3.0 Temporary local problem, try again later"
PERMANENT = "550 5.1.1 Mailbox unavailable: no such user here"
STALL_SECONDS = 25


class Handler:
    def __init__(self, args):
        self.out = args.out
        self.sink = args.sink
        self.delay = args.delay
        self.transient_left = args.fail_transient
        self.fail_permanent = args.fail_permanent
        self.chaos = args.chaos
        self.control = args.control
        self.attempts_path = args.attempts
        self.attempts = 0
        self.tries = {}
        self.stall_first_rcpt = args.stall_first_rcpt
        self.rcpt_seen = set()

    def mode(self):
        if not self.control:
            return ""
        try:
            with open(self.control, encoding="utf-8") as f:
                return f.read().strip()
        except OSError:
            return ""

    def log_attempt(self, to, subject, outcome):
        if self.attempts_path:
            with open(self.attempts_path, "a", encoding="utf-8") as f:
                f.write(json.dumps({"to": to, "subject": subject, "outcome": outcome}) + "\n")

    async def chaos_answer(self, envelope, subject):
        """None to accept, else the SMTP reply to give."""
        to = envelope.rcpt_tos[0] if envelope.rcpt_tos else ""
        key = (to, subject)
        tries = self.tries.get(key, 0) + 1
        self.tries[key] = tries
        mode = self.mode()
        local = to.split("@")[0]
        if mode == "5xx":
            return PERMANENT, "550"
        if mode == "4xx":
            return TRANSIENT, "451"
        if local.startswith("reject-"):
            return PERMANENT, "550"
        if local.startswith("flaky-") and tries <= 2:
            return TRANSIENT, "451"
        return None, "accepted"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        first = address not in self.rcpt_seen
        self.rcpt_seen.add(address)
        if self.stall_first_rcpt > 0 and first:
            await asyncio.sleep(self.stall_first_rcpt)
        if self.chaos:
            stalled = address.split("@")[0].startswith("stall-") and first
            if stalled or self.mode() == "stall":
                self.log_attempt([address], None, "stall")
                await asyncio.sleep(STALL_SECONDS)
                return TRANSIENT
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.attempts += 1
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        if self.fail_permanent:
            return PERMANENT
        if self.transient_left > 0:
            self.transient_left -= 1
            return TRANSIENT
        if self.sink:
            return "250 OK"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        if self.chaos:
            reply, outcome = await self.chaos_answer(envelope, str(message["subject"]))
            self.log_attempt(envelope.rcpt_tos, str(message["subject"]), outcome)
            if reply:
                return reply
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
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--fail-transient", type=int, default=0)
    parser.add_argument("--fail-permanent", action="store_true")
    parser.add_argument("--sink", action="store_true")
    parser.add_argument("--delay", type=float, default=0)
    parser.add_argument("--stall-first-rcpt", type=float, default=0)
    parser.add_argument("--chaos", action="store_true")
    parser.add_argument("--control", default="")
    parser.add_argument("--attempts", default="")
    args = parser.parse_args()
    if args.control and not os.path.exists(args.control):
        open(args.control, "w", encoding="utf-8").close()
    handler = Handler(args)
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(handler), host="127.0.0.1", port=args.port
    )
    print(f"ready {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()

if __name__ == "__main__":
    asyncio.run(main())
