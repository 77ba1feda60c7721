// Slicing the demo run: pick a feature, a metric and a threshold; the link reproduces the view.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { BASE, launch, waitForHydration } from "../pages/browser.mjs";
import { RunsPage, SlicesPage } from "../pages/runs_page.mjs";

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
  await slices.sliceBy().fill("race");
  await slices.thresholds().fill("0.5");
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
