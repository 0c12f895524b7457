"""aiosmtpd handler for the matrix: accepts a message only if its body is the file $BENCH_BODY.
usage: python3 -m aiosmtpd -n -l HOST:PORT -c smtp_check.Check   (with bench/apps on PYTHONPATH)"""
import os

with open(os.environ["BENCH_BODY"], "rb") as f:
    BODY = f.read()


class Check:
    async def handle_DATA(self, server, session, envelope):
        body = envelope.original_content.split(b"\r\n\r\n", 1)[-1]
        if body.rstrip(b"\r\n") != BODY:
            return "554 body differs from $BENCH_BODY (%d bytes)" % len(body)
        return "250 OK"
