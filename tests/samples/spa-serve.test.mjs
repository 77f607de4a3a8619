// The SPA sample's static server (samples/spa/serve.mjs) started as a user starts it, on a free port, and asked for
// request targets a browser or a scanner may send. Run by scripts/test.sh (node --test tests/samples/).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { request } from "node:http";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const serve = fileURLToPath(new URL("../../samples/spa/serve.mjs", import.meta.url));
let server;
let port;
let dir;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "spa-serve-"));
  const config = join(dir, "config.json");
  await writeFile(config, JSON.stringify({ tokenService: "http://localhost:7071", clientId: "spa" }));
  server = spawn(process.execPath, [serve], { env: { ...process.env, PORT: "0", HOST: "127.0.0.1", SPA_CONFIG: config }, stdio: ["ignore", "pipe", "inherit"] });
  // The server prints its address once it listens (port 0: the system's choice).
  port = await new Promise((resolve, reject) => {
    let out = "";
    server.stdout.on("data", (chunk) => {
      out += chunk;
      const match = /http:\/\/localhost:(\d+)\//.exec(out);
      if (match) {
        resolve(Number(match[1]));
      }
    });
    server.on("exit", (code) => reject(new Error(`serve.mjs exited with ${code}`)));
  });
});

after(async () => {
  server?.kill();
  if (dir) {
    await rm(dir, { recursive: true, force: true });
  }
});

/** GET with the request target exactly as given (no client-side normalisation or re-encoding). */
function get(path) {
  return new Promise((resolve, reject) => {
    request({ host: "127.0.0.1", port, path, method: "GET" }, (response) => {
      response.resume();
      response.on("end", () => resolve(response.statusCode));
    }).on("error", reject).end();
  });
}

test("malformed percent-encoding in the path is a 400, not a 500", async () => {
  for (const path of ["/%", "/%zz", "/index.html%", "/%E0%A4%A"]) {
    assert.equal(await get(path), 400, path);
  }
});

test("a NUL in the path is a 400, not a 500", async () => {
  for (const path of ["/config.json%00.js", "/index.html%00", "/%00"]) {
    assert.equal(await get(path), 400, path);
  }
});

test("well-formed requests are still served or refused as before", async () => {
  assert.equal(await get("/"), 200);
  assert.equal(await get("/config.json"), 200);
  assert.equal(await get("/serve.mjs"), 404);
  assert.equal(await get("/%2e%2e/%2e%2e/package.json"), 404);
  assert.equal(await get("/nothing-here.js"), 404);
});
