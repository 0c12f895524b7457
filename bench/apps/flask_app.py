"""The Flask app for the Werkzeug dev server and gunicorn: GET /<any> returns the file $BENCH_BODY."""
import os

from flask import Flask, Response

with open(os.environ["BENCH_BODY"], "rb") as f:
    BODY = f.read()
app = Flask(__name__)


@app.route("/<path:_>")
def body(_):
    return Response(BODY, mimetype="application/octet-stream")
