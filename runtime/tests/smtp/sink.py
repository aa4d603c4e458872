"""A real SMTP server for penpal's mail tests, on loopback (aiosmtpd).

Every accepted message is written whole to DIR/NNNN.eml, in order. The recipient's address
can script a fault, so a test can drive the outbox's retries through real SMTP replies:

  name+tempfail2@…  answers 451 (try later) to the first 2 deliveries to this address
  name+reject@…     answers 550 (no such user) at RCPT
  name+stall2@…     waits 5 s before answering DATA, the first 2 times (a stalled server)
  name+drop2@…      closes the connection instead of answering DATA, the first 2 times

Prints "PORT <n>" once listening. Run by runtime/tests/integration/notify.rs.
"""

import argparse
import asyncio
import os
import re
import socket
import sys
from collections import Counter

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.seen = Counter()
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if "+reject@" in address:
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        for address in envelope.rcpt_tos:
            m = re.search(r"\+(tempfail|stall|drop)(\d+)@", address)
            if m:
                self.seen[address] += 1
                if self.seen[address] <= int(m.group(2)):
                    if m.group(1) == "tempfail":
                        return "451 4.3.0 try again later"
                    if m.group(1) == "stall":
                        await asyncio.sleep(5)
                        return "451 4.3.0 too slow"
                    # The message arrived, but its sender never hears so: the case that makes
                    # delivery at least once, not exactly once.
                    server.transport.close()
                    return "421 closing"
        self.count += 1
        path = os.path.join(self.directory, f"{self.count:04}.eml")
        with open(path + ".part", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.replace(path + ".part", path)
        return "250 OK queued"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    args = parser.parse_args()
    port = free_port()
    controller = Controller(Sink(args.dir), hostname="127.0.0.1", port=port)
    controller.start()
    print(f"PORT {port}", flush=True)
    try:
        sys.stdin.read()  # runs until the test closes our stdin (or dies)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
