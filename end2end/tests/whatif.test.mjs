// What-if on the Adult demo: partial dependence before any selection; choosing an example (a
// table link, a scatter point) fills the docked editor in place, without a reload; an edit gives
// the real model's new score (the ONNX reference) with its signed change, a decision that flips is
// marked; the copied URL reproduces it; attacks live in their own tab; the layout fits 390 px.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { BASE, launch, waitForHydration } from "../pages/browser.mjs";
import { RunsPage } from "../pages/runs_page.mjs";

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const row = (page, model) => page.getByTestId("predictions").locator(`tr[data-model="${model}"]`);
const editedScore = (page, model) => row(page, model).locator("td.edited-score").innerText();
const signed = (d) => (Math.abs(d) < 5e-5 ? "0.0000" : (d > 0 ? "+" : "") + d.toFixed(4));

test("what-if: PDP first, select in place, edit age on adult-00002, its change and a flip, the link reproduces it, attacks", async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: BASE });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await new RunsPage(page).open();
  await new RunsPage(page).runLink("Adult income (demo)").click();
  // The overview and what-if open on the same model: the run's first score column.
  await waitForHydration(page);
  const overviewModel = await page.getByRole("combobox", { name: "Chart model" }).inputValue();
  await page.getByRole("link", { name: "What-if →" }).click();
  await page.waitForURL(/\/whatif/);
  await waitForHydration(page);
  assert.equal(await page.getByRole("combobox", { name: "Model" }).inputValue(), overviewModel);
  assert.equal(overviewModel, "score_logreg");
  await page.locator('[aria-label="Examples by feature and score"][data-rendered="true"]').waitFor();
  await page.evaluate(() => { window.__marker = 1; });

  // Partial dependence of age before any example is chosen (keyboard: arrow keys move between tabs).
  await page.getByRole("tab", { name: "Edit" }).focus();
  await page.keyboard.press("ArrowRight");
  await page.waitForURL(/tab=pdp/);
  assert.equal(await page.getByRole("tab", { name: "Partial dependence" }).getAttribute("aria-selected"), "true");
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Partial dependence");
  await page.getByRole("combobox", { name: "PDP feature" }).selectOption("age");
  await page.waitForURL(/pdp=age/);
  await page.locator('[aria-label="Partial dependence"][data-rendered="true"]').waitFor();
  assert.match(await page.getByTestId("pdp-summary").innerText(), /^score_logreg on age: mean of 500 sampled rows over \d+ grid values; 60 ICE lines$/);
  assert.ok(await page.locator('[aria-label="Partial dependence"] .scatterlayer .trace').count() > 10, "ICE lines and the mean");

  // Choosing an example from the table fills the docked editor without a reload or a scroll jump.
  await page.getByRole("tab", { name: "Edit" }).click();
  await page.getByTestId("no-example").waitFor();
  await page.mouse.wheel(0, 250);
  await page.waitForFunction(() => window.scrollY > 0);
  const scrolled = await page.evaluate(() => window.scrollY);
  await page.getByRole("link", { name: "select adult-00002" }).click();
  await page.waitForURL(/example=adult-00002/);
  await page.getByRole("heading", { name: "Example adult-00002" }).waitFor();
  assert.equal(await page.evaluate(() => window.__marker), 1, "selected in place, not by loading the page again");
  assert.equal(await page.evaluate(() => window.scrollY), scrolled, "the page stays where it was");
  const editor = await page.getByTestId("editor").boundingBox();
  const table = await page.getByTestId("browser").locator("xpath=..").boundingBox();
  assert.ok(editor.x > table.x + table.width - 1, "the editor is docked beside the browser");
  assert.ok(editor.y < 1000, `the editor is in view (y ${editor.y})`);
  assert.equal(await page.getByRole("link", { name: "select adult-00002" }).getAttribute("aria-current"), "true");

  // A point of the scatter selects its example the same way.
  const pointId = "adult-00005";
  await page.evaluate((id) => document.querySelector('[aria-label="Examples by feature and score"] .plot').emit("plotly_click", { points: [{ customdata: id }] }), pointId);
  await page.waitForURL(new RegExp(`example=${pointId}`));
  await page.getByRole("heading", { name: `Example ${pointId}` }).waitFor();
  assert.equal(await page.evaluate(() => window.__marker), 1, "a scatter click navigates in place too");
  await page.getByRole("link", { name: "select adult-00002" }).click();
  await page.getByRole("heading", { name: "Example adult-00002" }).waitFor();

  // Shared case adult-whatif-03: age 26 -> 41; onnxruntime gives 0.19590855410281882 (gbt).
  const before = await editedScore(page, "score_gbt");
  assert.equal(await row(page, "score_gbt").locator("td.delta").innerText(), "0.0000", "no edit, no change");
  await page.getByRole("spinbutton", { name: "edit age" }).fill("41");
  await page.getByRole("button", { name: "Predict" }).click();
  await page.waitForURL(/set\.age=41/);
  await row(page, "score_gbt").locator("td.edited-score", { hasText: "0.19590" }).waitFor();
  const after = await editedScore(page, "score_gbt");
  assert.notEqual(after, before);
  assert.ok(Math.abs(Number(after) - 0.19590855410281882) < 1e-5, after);
  assert.ok(Math.abs(Number(await editedScore(page, "score_logreg")) - 0.05918428718061512) < 1e-5);
  const cells = await row(page, "score_gbt").locator("td").allInnerTexts();
  const original = Number(cells[2]);
  assert.equal(cells[4], signed(Number(after) - original), `the change beside the score: ${cells.join(" | ")}`);
  assert.equal(await page.evaluate(() => window.__marker), 1, "predicting does not reload either");
  await page.getByTestId("counterfactual").waitFor();

  // Save the edit with the run; it is listed with a link back to it.
  await page.getByRole("textbox", { name: "Saved example name" }).fill("older applicant");
  await page.getByRole("button", { name: "Save", exact: true }).click();
  await page.getByTestId("saved").getByRole("link", { name: "older applicant" }).waitFor();
  assert.match(await page.getByTestId("saved").locator("tbody tr").first().innerText(), /\tage = 41\t/, "only the edit is stored");

  // A threshold between the gbt model's original and edited scores: the edit flips its decision.
  const t = ((original + Number(after)) / 2).toFixed(4);
  await page.getByRole("spinbutton", { name: "Threshold" }).fill(t);
  await page.getByRole("spinbutton", { name: "Threshold" }).press("Tab");
  await page.waitForURL(new RegExp(`threshold=${t.replace(".", "\\.")}`));
  const flipped = page.getByTestId("predictions").locator('tr.flipped[data-model="score_gbt"]');
  await flipped.waitFor();
  const decision = await flipped.locator("td.decision").innerText();
  assert.match(decision, original < Number(after) ? /^negative → positive flipped$/ : /^positive → negative flipped$/);
  assert.match(await page.getByTestId("edit-summary").innerText(), /1 feature edited; [12] of 2 models change their decision at threshold/);

  // The copied link holds the edit and the threshold; it opens the same view server-side.
  await page.getByRole("button", { name: "Copy link" }).click();
  await page.getByRole("button", { name: "Link copied" }).waitFor();
  const link = await page.evaluate(() => navigator.clipboard.readText());
  const reviewer = await (await browser.newContext()).newPage();
  await reviewer.goto(link);
  assert.equal(await editedScore(reviewer, "score_gbt"), after);
  assert.equal(await reviewer.getByRole("spinbutton", { name: "edit age" }).inputValue(), "41");
  assert.equal(await reviewer.locator('tr.flipped[data-model="score_gbt"]').count(), 1);

  // Partial dependence of age now draws this example's own line too.
  await page.getByRole("tab", { name: "Partial dependence" }).click();
  await page.locator('[aria-label="Partial dependence"][data-rendered="true"]').waitFor();
  await page.getByTestId("pdp-summary").filter({ hasText: "dashed: the selected example" }).waitFor();

  // A random attack, per sex, in its own tab; the edit is kept.
  await page.getByRole("tab", { name: "Attacks" }).click();
  await page.getByRole("spinbutton", { name: "Attack noise" }).fill("0.5");
  await page.getByRole("combobox", { name: "Attack by slice", exact: true }).selectOption("sex");
  await page.getByRole("button", { name: "Attack" }).click();
  await page.waitForURL(/attack_noise=0\.5/);
  await page.getByTestId("attack").locator("tbody tr").first().waitFor();
  const attack = await page.getByTestId("attack").locator("tbody tr").allInnerTexts();
  assert.equal(attack.length, 3, attack.join("\n"));
  assert.match(attack[0], /^overall\t2000\t0\.\d{4}/);
  await page.screenshot({ path: "end2end/test-results/whatif-attacks.png", fullPage: true });
  await page.getByRole("tab", { name: "Edit" }).click();
  assert.equal(await editedScore(page, "score_gbt"), after, "the attack keeps the edit");
  await page.screenshot({ path: "end2end/test-results/whatif.png" });
  assert.deepEqual(errors, []);

  // On a phone the panel stacks under the browser and nothing is wider than the screen.
  const phone = await (await browser.newContext({ viewport: { width: 390, height: 844 } })).newPage();
  await phone.goto(link);
  await waitForHydration(phone);
  await phone.getByTestId("predictions").waitFor();
  assert.ok(await phone.evaluate(() => document.documentElement.scrollWidth) <= 390, "no sideways scrolling");
  const [b, e] = [await phone.getByTestId("browser").boundingBox(), await phone.getByTestId("editor").boundingBox()];
  assert.ok(e.y > b.y, "stacked");
  await phone.screenshot({ path: "end2end/test-results/whatif-390.png", fullPage: true });
});
