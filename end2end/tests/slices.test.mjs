// Slicing the demo run: pick a feature, a metric and a threshold; the link reproduces the view.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { BASE, launch, waitForHydration } from "../pages/browser.mjs";
import { RunsPage, RunPage, SlicesPage, UploadPage } from "../pages/runs_page.mjs";

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test("slice by race, change metric and threshold, reopen the link", async () => {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 1000 } })).newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  const runs = new RunsPage(page);
  await runs.open();
  await runs.runLink("Adult income (demo)").click();
  await page.getByRole("link", { name: "Metrics by slice →" }).click();
  await waitForHydration(page);
  const slices = new SlicesPage(page);
  await slices.sliceBy().selectOption("race");
  await slices.setThresholds([0.5]);
  await slices.apply().click();
  await page.waitForURL(/slice=race/);
  await slices.row("race=Black").waitFor();
  await slices.metric().selectOption("fpr");
  await page.waitForURL(/metric=fpr/);
  await slices.chart().waitFor();
  const before = await slices.row("race=Black").innerText();
  // The slider changes the threshold without a page load (client-side navigation).
  await page.evaluate(() => { window.__noReload = true; });
  await slices.slider().fill("0.3");
  await page.waitForURL(/thresholds=0\.3/);
  await page.getByTestId("threshold-value").filter({ hasText: "0.3" }).waitFor();
  const after = await slices.row("race=Black").innerText();
  assert.notEqual(after, before, "the numbers follow the threshold");
  assert.equal(await page.evaluate(() => window.__noReload), true, "no page load");
  // A reviewer opening the link sees the same numbers.
  const url = page.url();
  const reviewer = await (await browser.newContext()).newPage();
  await reviewer.goto(url);
  const seen = await new SlicesPage(reviewer).row("race=Black").innerText();
  assert.equal(seen, after);
  assert.equal(await reviewer.getByRole("combobox", { name: "Metric" }).inputValue(), "fpr");
  // Sorting happens in the browser and is kept in the URL.
  await page.getByRole("combobox", { name: "Sort" }).selectOption("count");
  await page.waitForURL(/sort=count/);
  const firstRows = await slices.rows().allInnerTexts();
  assert.match(firstRows[0], /^overall/);
  assert.match(firstRows[1], /^race=White/);
  // Each slice's confusion counts at the shown threshold, in a collapsible matrix.
  const black = slices.row("race=Black");
  await black.getByText("confusion").click();
  const cells = await black.locator("table.confusion-matrix td").allInnerTexts();
  assert.equal(cells.length, 4);
  assert.equal(cells.map(Number).reduce((a, b) => a + b, 0), Number((await black.locator(":scope > td.num").first().innerText()).trim()), "the four counts add up to the slice's count");
  await page.screenshot({ path: "end2end/test-results/slices.png", fullPage: true });
  assert.deepEqual(errors, []);
});

test("a multiclass model given as per-class probabilities: uploaded, offered as one model, top-k by slice", async () => {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 1000 } })).newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  const upload = new UploadPage(page);
  await upload.open();
  await upload.choose(new URL("../../server/tests/golden/multiclass.csv", import.meta.url).pathname);
  await upload.preview().waitFor();
  assert.equal(await upload.role("prob_mlp_owl").inputValue(), "score");
  await upload.name().fill("animals via page");
  await upload.submit().click();
  await page.waitForURL(/\/runs\/[0-9a-f]+$/, { timeout: 60000 });
  const run = new RunPage(page);
  await run.heading().filter({ hasText: "animals via page" }).waitFor();
  assert.match(await run.headlineTable().innerText(), /prob_mlp\s+0\.6833/, "the argmax model's accuracy (scikit-learn: 0.6833)");
  await page.getByRole("link", { name: "Metrics by slice →" }).click();
  await waitForHydration(page);
  const slices = new SlicesPage(page);
  await slices.sliceBy().selectOption("group");
  await slices.apply().click();
  await page.waitForURL(/slice=group/);
  await slices.model().selectOption("prob_mlp");
  await page.waitForURL(/model=prob_mlp/);
  await slices.metric().selectOption("top_2_accuracy");
  await page.waitForURL(/metric=top_2_accuracy/);
  await slices.chart().waitFor();
  // scikit-learn's top_k_accuracy_score (k = 2) per group (server/tests/golden/multiclass.json).
  // The URL changes first and the view in place once the new numbers arrive (seconds on a busy
  // machine): each row is given time to show its value, then checked.
  for (const [group, value] of [["north", "0.9445"], ["south", "0.8053"], ["west", "0.7904"]]) {
    const row = slices.row(`group=${group}`);
    await row.filter({ hasText: value }).waitFor({ timeout: 30000 }).catch(() => {});
    assert.match(await row.innerText(), new RegExp(value));
  }
  await page.screenshot({ path: "end2end/test-results/top_k.png", fullPage: true });
  assert.deepEqual(errors, []);
});

