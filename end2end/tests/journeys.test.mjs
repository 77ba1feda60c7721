// Real user journeys against a running Strata (scripts/test.sh starts one with the demo loaded).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { BASE, DEMO, TESTDATA, launch, waitForHydration } from "../pages/browser.mjs";
import { RunsPage, RunPage, UploadPage } from "../pages/runs_page.mjs";

let browser;
before(async () => {
  mkdirSync("end2end/test-results", { recursive: true });
  browser = await launch();
});
after(async () => { await browser?.close(); });

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  return { page, errors, context };
}

test("the demo run's overview renders a chart and its controls respond after hydration", async () => {
  const { page, errors } = await newPage();
  const runs = new RunsPage(page);
  await runs.open();
  await runs.runLink("Adult income (demo)").click();
  await page.waitForURL(/\/runs\/[0-9a-f]+$/);
  const run = new RunPage(page);
  await assert.doesNotReject(run.heading().filter({ hasText: "Adult income (demo)" }).waitFor());
  // Headline metrics are the engine's (scikit-learn agrees: AUC 0.9055 / 0.9216).
  const headline = await run.headlineTable().innerText();
  assert.match(headline, /0\.9055/);
  assert.match(headline, /0\.9216/);
  // Plotly drew the chart: an SVG with bars.
  await page.locator('.plot[data-rendered="true"]').waitFor();
  assert.ok(await page.locator(".plot .main-svg").count() > 0, "plotly svg present");
  // A hydrated control: filtering columns updates the table at once.
  assert.match(await run.columnCount().innerText(), /^18 of 18 columns$/);
  await run.columnFilter().fill("sex");
  assert.match(await run.columnCount().innerText(), /^1 of 18 columns$/);
  // Choosing another model puts it in the URL and redraws the chart.
  await run.modelPicker().selectOption("score_gbt");
  await page.waitForURL(/model=score_gbt/);
  await page.waitForFunction(() => document.querySelector(".plot")?.getAttribute("data-plot")?.includes("score_gbt"));
  await page.locator('.plot[data-rendered="true"]').waitFor();
  await page.screenshot({ path: "end2end/test-results/overview.png", fullPage: true });
  assert.deepEqual(errors, []);
});

