"""An SMTP server for the tests (aiosmtpd): writes each message it accepts to OUT_DIR as
JSON (envelope, whether it came over TLS, headers and decoded body).

usage: smtp_receiver.py OUT_DIR [CERT KEY]
With CERT and KEY it offers STARTTLS. It refuses `later@…` with 451 and `nobody@…` with
550. Listens on a free loopback port and writes it to
OUT_DIR/port once listening.
"""

import asyncio
import email
import email.policy
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP

out_dir = sys.argv[1]
tls_context = None
if len(sys.argv) > 3:
    tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_context.load_cert_chain(sys.argv[2], sys.argv[3])
count = 0


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        # Two recipients stand for a server's refusals: one for now, one for good.
        if address.startswith("later@"):
            return "451 4.3.0 try again later"
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        global count
        count += 1
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": session.ssl is not None,
            "subject": msg["subject"],
            "from": msg["from"],
            "to": msg["to"],
            "message_id": msg["message-id"],
            "auto_submitted": msg["auto-submitted"],
            "content_type": msg.get_content_type(),
            "charset": msg.get_content_charset(),
            "body": msg.get_content(),
        }
        path = os.path.join(out_dir, f"msg-{count}.json")
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(path + ".tmp", path)
        return "250 OK"


async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(Handler(), tls_context=tls_context, hostname="localhost"),
        "127.0.0.1",
        0,
    )
    tmp = os.path.join(out_dir, "port.tmp")
    with open(tmp, "w") as f:
        f.write(str(server.sockets[0].getsockname()[1]))
    os.rename(tmp, os.path.join(out_dir, "port"))
    await server.serve_forever()


asyncio.run(main())
