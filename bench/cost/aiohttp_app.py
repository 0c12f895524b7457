"""aiohttp for the cost benchmark: GET /<any> returns the file $BENCH_BODY.

usage: aiohttp_app.py HOST PORT
"""
import os
import sys

from aiohttp import web

with open(os.environ["BENCH_BODY"], "rb") as f:
    BODY = f.read()


async def handle(_request):
    return web.Response(body=BODY, content_type="text/plain")


app = web.Application()
app.router.add_get("/{tail:.*}", handle)
web.run_app(app, host=sys.argv[1], port=int(sys.argv[2]), print=None, access_log=None)
