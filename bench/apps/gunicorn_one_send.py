"""A gunicorn configuration (`-c`) that hand-tunes gunicorn as a server written for it would be:
each response's head leaves in the same send() as the first bytes of its body, instead of a
send() of its own. The cost benchmark's reference for what socktune's cork reaches."""
from gunicorn import util
from gunicorn.http import wsgi


def send_headers(self):
    """Keeps the head for the first body write (or the close) instead of sending it."""
    if self.headers_sent:
        return
    lines = self.default_headers() + ["%s: %s\r\n" % (k, v) for k, v in self.headers]
    self.held_head = util.to_bytestring("%s\r\n" % "".join(lines), "latin-1")
    self.headers_sent = True


def take_head(self):
    head, self.held_head = getattr(self, "held_head", b""), b""
    return head


def emit_body(self, data):
    head = take_head(self)
    if head and not self.chunked:
        self.sock.sendall(head + data)
        return
    if head:
        self.sock.sendall(head)
    util.write(self.sock, data, self.chunked)


plain_close = wsgi.Response.close


def close(self):
    head = take_head(self)
    if head:
        self.sock.sendall(head)
    plain_close(self)


wsgi.Response.send_headers = send_headers
wsgi.Response._emit_body = emit_body
wsgi.Response.close = close
