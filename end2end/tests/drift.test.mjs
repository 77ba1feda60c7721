// Drift: upload a copy of the Adult demo's later rows with everyone ten years older, compare it with
// the demo run on its drift page, see age flagged and its histograms, and reopen the copied link.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { BASE, DEMO, launch, waitForHydration } from "../pages/browser.mjs";

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test("drift: an older population is flagged on age, and the link reproduces the view", async () => {
  // The shared Adult CSV with age + 10 on every row.
  const lines = (await readFile(`${DEMO}/adult/eval.csv`, "utf8")).trim().split("\n");
  const header = lines[0].split(",");
  const age = header.indexOf("age");
  const older = [lines[0], ...lines.slice(1).map((l) => { const c = l.split(","); if (c[age] !== "") c[age] = String(Number(c[age]) + 10); return c.join(","); })].join("\n");
  const form = new FormData();
  form.append("file", new Blob([older]), "older.csv");
  form.append("spec", JSON.stringify({ name: "Adult, ten years older", label: "label", scores: ["score_logreg", "score_gbt"], id: "example_id", timestamp: "timestamp" }));
  const res = await fetch(`${BASE}/api/v1/runs`, { method: "POST", body: form });
  assert.equal(res.status, 201, await res.clone().text());
  const { id } = await res.json();
  const runs = await (await fetch(`${BASE}/api/v1/runs`)).json();
  const demo = runs.find((r) => r.name === "Adult income (demo)");

  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: BASE });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${BASE}/runs/${id}`);
  await waitForHydration(page);
  await page.getByRole("link", { name: "Drift →" }).click();
  await page.waitForURL(/\/drift/);
  await page.getByRole("combobox", { name: "Reference run" }).selectOption(demo.id);
  await page.getByRole("button", { name: "Compare" }).click();
  await page.waitForURL(/reference=/);
  await page.getByTestId("drift-summary").filter({ hasText: "1 feature drifted" }).waitFor();
  const first = await page.getByTestId("drift-table").locator("tr.drift-row").first().innerText();
  assert.match(first, /^age\tnumeric\t.*drifted$/);
  await page.locator('[aria-label="Feature distribution, reference vs current"][data-rendered="true"]').waitFor();
  await page.getByRole("button", { name: "Copy link" }).click();
  await page.getByRole("button", { name: "Link copied" }).waitFor();
  const link = await page.evaluate(() => navigator.clipboard.readText());
  const reviewer = await (await browser.newContext()).newPage();
  await reviewer.goto(link);
  assert.equal(await reviewer.getByTestId("drift-table").locator("tr.drift-row").first().innerText(), first);
  await page.screenshot({ path: "end2end/test-results/drift.png", fullPage: true });
  assert.deepEqual(errors, []);
});
