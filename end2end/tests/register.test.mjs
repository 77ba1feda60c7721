// Registering an external run through the upload page (issue 18): the demo's Parquet file stays
// where it is, the run page names it and shows its rows (saying how many were read), its slices are
// computed from it, the what-if tool reads its rows; a path the server cannot
// read gets the server's own error beside the button, and nothing is stored.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { BASE, DEMO, launch, waitForHydration } from "../pages/browser.mjs";
import { RunPage, SlicesPage, UploadPage, RegisterForm } from "../pages/runs_page.mjs";

let browser;
before(async () => {
  mkdirSync("end2end/test-results", { recursive: true });
  browser = await launch();
});
after(async () => { await browser?.close(); });

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  return { page, errors };
}

async function openForm(page) {
  await new UploadPage(page).open();
  const form = new RegisterForm(page);
  await form.section.waitFor();
  return form;
}

test("registering the demo's Parquet file through the page: the run page names it, its slices are computed", async () => {
  const { page, errors } = await newPage();
  const path = `${DEMO}/adult/eval.parquet`;
  const form = await openForm(page);
  assert.equal(await form.source("Parquet dataset").isChecked(), true, "Parquet is the default source");
  // The form says where the path is read, and where a Spark token goes.
  assert.match(await form.section.innerText(), /reads it on its own machine/);
  assert.match(await form.section.innerText(), /--external-root/);
  await form.field("Dataset path").fill(path);
  await form.field("Label column").fill("label");
  await form.field("Score columns").fill("score_logreg,score_gbt");
  await form.field("Name").fill("adult registered via page");
  await form.section.screenshot({ path: "end2end/test-results/register-form.png" });
  await form.submit().click();

  await page.waitForURL(/\/runs\/[0-9a-f]+$/, { timeout: 60000 });
  const run = new RunPage(page);
  await run.heading().filter({ hasText: "adult registered via page" }).waitFor();
  const facts = await page.locator("dl.facts").innerText();
  assert.ok(facts.includes(`Parquet: ${path}`), facts);
  // The same rows as the uploaded demo run, so the same headline numbers (scikit-learn: 0.9055 / 0.9216).
  const headline = await run.headlineTable().innerText();
  assert.match(headline, /0\.9055/);
  assert.match(headline, /0\.9216/);
  // The run is external: registered, not uploaded.
  const id = page.url().split("/").pop();
  const detail = await (await fetch(`${BASE}/api/v1/runs/${id}`)).json();
  assert.deepEqual(detail.source, { parquet: path });
  // Its rows are read from the file (all 16,000 here), and the page says so above the table.
  assert.match(await page.getByTestId("row-sample").innerText(), /^Computed on all 16,000 rows of this external run \(read from its Parquet files\)\.$/);

  await page.getByRole("link", { name: "Metrics by slice →" }).click();
  await waitForHydration(page);
  const slices = new SlicesPage(page);
  await slices.sliceBy().locator("option", { hasText: "race · categorical" }).waitFor({ state: "attached" });
  await slices.sliceBy().selectOption("race");
  await slices.apply().click();
  await page.waitForURL(/slice=race(&|$)/);
  await slices.row("race=Black").waitFor({ timeout: 60000 });
  assert.ok(await slices.rows().count() >= 5, "a row per race group");
  await page.screenshot({ path: "end2end/test-results/register-slices.png", fullPage: true });

  // The what-if tool reads the same rows, and says which.
  await page.goto(`${BASE}/runs/${id}/whatif`);
  await waitForHydration(page);
  assert.match(await page.getByTestId("row-sample").innerText(), /all 16,000 rows of this external run/);
  await page.screenshot({ path: "end2end/test-results/register-whatif.png", fullPage: true });

  // Residuals: the analysis of the rows read, its bias by slice counted from every row's cells.
  await page.goto(`${BASE}/runs/${id}/residuals?slice=race`);
  await waitForHydration(page);
  assert.match(await page.getByTestId("bias-rows").innerText(), /^Over all 16,000 rows of the run \(counted where they are\), not the sample\.$/);
  assert.ok(await page.getByTestId("slice-bias").locator("tbody tr").count() >= 5, "a row per race group");
  await page.screenshot({ path: "end2end/test-results/register-residuals.png", fullPage: true });
  assert.deepEqual(errors, []);
});

test("a path the server cannot read: the server's error beside the button, nothing stored", async () => {
  const { page, errors } = await newPage();
  const before = await (await fetch(`${BASE}/api/v1/runs`)).json();
  const path = "/nonexistent/regpage/preds.parquet";
  // What the API itself answers for this body.
  const api = await fetch(`${BASE}/api/v1/runs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ label: "label", source: { parquet: path } }),
  });
  assert.ok(api.status >= 400 && api.status < 500, `status ${api.status}`);
  const { error } = await api.json();

  const form = await openForm(page);
  await form.field("Dataset path").fill(path);
  await form.field("Label column").fill("label");
  await form.submit().click();
  await form.error().waitFor();
  assert.equal((await form.error().innerText()).trim(), error);
  assert.match(error, /\/nonexistent\/regpage/);
  assert.match(page.url(), /\/upload$/, "the page stays");
  assert.equal(await form.field("Dataset path").inputValue(), path, "the form keeps what was typed");

  // Spark: the address and either a table or a path, checked before anything is sent.
  await form.source("Spark (Spark Connect)").check();
  await form.field("Spark address").fill("sc://127.0.0.1:15002");
  await form.submit().click();
  await form.error().filter({ hasText: "Give either a table or a path for Spark to read, not both." }).waitFor();
  await form.section.screenshot({ path: "end2end/test-results/register-spark-form.png" });

  const after = await (await fetch(`${BASE}/api/v1/runs`)).json();
  assert.equal(after.length, before.length);
  assert.deepEqual(errors, []);
});
