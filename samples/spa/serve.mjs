// A tiny static server for the SPA sample (Node.js, no dependencies):
//   node samples/spa/serve.mjs                      http://localhost:5173, config.json of this folder
//   PORT=8080 HOST=127.0.0.1 SPA_CONFIG=/path/to/config.json node samples/spa/serve.mjs
// It listens on 127.0.0.1 (browsers reach it as localhost too, which is the name to use: see README.md).
// It serves this folder's files, config.json (or SPA_CONFIG) and a strict Content-Security-Policy whose
// connect-src names only the token service and the API of the configuration: an in-memory access token is only
// as safe as the page is from injected script.
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL(".", import.meta.url));
const host = process.env.HOST ?? "127.0.0.1";
const port = Number(process.env.PORT ?? 5173);
const configPath = resolve(process.env.SPA_CONFIG ?? join(root, "config.json"));
const types = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".png": "image/png",
  ".svg": "image/svg+xml",
};

/** The policy for a configuration: the same rule the browser tests' server applies (SpaServers.ContentSecurityPolicy). */
export function contentSecurityPolicy(config) {
  const origins = new Set();
  for (const url of [config.tokenService, config.devIdp, config.api]) {
    if (typeof url === "string" && url !== "") {
      origins.add(new URL(url).origin);
    }
  }

  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    `connect-src 'self' ${[...origins].join(" ")}`.trim(),
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join("; ");
}

const server = createServer(async (request, response) => {
  try {
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.writeHead(405, { Allow: "GET, HEAD" }).end();
      return;
    }

    // A malformed request target is the client's error (400), never the server's: a lone or bad percent escape
    // ("/%", "/%zz", an escape that is not UTF-8) makes decodeURIComponent throw, and a NUL ("%00") is in no file
    // name (Node refuses it as a path argument). RFC 3986 §2.1: "%" must be followed by two hex digits.
    let path;
    try {
      path = decodeURIComponent(new URL(request.url, "http://localhost").pathname);
    } catch {
      path = undefined;
    }

    if (path === undefined || path.includes("\0")) {
      response.writeHead(400, { "Content-Type": "text/plain" }).end("Bad request");
      return;
    }

    const config = await readFile(configPath);
    if (path === "/") {
      path = "/index.html";
    }

    // Only files under this folder, never the server itself or a path that climbs out.
    const file = path === "/config.json" ? configPath : normalize(join(root, path));
    if (file !== configPath && (!file.startsWith(root.endsWith(sep) ? root : root + sep) || file.endsWith("serve.mjs") || !types[extname(file)])) {
      response.writeHead(404, { "Content-Type": "text/plain" }).end("Not found");
      return;
    }

    const body = file === configPath ? config : await readFile(file);
    response.writeHead(200, {
      "Content-Type": types[extname(file)] ?? "application/json; charset=utf-8",
      "Content-Security-Policy": contentSecurityPolicy(JSON.parse(config)),
      "X-Content-Type-Options": "nosniff",
      "Referrer-Policy": "no-referrer",
      "Cache-Control": "no-cache",
    });
    response.end(request.method === "HEAD" ? undefined : body);
  } catch (error) {
    const missing = error?.code === "ENOENT" || error?.code === "EISDIR";
    response.writeHead(missing ? 404 : 500, { "Content-Type": "text/plain" }).end(missing ? "Not found" : "Server error");
  }
});

// A port already in use is a setting to change, not a crash: one line naming the address and how to choose another.
server.on("error", (error) => {
  if (error?.code === "EADDRINUSE") {
    console.error(`The SPA sample cannot start: ${host}:${port} is already in use. If it is this sample already running, use it; or choose another port with PORT=5174 (and add http://localhost:5174 to the spa client's AllowedOrigins).`);
    process.exit(1);
  }
  throw error;
});

server.listen(port, host, () => {
  const address = server.address();
  console.log(`SPA sample on http://localhost:${address.port}/ (listening on ${host}; config: ${configPath})`);
});
