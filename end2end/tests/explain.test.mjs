// Robustness and explanations (issue 13) as a user meets them: on the Adult demo's what-if page an
// adversarial search with sex and race immutable, one of its flips opened in the editor (the model
// really flips there), the SHAP attributions of that example, permutation importance; on a
// project's page rules tried on its newest run, a syntax error shown where it is, then saved.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { BASE, DEMO, TESTDATA, launch, waitForHydration } from "../pages/browser.mjs";

let browser, demoId, ruledId;

before(async () => {
  browser = await launch();
  const runs = await (await fetch(`${BASE}/api/v1/runs`)).json();
  demoId = runs.find((r) => r.name === "Adult income (demo)").id;
  // A project of its own, so the rules saved here touch no other test's project.
  const csv = (await readFile(join(DEMO, "adult/eval.csv"), "utf8")).split("\n").slice(0, 3001).join("\n") + "\n";
  const form = new FormData();
  form.append("spec", JSON.stringify({ name: "rules (e2e)", label: "label", id: "example_id", timestamp: "timestamp", scores: ["score_logreg", "score_gbt"], project: "rules-e2e", version: "v1" }));
  form.append("file", new Blob([csv]), "rules.csv");
  const up = await fetch(`${BASE}/api/v1/runs`, { method: "POST", body: form });
  const text = await up.text();
  assert.equal(up.status, 201, text);
  ruledId = JSON.parse(text).id;
});

after(async () => {
  await browser?.close();
  if (ruledId) await fetch(`${BASE}/api/v1/runs/${ruledId}`, { method: "DELETE" });
});

async function newPage() {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 1100 } })).newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  return { page, errors };
}

test("adversarial search, a flip opened in the editor, its attributions, permutation importance", async () => {
  const { page, errors } = await newPage();
  await page.goto(`${BASE}/runs/${demoId}/whatif?model=score_gbt`);
  await waitForHydration(page);
  await page.getByRole("tab", { name: "Attacks" }).click();
  await page.getByRole("textbox", { name: "Immutable features" }).fill("sex, race");
  await page.getByRole("textbox", { name: "Adversarial slice" }).fill("sex");
  await page.getByRole("button", { name: "Search" }).click();
  await page.waitForURL(/adv=1/);
  const table = page.getByTestId("adversarial");
  await table.waitFor();
  const overall = await table.locator("tbody tr").first().locator("td").allInnerTexts();
  assert.equal(overall[0], "overall");
  assert.ok(parseFloat(overall[2]) > 0, `the search flips some decisions: ${overall.join(" | ")}`);
  assert.ok(parseFloat(overall[2]) >= parseFloat(overall[3]), `and at least as many as random changes: ${overall.join(" | ")}`);
  assert.equal(await table.locator("tbody tr").count(), 3, "overall + two sexes");
  const summary = await page.getByTestId("adversarial-summary").innerText();
  assert.match(summary, /immutable: .*race.*sex|immutable: .*sex.*race/);
  await page.screenshot({ path: "end2end/test-results/adversarial.png", fullPage: true });

  // The nearest flip, opened in the editor: its edits flip the model's decision there.
  const flip = page.getByTestId("adversarial-examples").getByRole("link").first();
  const change = await page.getByTestId("adversarial-examples").locator("tbody tr").first().locator("td").last().innerText();
  assert.doesNotMatch(change, /\b(sex|race):/, "immutable features never change");
  await flip.click();
  await page.waitForURL(/example=.*set\./);
  const row = page.getByTestId("predictions").locator('tr[data-model="score_gbt"]');
  await row.waitFor();
  assert.match(await row.innerText(), /flipped/);
  assert.equal(await row.getAttribute("class"), "flipped");

  // Its attributions: one SHAP value per feature, summing to prediction − base.
  await page.getByRole("link", { name: "Explain (KernelSHAP)" }).click();
  await page.waitForURL(/explain=kernel/);
  const shap = page.getByTestId("attributions");
  await shap.waitFor();
  assert.equal(await shap.locator("tbody tr").count(), 13);
  const values = (await shap.locator("tbody tr td:nth-child(3)").allInnerTexts()).map(Number);
  const m = (await page.getByTestId("attribution-summary").innerText()).match(/base ([\d.]+) .*→ ([\d.]+)/);
  assert.ok(m, "the summary names base and prediction");
  const sum = values.reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(sum - (Number(m[2]) - Number(m[1]))) < 2e-3, `efficiency: ${sum} vs ${m[2]} - ${m[1]}`);
  await page.screenshot({ path: "end2end/test-results/attributions.png", fullPage: true });

  // Permutation importance by AUC.
  await page.getByRole("tab", { name: "Attacks" }).click();
  await page.getByRole("combobox", { name: "Importance metric" }).selectOption("auc_roc");
  await page.getByRole("button", { name: "Compute" }).click();
  await page.waitForURL(/importance=auc_roc/);
  const imp = page.getByTestId("importance");
  await imp.waitFor();
  assert.equal(await imp.locator("tbody tr").count(), 13);
  assert.deepEqual(errors, []);
});

