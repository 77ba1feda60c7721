// Slice discovery (issue 17) as a user meets it: from the Adult demo's overview to "Find weak
// slices", a search with the pickers (model, metric, features per slice), a found slice followed into
// the fairness view and back, its numbers equal to the slices API's for the same slice, and a copied
// link that reproduces the result.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { BASE, launch, waitForHydration } from "../pages/browser.mjs";

let browser, demoId;

before(async () => {
  browser = await launch();
  const runs = await (await fetch(`${BASE}/api/v1/runs`)).json();
  demoId = runs.find((r) => r.name === "Adult income (demo)").id;
});

after(async () => {
  await browser?.close();
});

test("find the weak slices, follow one into fairness and back, copy a link that reproduces them", async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: BASE });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));

  await page.goto(`${BASE}/runs/${demoId}`);
  await waitForHydration(page);
  await page.getByRole("link", { name: "Find weak slices →" }).click();
  await page.waitForURL(/\/discover/);
  await page.getByTestId("discovered").waitFor();

  // Pickers only: the logistic model, its false negative rate, slices of up to two features.
  await page.getByRole("combobox", { name: "Model" }).selectOption("score_logreg");
  await page.getByRole("combobox", { name: "Metric" }).selectOption("fnr");
  await page.getByRole("combobox", { name: "Features per slice" }).selectOption("2");
  await page.getByRole("button", { name: "Search" }).click();
  await page.waitForURL(/metric=fnr/);
  await page.waitForFunction(() => document.querySelector("[data-testid=discover-summary]")?.textContent.includes("false negative rate"));
  const summary = await page.getByTestId("discover-summary").innerText();
  const examined = Number(summary.match(/examined (\d+) slices/)[1]);
  assert.ok(examined > 50, `the lattice examined many slices: ${summary}`);
  const rows = page.getByTestId("discovered-row");
  assert.ok((await rows.count()) >= 1, "Adult's logistic model has significantly weak slices");
  const first = await rows.first().locator("td").allInnerTexts();
  const q = first[6].startsWith("<") ? 0 : parseFloat(first[6]);
  assert.ok(q <= 0.05, `the best slice is significant after BY: ${first.join(" | ")}`);
  const gap = parseFloat(first[5]);
  assert.ok(gap > 0, `worse than the rest: ${first.join(" | ")}`);
  await page.screenshot({ path: "end2end/test-results/discover.png", fullPage: false });

  // The API says the same, and its numbers equal the slices API's for the same slice.
  const api = await (await fetch(`${BASE}/api/v1/runs/${demoId}/discover?model=score_logreg&metric=fnr&level=2`)).json();
  const best = api.slices[0];
  assert.equal(String(best.count), first[2]);
  const m = await (await fetch(`${BASE}/api/v1/runs/${demoId}/metrics?model=score_logreg&bootstrap=0&slice=${encodeURIComponent(best.spec)}`)).json();
  const same = m.slices.find((s) => Object.keys(s.key).length === best.features.length && Object.entries(s.key).every(([k, v]) => best.key[k] === v));
  assert.ok(same, `the slices API has the slice ${JSON.stringify(best.key)} under ${best.spec}`);
  assert.equal(same.count, best.count);
  const fnr = same.at[0].fnr;
  assert.ok(Math.abs(fnr.value - best.metric.value) < 1e-12, `${fnr.value} vs ${best.metric.value}`);
  assert.ok(Math.abs(fnr.lo - best.metric.lo) < 1e-9 && Math.abs(fnr.hi - best.metric.hi) < 1e-9, "and the same Wilson interval");

  // Into the fairness view, grouped by the slice's features, and back.
  await rows.first().getByTestId("open-fairness").click();
  await page.waitForURL(/\/fairness\?/);
  await waitForHydration(page);
  const fairnessUrl = new URL(page.url());
  assert.equal(fairnessUrl.searchParams.get("feature"), best.spec);
  await page.getByTestId("table-fnr").waitFor();
  const groups = await page.getByTestId("table-fnr").innerText();
  for (const v of Object.values(best.key)) assert.ok(groups.includes(v), `the fairness table shows the group ${v}`);
  await page.goBack();
  await page.waitForURL(/\/discover/);
  await page.getByTestId("discovered").waitFor();

  // A copied link reproduces the search.
  await waitForHydration(page);
  await page.getByRole("button", { name: "Copy link" }).click();
  const link = await page.evaluate(() => navigator.clipboard.readText());
  assert.match(link, /metric=fnr/);
  const other = await context.newPage();
  await other.goto(link);
  await other.getByTestId("discovered").waitFor();
  const again = await other.getByTestId("discovered-row").first().locator("td").allInnerTexts();
  assert.deepEqual(again, first);
  assert.deepEqual(errors, []);
  await context.close();
});

test("a typo in a parameter keeps the form and says what is wrong", async () => {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${BASE}/runs/${demoId}/discover?features=sexx`);
  const text = await page.locator("body").innerText();
  assert.match(text, /'sexx' is not a feature column of this run; did you mean 'sex'\?/);
  assert.ok(await page.getByRole("button", { name: "Search" }).isVisible(), "the form stays");
  // What-if's slice filter with a value no row has says so, with the value meant.
  await page.goto(`${BASE}/runs/${demoId}/whatif?slice=${encodeURIComponent("sex=Femal")}`);
  assert.equal(await page.getByTestId("browser-count").innerText(), "No example matches: the filter names a value no row has (see the filter above).");
  assert.equal(await page.getByTestId("slice-error").innerText(), "no value 'Femal' in sex; did you mean 'Female'?");
  // A slice spec naming a column the run lacks suggests the one meant.
  const r = await fetch(`${BASE}/api/v1/runs/${demoId}/metrics?slice=gender`);
  assert.equal(r.status, 400);
  assert.match((await r.json()).error, /column 'gender' is not in the run/);
});
