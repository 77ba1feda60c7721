// What sign-in adds to a request's server time: the same requests against two Strata servers
// with the demo loaded, one in open mode (no accounts) and one in team mode (a session cookie),
// interleaved so both see the same machine load. Prints medians, p90s and the difference.
//
//   node end2end/perf/auth_overhead.mjs [--n 200]
//
// Uses the built binary ($CARGO_TARGET_DIR/debug/strata, see scripts/build.sh) and the built site.
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = new URL("../..", import.meta.url).pathname;
const BIN = process.env.STRATA_BIN ?? resolve(ROOT, process.env.CARGO_TARGET_DIR ?? "target", "debug", "strata");
const SITE = resolve(ROOT, process.env.LEPTOS_SITE_ROOT ?? "target/site");
const n = Number(process.argv[process.argv.indexOf("--n") + 1] || 200) || 200;

const freePort = () => new Promise((ok) => { const s = createServer(); s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => ok(port)); }); });

async function serve(team) {
  const dir = await mkdtemp(join(tmpdir(), "strata-auth-bench-"));
  const env = { ...process.env, STRATA_DATA_DIR: dir, DATABASE_URL: "", RUST_LOG: "warn", LEPTOS_SITE_ROOT: SITE };
  if (team) {
    const r = spawnSync(BIN, ["users", "add", "bench", "--role", "admin"], { env, input: "bench password 1234\n", encoding: "utf8" });
    if (r.status !== 0) throw new Error(r.stderr);
  }
  const port = await freePort();
  const child = spawn(BIN, ["serve", "--addr", `127.0.0.1:${port}`], { env, stdio: "ignore" });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try { if ((await fetch(`${base}/healthz`)).ok) break; } catch { /* starting */ }
    if (i > 600) throw new Error("server did not start");
    await new Promise((r) => setTimeout(r, 200));
  }
  let cookie = "";
  if (team) {
    const res = await fetch(`${base}/auth/login`, { method: "POST", redirect: "manual", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "name=bench&password=bench+password+1234" });
    cookie = res.headers.get("set-cookie").split(";")[0];
  }
  return { base, cookie, child, dir };
}

async function time(server, path) {
  const t = process.hrtime.bigint();
  const res = await fetch(server.base + path, { headers: { cookie: server.cookie, accept: "text/html" }, redirect: "manual" });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`${path}: ${res.status}`);
  return Number(process.hrtime.bigint() - t) / 1e6;
}

const q = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };

const open = await serve(false);
const team = await serve(true);
try {
  const runs = await (await fetch(`${team.base}/api/v1/runs`, { headers: { cookie: team.cookie } })).json();
  const demo = runs.find((r) => r.name === "Adult income (demo)") ?? runs[0];
  const openRuns = await (await fetch(`${open.base}/api/v1/runs`)).json();
  const openDemo = openRuns.find((r) => r.name === demo.name);
  const paths = [
    ["GET /api/v1/runs (list)", "/api/v1/runs", "/api/v1/runs"],
    ["GET /api/v1/runs/{id} (a run)", `/api/v1/runs/${demo.id}`, `/api/v1/runs/${openDemo.id}`],
    ["GET /runs/{id} (run page, SSR)", `/runs/${demo.id}`, `/runs/${openDemo.id}`],
  ];
  console.log(`${n} requests each, interleaved; milliseconds`);
  console.log("request | open p50 | team p50 | added p50 | open p90 | team p90");
  for (const [label, teamPath, openPath] of paths) {
    for (let i = 0; i < 5; i++) { await time(open, openPath); await time(team, teamPath); } // warm caches
    const a = [], b = [];
    for (let i = 0; i < n; i++) { a.push(await time(open, openPath)); b.push(await time(team, teamPath)); }
    console.log(`${label} | ${q(a, 0.5).toFixed(2)} | ${q(b, 0.5).toFixed(2)} | ${(q(b, 0.5) - q(a, 0.5)).toFixed(2)} | ${q(a, 0.9).toFixed(2)} | ${q(b, 0.9).toFixed(2)}`);
  }
} finally {
  for (const s of [open, team]) { s.child.kill("SIGTERM"); }
  await new Promise((r) => setTimeout(r, 500));
  for (const s of [open, team]) await rm(s.dir, { recursive: true, force: true });
}
