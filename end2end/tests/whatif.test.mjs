// What-if on the Adult demo: select an example, edit a feature, see the real model's new score
// (the ONNX reference for that edit), reopen the copied URL in a fresh browser, open a PDP chart.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { BASE, launch, waitForHydration } from "../pages/browser.mjs";
import { RunsPage } from "../pages/runs_page.mjs";

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const editedScore = (page, model) => page.getByTestId("predictions").locator(`tr[data-model="${model}"] td.edited-score`).innerText();

test("what-if: edit age on adult-00002, the model's score changes, the link reproduces it, PDP", async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: BASE });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await new RunsPage(page).open();
  await new RunsPage(page).runLink("Adult income (demo)").click();
  await page.getByRole("link", { name: "What-if →" }).click();
  await page.waitForURL(/\/whatif/);
  await waitForHydration(page);
  await page.locator('[aria-label="Examples by feature and score"][data-rendered="true"]').waitFor();
  // adult-00002 is on the first page of the browser.
  await page.getByRole("link", { name: "select adult-00002" }).click();
  await page.waitForURL(/example=adult-00002/);
  const before = await editedScore(page, "score_gbt");
  // Shared case adult-whatif-03: age 26 -> 41; onnxruntime gives 0.19590855410281882 (gbt).
  await page.getByRole("spinbutton", { name: "edit age" }).fill("41");
  await page.getByRole("button", { name: "Predict" }).click();
  await page.waitForURL(/set\.age=41/);
  await page.getByTestId("predictions").locator('tr[data-model="score_gbt"] td.edited-score', { hasText: "0.19590" }).waitFor();
  const after = await editedScore(page, "score_gbt");
  assert.notEqual(after, before);
  assert.ok(Math.abs(Number(after) - 0.19590855410281882) < 1e-5, after);
  assert.ok(Math.abs(Number(await editedScore(page, "score_logreg")) - 0.05918428718061512) < 1e-5);
  await page.getByTestId("counterfactual").waitFor();
  // Save the edit with the run; it is listed with a link back to it.
  await page.getByRole("textbox", { name: "Saved example name" }).fill("older applicant");
  await page.getByRole("button", { name: "Save", exact: true }).click();
  await page.getByTestId("saved").getByRole("link", { name: "older applicant" }).waitFor();
  assert.match(await page.getByTestId("saved").locator("tbody tr").first().innerText(), /\tage = 41\t/, "only the edit is stored");
  // The copied link holds the edit.
  await page.getByRole("button", { name: "Copy link" }).click();
  await page.getByRole("button", { name: "Link copied" }).waitFor();
  const link = await page.evaluate(() => navigator.clipboard.readText());
  const reviewer = await (await browser.newContext()).newPage();
  await reviewer.goto(link);
  assert.equal(await editedScore(reviewer, "score_gbt"), after);
  assert.equal(await reviewer.getByRole("spinbutton", { name: "edit age" }).inputValue(), "41");
  // Partial dependence of age, with this example's curve.
  await page.getByRole("combobox", { name: "PDP feature" }).selectOption("age");
  await page.waitForURL(/pdp=age/);
  await page.locator('[aria-label="Partial dependence"][data-rendered="true"]').waitFor();
  assert.equal(await page.locator('[aria-label="Partial dependence"] .scatterlayer .trace').count() > 10, true, "ICE lines, the mean and the example");
  // A random attack, per sex.
  await page.getByRole("spinbutton", { name: "Attack noise" }).fill("0.5");
  await page.getByRole("textbox", { name: "Attack slice" }).fill("sex");
  await page.getByRole("button", { name: "Attack" }).click();
  await page.waitForURL(/attack_noise=0\.5/);
  await page.getByTestId("attack").locator("tbody tr").first().waitFor();
  const attack = await page.getByTestId("attack").locator("tbody tr").allInnerTexts();
  assert.equal(attack.length, 3, attack.join("\n"));
  assert.match(attack[0], /^overall\t2000\t0\.\d{4}/);
  assert.equal(await editedScore(page, "score_gbt"), after, "the attack keeps the edit");
  await page.screenshot({ path: "end2end/test-results/whatif.png", fullPage: true });
  assert.deepEqual(errors, []);
});