test("pickers: race by picker only, worst FPR group; a typo keeps the form and the result; age quantiles by the builder", async () => {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 1000 } })).newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  const runs = new RunsPage(page);
  await runs.open();
  await runs.runLink("Adult income (demo)").click();
  await page.getByRole("link", { name: "Metrics by slice →" }).click();
  await waitForHydration(page);
  const slices = new SlicesPage(page);
  // Options say each column's type and cardinality; label and score columns are not offered.
  // After a client-side navigation the columns arrive with the page's data: wait for them.
  await slices.sliceBy().locator("option", { hasText: "race · categorical" }).waitFor({ state: "attached" });
  const options = await slices.sliceBy().locator("option").allInnerTexts();
  assert.ok(options.includes("race · categorical · 5 values"), options.join(" | "));
  assert.ok(options.includes("age · numeric"), options.join(" | "));
  assert.ok(!options.some((o) => /^(label|score_logreg) /.test(o)), options.join(" | "));
  // The picker alone: race, then FPR; worst first puts the race group with the highest FPR on top.
  await slices.sliceBy().selectOption("race");
  assert.equal(await slices.andBy().isVisible(), true, "a second column appears once the first is chosen");
  await slices.apply().click();
  await page.waitForURL(/slice=race(&|$)/);
  assert.doesNotMatch(page.url(), /[?&]=|=(&|$)/, "no empty parameter in the URL");
  await slices.metric().selectOption("fpr");
  await page.waitForURL(/metric=fpr/);
  await slices.row("race=Black").waitFor();
  const raceRows = (await slices.rows().allInnerTexts()).filter((r) => r.startsWith("race="));
  assert.equal(raceRows.length, 5);
  const fpr = (r) => Number(r.split("\t")[2]);
  const worst = raceRows.reduce((a, b) => (fpr(b) > fpr(a) ? b : a));
  assert.equal(raceRows[0], worst, `worst first: ${raceRows.map((r) => r.split("\t").slice(0, 3).join(" ")).join(" | ")}`);
  const shownBefore = await slices.row("race=Black").innerText();

  // A typo in the advanced field: the message sits at the field, the form and the last result stay.
  await slices.openAdvanced();
  await slices.spec().fill("rac");
  await slices.apply().click();
  await page.waitForURL(/slice=rac(&|$)/);
  await slices.sliceError().waitFor();
  assert.match(await slices.sliceError().innerText(), /column 'rac' is not in the run; did you mean 'race'\?/);
  assert.doesNotMatch(await slices.sliceError().innerText(), /error running server function/);
  assert.equal(await slices.spec().getAttribute("aria-invalid"), "true");
  assert.equal(await slices.spec().getAttribute("aria-describedby"), "slice-error");
  assert.equal(await slices.spec().inputValue(), "rac", "the typed text stays to be fixed");
  assert.equal(await slices.metric().inputValue(), "fpr", "the model/metric/sort row stays");
  assert.equal(await slices.row("race=Black").innerText(), shownBefore, "the last good result stays");
  await page.getByTestId("kept-result").waitFor();
  await page.screenshot({ path: "end2end/test-results/slices-error.png", fullPage: true });

  // The bucket builder: age in five quantile buckets.
  await slices.sliceBy().selectOption("age");
  const buckets = page.getByRole("combobox", { name: "Buckets of age" });
  assert.equal(await buckets.inputValue(), "quantiles");
  await page.getByRole("spinbutton", { name: "Number of buckets of age" }).fill("5");
  await page.getByRole("spinbutton", { name: "Number of buckets of age" }).press("Tab");
  assert.equal(await slices.spec().inputValue(), "age:q5", "the advanced field reflects the picked spec");
  await slices.apply().click();
  await page.waitForURL(/slice=age%3Aq5/);
  await slices.sliceError().waitFor({ state: "detached" });
  await slices.row("age=[").first().waitFor();
  const ageRows = (await slices.rows().allInnerTexts()).filter((r) => r.startsWith("age="));
  assert.equal(ageRows.length, 5, ageRows.join("\n"));
  // Fixed edges, validated as typed.
  await buckets.selectOption("edges");
  const edges = page.getByRole("textbox", { name: "Edges of age" });
  await edges.fill("40, 30");
  await edges.press("Tab");
  assert.equal(await edges.getAttribute("aria-invalid"), "true");
  await edges.fill("30, 45, 60");
  await edges.press("Tab");
  await slices.openAdvanced();
  assert.equal(await slices.spec().inputValue(), "age:[30,45,60]", "the advanced field reflects the edges");
  await slices.apply().click();
  await page.waitForURL(/slice=age%3A%5B30%2C45%2C60%5D/);
  await slices.row("age=[45, 60)").waitFor();
  await page.setViewportSize({ width: 390, height: 900 });
  const formRight = await page.evaluate(() => Math.max(...[...document.querySelectorAll("form *")].map((e) => e.getBoundingClientRect().right)));
  assert.ok(formRight <= 390, `the form fits a phone: ${formRight}`);
  const tableBox = await page.getByRole("region", { name: "Metrics by slice" }).boundingBox();
  assert.ok(tableBox.x + tableBox.width <= 390, "the table scrolls inside its wrapper");
  await page.screenshot({ path: "end2end/test-results/slices-pickers-390.png", fullPage: true });
  assert.deepEqual(errors, []);
});