test("a link to a view reproduces it, also with JavaScript off", async () => {
  const { page } = await newPage();
  await page.goto(`${BASE}/?q=wages`);
  await page.getByRole("link", { name: "GSS wages (demo)" }).click();
  await page.waitForURL(/\/runs\//);
  const url = page.url() + "?model=prediction_gbt";
  const context = await browser.newContext({ javaScriptEnabled: false });
  const nojs = await context.newPage();
  await nojs.goto(url);
  assert.equal(await nojs.getByRole("heading", { level: 1 }).innerText(), "GSS wages (demo)");
  assert.match(await nojs.locator("table.headline").innerText(), /rmse/);
  const figure = await nojs.locator(".plot").getAttribute("data-plot");
  assert.match(figure, /prediction_gbt/, "the chart shows the model named in the URL");
  assert.equal(await nojs.getByRole("combobox", { name: "Chart model" }).inputValue(), "prediction_gbt");
  // The runs list's search lives in the URL too.
  await nojs.goto(`${BASE}/?q=adult`);
  assert.equal(await nojs.getByRole("link", { name: "GSS wages (demo)" }).count(), 0);
  assert.equal(await nojs.getByRole("link", { name: "Adult income (demo)" }).count(), 1);
  await context.close();
});

test("uploading a CSV through the page: preview, roles, run page, runs list", async () => {
  const { page, errors } = await newPage();
  const upload = new UploadPage(page);
  await upload.open();
  await upload.choose(`${DEMO}/adult/eval.csv`);
  await upload.preview().waitFor();
  assert.match(await upload.preview().innerText(), /adult-00000/);
  assert.equal(await upload.role("label").inputValue(), "label");
  assert.equal(await upload.role("score_gbt").inputValue(), "score");
  assert.equal(await upload.role("example_id").inputValue(), "id");
  assert.equal(await upload.role("age").inputValue(), "feature");
  await upload.role("score_logreg").selectOption("ignore");
  await upload.name().fill("adult via page");
  await upload.submit().click();
  await page.waitForURL(/\/runs\/[0-9a-f]+$/, { timeout: 60000 });
  const run = new RunPage(page);
  await run.heading().filter({ hasText: "adult via page" }).waitFor();
  assert.match(await page.locator("dl.facts").innerText(), /16000/);
  assert.doesNotMatch(await run.headlineTable().innerText(), /score_logreg/, "ignored column left out");
  await page.locator('.plot[data-rendered="true"]').waitFor();
  const runs = new RunsPage(page);
  await runs.open();
  await runs.runLink("adult via page").waitFor();
  await page.screenshot({ path: "end2end/test-results/runs.png", fullPage: true });
  assert.deepEqual(errors, []);
});

test("a bad file gets a clear error on the page and nothing is stored", async () => {
  const { page } = await newPage();
  const before = await (await fetch(`${BASE}/api/v1/runs`)).json();
  const upload = new UploadPage(page);
  await upload.open();
  await upload.choose(`${TESTDATA}/bad/score_out_of_range.csv`);
  await upload.preview().waitFor();
  await upload.name().fill("should fail");
  await upload.submit().click();
  const alert = upload.error();
  await alert.waitFor();
  const text = await alert.innerText();
  assert.match(text, /score_out_of_range\.csv was not stored: 4 problems/);
  assert.match(text, /line 3, column 'score_logreg': the score is NaN/);
  assert.match(text, /line 4, column 'score_logreg': 1\.7 is outside \[0, 1\]/);
  assert.match(text, /line 6, column 'score_logreg': the score is inf/);
  const afterRuns = await (await fetch(`${BASE}/api/v1/runs`)).json();
  assert.equal(afterRuns.length, before.length);
  await page.screenshot({ path: "end2end/test-results/upload-error.png", fullPage: true });
});

test("a CSV whose roles cannot be inferred: the role table, Upload disabled with the reason, roles picked, the run stored", async () => {
  const { page, errors } = await newPage();
  // The runs list pins the demo runs under "Start here" while they are all there is.
  const before = await (await fetch(`${BASE}/api/v1/runs`)).json();
  const own = before.some((r) => !r.tags.includes("demo"));
  const runs = new RunsPage(page);
  await runs.open();
  assert.equal(await runs.startHere().count(), own ? 0 : 1, `Start here iff no run of one's own (${before.length} runs)`);
  if (!own) assert.equal(await runs.startHere().getByRole("link", { name: "Adult income (demo)" }).count(), 1);

  // `y,p,g`: the names suggest the label (y) but no score column.
  const rows = ["y,p,g"];
  let seed = 11;
  const rand = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
  for (let i = 0; i < 60; i++) {
    const y = i % 3 === 0 ? 1 : 0;
    rows.push(`${y},${(0.6 * y + 0.4 * rand()).toFixed(3)},${i % 2 ? "a" : "b"}`);
  }
  const file = "end2end/test-results/ypg.csv";
  writeFileSync(file, rows.join("\n") + "\n");
  const upload = new UploadPage(page);
  await upload.open();
  assert.equal(await upload.blockedReason(), "Choose a file first.");
  await upload.choose(file);
  await upload.preview().waitFor();
  assert.equal(await upload.role("y").inputValue(), "label");
  assert.equal(await upload.role("p").inputValue(), "feature");
  assert.equal(await upload.role("g").inputValue(), "feature");
  assert.ok(await upload.submit().isDisabled(), "Upload waits for a score column");
  assert.equal(await upload.blockedReason(), "Choose at least one score column.");
  // Roles are checked as they are chosen.
  await upload.role("y").selectOption("feature");
  assert.equal(await upload.blockedReason(), "Choose a label column.");
  assert.match(await page.getByTestId("role-problems").innerText(), /Choose a label column\.\s+Choose at least one score column\./);
  await page.screenshot({ path: "end2end/test-results/upload-roles.png", fullPage: true });
  await upload.role("y").selectOption("label");
  await upload.role("p").selectOption("score");
  assert.equal(await upload.blockedReason(), "");
  assert.ok(await upload.submit().isEnabled());
  assert.equal(await upload.name().inputValue(), "ypg", "named after the file");
  await upload.submit().click();
  await page.waitForURL(/\/runs\/[0-9a-f]+$/, { timeout: 60000 });
  await new RunPage(page).heading().filter({ hasText: "ypg" }).waitFor();
  assert.match(await page.locator("dl.facts").innerText(), /60/);

  // Now there is a run of one's own: the demo runs are in the one sorted list.
  await runs.open();
  assert.equal(await runs.startHere().count(), 0);
  assert.equal(await runs.runLink("Adult income (demo)").count(), 1);
  assert.equal(await runs.header("Created (UTC)").getAttribute("aria-sort"), "descending", "newest first");
  assert.equal((await runs.names())[0], "ypg");
  await runs.sortBy("Name").click();
  await page.waitForURL(`${BASE}/?sort=name&dir=asc`);
  assert.equal(await runs.header("Name").getAttribute("aria-sort"), "ascending");
  assert.equal(await runs.header("Created (UTC)").getAttribute("aria-sort"), null);
  let names = await runs.names();
  const byLower = (a, b) => (a.toLowerCase() < b.toLowerCase() ? -1 : a.toLowerCase() > b.toLowerCase() ? 1 : 0);
  assert.deepEqual(names, [...names].sort(byLower));
  await runs.sortBy("Name").click();
  await page.waitForURL(`${BASE}/?sort=name&dir=desc`);
  assert.equal(await runs.header("Name").getAttribute("aria-sort"), "descending");
  names = await runs.names();
  assert.deepEqual(names, [...names].sort((a, b) => -byLower(a, b)));
  // Filters: from the runs' own values, into the URL, with no empty parameters.
  await runs.filter("Task").selectOption("regression");
  await page.waitForURL(`${BASE}/?task=regression&sort=name&dir=desc`);
  assert.ok((await runs.names()).includes("GSS wages (demo)"));
  assert.ok(!(await runs.names()).includes("Adult income (demo)"));
  await runs.filter("Task").selectOption("");
  await runs.filter("Project").selectOption("adult-income");
  await page.waitForURL(`${BASE}/?project=adult-income&sort=name&dir=desc`);
  assert.ok((await runs.names()).includes("Adult income (demo)"));
  assert.ok(!(await runs.names()).includes("ypg"));
  await runs.filter("Tag").selectOption("demo");
  await page.waitForURL(`${BASE}/?project=adult-income&tag=demo&sort=name&dir=desc`);
  assert.deepEqual(await runs.names(), ["Adult income (demo)"]);
  await runs.search().fill("Adult");
  await page.waitForURL(`${BASE}/?q=Adult&project=adult-income&tag=demo&sort=name&dir=desc`);
  await runs.search().fill("");
  await page.waitForURL(`${BASE}/?project=adult-income&tag=demo&sort=name&dir=desc`);
  await page.screenshot({ path: "end2end/test-results/runs-sorted.png", fullPage: true });
  // The same URL without JavaScript shows the same rows.
  const context = await browser.newContext({ javaScriptEnabled: false });
  const nojs = await context.newPage();
  await nojs.goto(page.url());
  assert.deepEqual(await new RunsPage(nojs).names(), ["Adult income (demo)"]);
  assert.equal(await nojs.getByRole("columnheader", { name: "Name" }).getAttribute("aria-sort"), "descending");
  await context.close();
  assert.deepEqual(errors, []);
});
