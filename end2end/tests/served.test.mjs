// A model served by a real MLServer (the Open Inference Protocol runtime KServe uses), end to end:
// MLServer is started here from the Python environment of scripts/served-models.sh, serving a
// scikit-learn Pipeline trained on the Adult demo (server/tests/served/make_served_models.py, which
// also writes the model's own predict_proba); a Strata of its own, allowed to call loopback, gets a
// run whose `score_pipe` column holds those probabilities and an endpoint of the same name. On the
// run page "Test" agrees with the stored scores; on the what-if page an edit is predicted through
// MLServer and equals the model's own predict_proba for that edit.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { DEMO, launch, waitForHydration } from "../pages/browser.mjs";

const ROOT = new URL("../..", import.meta.url).pathname;
const BIN = process.env.STRATA_BIN ?? resolve(ROOT, process.env.CARGO_TARGET_DIR ?? "target", "debug", "strata");
const SITE = resolve(ROOT, process.env.LEPTOS_SITE_ROOT ?? "target/site");
const VENV = process.env.STRATA_SERVED_VENV;
if (!VENV && process.env.STRATA_REQUIRE_SERVED) throw new Error("STRATA_SERVED_VENV is not set: run scripts/served-models.sh (the test command does)");

function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

async function waitFor(url, child, what) {
  for (let i = 0; i < 480; i++) {
    if (child.exitCode !== null) throw new Error(`${what} exited (${child.exitCode}):\n${logs.join("")}`);
    try { if ((await fetch(url)).status === 200) return; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} did not start:\n${logs.join("")}`);
}

let browser, strata, mlserver, dir, BASE, reference, runId;
const logs = [];

before(async () => {
  if (!VENV) return;
  dir = await mkdtemp(join(tmpdir(), "strata-served-"));
  const made = spawnSync(join(VENV, "bin/python"), [join(ROOT, "server/tests/served/make_served_models.py"), join(dir, "models")], { encoding: "utf8" });
  assert.equal(made.status, 0, made.stderr);
  reference = (await readFile(join(dir, "models/reference.csv"), "utf8")).trim().split("\n").slice(1).map((l) => l.split(","));
  const [http, grpc, metrics, port] = [await freePort(), await freePort(), await freePort(), await freePort()];
  mlserver = spawn(join(VENV, "bin/mlserver"), ["start", join(dir, "models/mlserver")], {
    env: { ...process.env, MLSERVER_HOST: "127.0.0.1", MLSERVER_HTTP_PORT: String(http), MLSERVER_GRPC_PORT: String(grpc), MLSERVER_METRICS_PORT: String(metrics) },
    stdio: ["ignore", "pipe", "pipe"], detached: true,
  });
  mlserver.stderr.on("data", (d) => logs.push(`[mlserver] ${d}`));
  BASE = `http://127.0.0.1:${port}`;
  strata = spawn(BIN, ["serve", "--no-demo", "--addr", `127.0.0.1:${port}`], {
    env: { ...process.env, STRATA_DATA_DIR: join(dir, "data"), DATABASE_URL: "", RUST_LOG: "warn", LEPTOS_SITE_ROOT: SITE,
      STRATA_OUTBOUND_ALLOW: "127.0.0.1", STRATA_OUTBOUND_PRIVATE: "true" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  strata.stderr.on("data", (d) => logs.push(`[strata] ${d}`));
  browser = await launch();
  await waitFor(`${BASE}/healthz`, strata, "Strata");
  await waitFor(`http://127.0.0.1:${http}/v2/models/adult-pipe/ready`, mlserver, "MLServer");

  // The run: the first 300 demo rows, with the pipeline's own probabilities as score_pipe.
  const p = reference.filter((r) => r[0] === "rows" && r[2] === "adult-pipe").map((r) => r[3]);
  const lines = (await readFile(join(DEMO, "adult/eval.csv"), "utf8")).split("\n");
  const csv = [`${lines[0]},score_pipe`, ...p.map((v, i) => `${lines[i + 1]},${v}`)].join("\n") + "\n";
  const form = new FormData();
  form.append("spec", JSON.stringify({ name: "served by MLServer", label: "label", id: "example_id", timestamp: "timestamp", scores: ["score_logreg", "score_gbt", "score_pipe"] }));
  form.append("file", new Blob([csv]), "served.csv");
  const up = await fetch(`${BASE}/api/v1/runs`, { method: "POST", body: form });
  const upText = await up.text();
  assert.equal(up.status, 201, upText);
  runId = JSON.parse(upText).id;
  const put = await fetch(`${BASE}/api/v1/runs/${runId}/endpoints`, {
    method: "PUT", headers: { "content-type": "application/json" },
    body: JSON.stringify([{ name: "score_pipe", url: `http://127.0.0.1:${http}`, protocol: "kserve-v2", model: "adult-pipe" }]),
  });
  assert.equal(put.status, 200, await put.text());
});

after(async () => {
  await browser?.close();
  strata?.kill("SIGTERM");
  if (mlserver) { try { process.kill(-mlserver.pid, "SIGKILL"); } catch { /* gone */ } }
  if (dir) await rm(dir, { recursive: true, force: true });
});

test("a model served by MLServer: the run page's test agrees, a what-if edit equals predict_proba", { skip: !VENV && "STRATA_SERVED_VENV is not set" }, async () => {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 1000 } })).newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${BASE}/runs/${runId}`);
  await waitForHydration(page);
  await page.getByTestId("test-endpoint-score_pipe").click();
  const result = page.getByTestId("endpoint-test");
  await result.waitFor();
  assert.match(await result.innerText(), /score_pipe: 100 rows in \d+ ms — agrees with score_pipe: largest difference/);
  await page.screenshot({ path: "end2end/test-results/served-run.png", fullPage: true });

  // What-if on the first example: age 51 -> 30, predicted through MLServer.
  await page.goto(`${BASE}/runs/${runId}/whatif?model=score_pipe&example=adult-00000`);
  await waitForHydration(page);
  await page.getByRole("spinbutton", { name: "edit age" }).fill("30");
  await page.getByRole("button", { name: "Predict" }).click();
  await page.waitForURL(/set\.age=30/);
  // The editor updates in place: wait for the edited example, not the one before it.
  await page.getByTestId("edit-summary").filter({ hasText: "1 feature edited" }).waitFor();
  const want = Number(reference.find((r) => r[0] === "edits" && r[1] === "0" && r[2] === "adult-pipe")[3]);
  const cell = page.getByTestId("predictions").locator('tr[data-model="score_pipe"] td.edited-score');
  await cell.waitFor();
  const got = Number(await cell.innerText());
  assert.ok(Math.abs(got - want) < 5e-5, `what-if through MLServer ${got}, predict_proba ${want}`);
  await page.screenshot({ path: "end2end/test-results/served-whatif.png", fullPage: true });
  assert.deepEqual(errors, []);
});
