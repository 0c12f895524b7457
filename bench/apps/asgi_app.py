"""The ASGI app for uvicorn: any HTTP request gets the file $BENCH_BODY."""
import os

with open(os.environ["BENCH_BODY"], "rb") as f:
    BODY = f.read()
HEADERS = [(b"content-type", b"application/octet-stream"), (b"content-length", b"%d" % len(BODY))]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
