// A plain Node.js http server: any request gets the file $BENCH_BODY. usage: node server.js HOST PORT
const fs = require("fs");
const http = require("http");

const body = fs.readFileSync(process.env.BENCH_BODY);
http.createServer((req, res) => {
  res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": body.length });
  res.end(body);
}).listen(Number(process.argv[3]), process.argv[2]);
