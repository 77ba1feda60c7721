// Residuals of the regression demo: the feature ranking and the charts, a feature and a slicing
// picked, and a copied link that reproduces the view in a fresh browser.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { BASE, launch, waitForHydration } from "../pages/browser.mjs";
import { RunsPage } from "../pages/runs_page.mjs";

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test("wages residuals: ranking, charts, feature and slice, copied link", async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: BASE });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  const runs = new RunsPage(page);
  await runs.open();
  await runs.runLink("GSS wages (demo)").click();
  // The overview shows the regression label as a histogram, not as classes.
  const bins = page.getByTestId("label-histogram").locator("tbody tr");
  await page.waitForURL(/\/runs\/[0-9a-f]+$/);
  await bins.first().waitFor();
  assert.equal(await bins.count(), 12);
  const counts = (await bins.locator("td:nth-child(2)").allInnerTexts()).map(Number);
  const run = (await (await fetch(`${BASE}/api/v1/runs`)).json()).find((r) => r.name === "GSS wages (demo)");
  assert.equal(counts.reduce((a, b) => a + b, 0), run.rows, "every row in one bin");
  await page.getByRole("link", { name: "Residuals →" }).click();
  await page.waitForURL(/\/residuals/);
  await waitForHydration(page);
  const ranking = page.getByTestId("feature-ranking");
  await ranking.locator("tbody tr").first().waitFor();
  const features = await ranking.locator("tbody tr td:first-child").allInnerTexts();
  assert.ok(features.length >= 8, `every feature is ranked: ${features}`);
  assert.ok(features.includes("age") && features.includes("gender"));
  // Every chart is drawn (plotly marks it), none ships the raw rows.
  await page.locator('[aria-label="Residual vs prediction"][data-rendered="true"]').waitFor();
  await page.locator('[aria-label="Normal Q-Q plot"][data-rendered="true"]').waitFor();
  await page.locator('[aria-label="Residual histogram"][data-rendered="true"]').waitFor();
  await page.locator('[aria-label="Autocorrelation of residuals"][data-rendered="true"]').waitFor();
  assert.match(await page.getByTestId("residual-summary").innerText(), /Durbin–Watson \d\.\d{3}/);
  // Pick a categorical feature (client-side navigation) and a slicing.
  await page.getByRole("combobox", { name: "Feature" }).selectOption("gender");
  await page.waitForURL(/feature=gender/);
  await page.locator('[aria-label="Residual vs gender"][data-rendered="true"]').waitFor();
  await page.getByRole("combobox", { name: "Bias by slice", exact: true }).selectOption("educcat");
  await page.getByRole("button", { name: "Apply" }).click();
  await page.waitForURL(/slice=educcat/);
  const bias = page.getByTestId("slice-bias");
  await bias.locator("tbody tr").first().waitFor();
  const biasRows = await bias.locator("tbody tr").allInnerTexts();
  assert.ok(biasRows.length >= 3, biasRows.join("\n"));
  await page.screenshot({ path: "end2end/test-results/residuals.png", fullPage: true });
  // Copy the link; a reviewer opening it in a fresh browser sees the same view.
  await page.getByRole("button", { name: "Copy link" }).click();
  await page.getByRole("button", { name: "Link copied" }).waitFor();
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  assert.equal(copied, page.url());
  const reviewer = await (await browser.newContext()).newPage();
  await reviewer.goto(copied);
  await reviewer.getByTestId("slice-bias").locator("tbody tr").first().waitFor();
  assert.deepEqual(await reviewer.getByTestId("slice-bias").locator("tbody tr").allInnerTexts(), biasRows);
  assert.deepEqual(await reviewer.getByTestId("feature-ranking").locator("tbody tr td:first-child").allInnerTexts(), features);
  assert.equal(await reviewer.getByRole("combobox", { name: "Feature" }).inputValue(), "gender");
  assert.deepEqual(errors, []);
});
