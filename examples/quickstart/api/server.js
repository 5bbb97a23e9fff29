// The quickstart backend: a few JSON endpoints over PostgreSQL, with Node's own
// http module and the `pg` driver. `stagecraft dev` sets PORT and DATABASE_URL.
"use strict";

const http = require("node:http");
const { Pool } = require("pg");

const port = Number(process.env.PORT || 4000);
const host = process.env.HOST || "127.0.0.1";
const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 4 });

function send(res, status, body) {
  const data = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(data),
    // The frontend is served from another origin (https://app.<domain>).
    "access-control-allow-origin": "*",
    "access-control-allow-headers": "content-type",
    "access-control-allow-methods": "GET, POST, OPTIONS",
  });
  res.end(data);
}

function readJson(req) {
  return new Promise((resolve, reject) => {
    let raw = "";
    req.setEncoding("utf8");
    req.on("data", (chunk) => {
      raw += chunk;
      if (raw.length > 64 * 1024) reject(new Error("body too large"));
    });
    req.on("end", () => {
      try {
        resolve(raw ? JSON.parse(raw) : {});
      } catch (err) {
        reject(err);
      }
    });
    req.on("error", reject);
  });
}

async function route(req, res) {
  const { pathname } = new URL(req.url, "http://localhost");
  if (req.method === "OPTIONS") return send(res, 204, {});
  if (pathname === "/healthz") {
    await pool.query("SELECT 1");
    return send(res, 200, { ok: true });
  }
  if (pathname === "/api/notes" && req.method === "GET") {
    const { rows } = await pool.query(
      "SELECT id, text, created_at FROM notes ORDER BY id",
    );
    return send(res, 200, { notes: rows });
  }
  if (pathname === "/api/notes" && req.method === "POST") {
    let body;
    try {
      body = await readJson(req);
    } catch (err) {
      return send(res, 400, { error: "expected a JSON body like {\"text\": \"...\"}" });
    }
    const text = typeof body.text === "string" ? body.text.trim() : "";
    if (!text) return send(res, 400, { error: "text must be a non-empty string" });
    const { rows } = await pool.query(
      "INSERT INTO notes (text) VALUES ($1) RETURNING id, text, created_at",
      [text],
    );
    return send(res, 201, rows[0]);
  }
  return send(res, 404, { error: `no route for ${req.method} ${pathname}` });
}

const server = http.createServer((req, res) => {
  route(req, res).catch((err) => {
    console.error(`${req.method} ${req.url} failed: ${err.message}`);
    send(res, 500, { error: "internal error" });
  });
});

server.listen(port, host, () => {
  console.log(`api listening on http://${host}:${port}`);
});

function shutdown(signal) {
  console.log(`api: ${signal}, closing`);
  server.close(() => pool.end().finally(() => process.exit(0)));
  setTimeout(() => process.exit(0), 3000).unref();
}
process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGINT"));