test("rules: tried on the project's newest run, a syntax error located, then saved", async () => {
  const { page, errors } = await newPage();
  await page.goto(`${BASE}/projects/rules-e2e`);
  await waitForHydration(page);
  const box = page.getByRole("textbox", { name: "Rules" });
  await box.fill("age < 25 => decision = 0\ncapital_gain > => decision = 1\n");
  await page.getByRole("button", { name: "Try on the newest run" }).click();
  const alert = page.getByRole("alert");
  await alert.waitFor();
  assert.match(await alert.innerText(), /line 2, column/);
  await box.fill('age < 25 => decision = 0\ncapital_gain > 5000 => decision = 1\nscore > 0.9 and hours_per_week < 30 => flag "check"\n');
  await page.getByRole("button", { name: "Try on the newest run" }).click();
  const impact = page.getByTestId("rules-impact");
  await impact.waitFor();
  assert.equal(await impact.locator("tbody tr").count(), 3);
  const first = await impact.locator("tbody tr").first().locator("td").allInnerTexts();
  assert.ok(Number(first[2]) > 0 && Number(first[3]) <= Number(first[2]), first.join(" | "));
  assert.match(await page.getByTestId("rules-summary").innerText(), /decisions changed/);
  await page.getByTestId("rules-metrics").waitFor();
  await page.screenshot({ path: "end2end/test-results/rules.png", fullPage: true });
  await page.getByRole("button", { name: "Save the rules as a new version" }).click();
  await page.getByTestId("rules-saved").waitFor();
  assert.match(await page.getByTestId("rules-saved").innerText(), /version 1/);
  const stored = await (await fetch(`${BASE}/api/v1/projects/rules-e2e/rules`)).json();
  assert.match(stored.source, /capital_gain > 5000/);
  assert.deepEqual(errors, []);
});

test("a model attached on the run page is checked at once and gets a model card", async () => {
  const { page, errors } = await newPage();
  await page.goto(`${BASE}/runs/${ruledId}`);
  await waitForHydration(page);
  const models = page.getByTestId("models");
  await models.waitFor();
  assert.match(await models.innerText(), /No model file is attached/);
  await page.getByLabel("Model file").setInputFiles(join(TESTDATA, "models/adult_pipe_skl2onnx.onnx"));
  await page.getByRole("combobox", { name: "Score column" }).selectOption("score_logreg");
  await page.getByRole("button", { name: "Attach and check" }).click();
  await page.getByTestId("attached").waitFor();
  // A different model than the one that wrote score_logreg: the check says so, with the difference.
  assert.match(await page.getByTestId("endpoint-test").innerText(), /DISAGREES with score_logreg/);
  const cards = page.getByTestId("model-cards");
  await cards.waitFor();
  const row = await cards.locator("tbody tr").first().innerText();
  assert.match(row, /adult_pipe_skl2onnx\.onnx/);
  assert.match(row, /skl2onnx/);
  assert.match(row, /rewritten: .*OneHotEncoder/);
  await page.screenshot({ path: "end2end/test-results/model-card.png", fullPage: true });
  assert.deepEqual(errors, []);
});
