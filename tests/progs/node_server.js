// A plain Node.js http server answering every request with 100 bytes. Node sets TCP_NODELAY on
// each accepted socket and writes each response (header and body) in one writev.
// usage: node node_server.js HOST PORT
const http = require("http");

const body = Buffer.alloc(100, "x");
http.createServer((req, res) => {
  res.writeHead(200, { "Content-Type": "text/plain", "Content-Length": body.length });
  res.end(body);
}).listen(Number(process.argv[3]), process.argv[2]);
