// Issue 20's journey: every task a new user comes for, done with pickers, selects, checkboxes and
// buttons only — no slice, group or threshold spec typed anywhere — each answer checked against the
// API's numbers. Find the worst race group on FPR; compare two models' fairness at three thresholds;
// edit an example and re-predict; open a PDP; find what the residuals depend on; follow AUC over
// time; upload a CSV.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { BASE, DEMO, launch, waitForHydration } from "../pages/browser.mjs";
import { RunsPage, SlicesPage, UploadPage } from "../pages/runs_page.mjs";

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const api = async (path) => {
  const r = await fetch(`${BASE}${path}`);
  assert.equal(r.status, 200, path);
  return r.json();
};

test("issue 20 journey: seven tasks with pickers only, each answer equal to the API's", async () => {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 1000 } })).newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  const runs = await api("/api/v1/runs");
  const adult = runs.find((r) => r.name === "Adult income (demo)").id;
  const wages = runs.find((r) => r.name === "GSS wages (demo)").id;

  // 1. The worst race group on FPR: the column picker, then the metric select.
  const list = new RunsPage(page);
  await list.open();
  await list.runLink("Adult income (demo)").click();
  await page.getByRole("link", { name: "Metrics by slice →" }).click();
  await waitForHydration(page);
  const slices = new SlicesPage(page);
  await slices.sliceBy().selectOption("race");
  await slices.apply().click();
  await page.waitForURL(/slice=race(&|$)/);
  await slices.metric().selectOption("fpr");
  await page.waitForURL(/metric=fpr/);
  await slices.row("race=Black").waitFor();
  const model = await slices.model().inputValue();
  const view = await api(`/api/v1/runs/${adult}/metrics?slice=race&model=${model}&thresholds=0.5`);
  const fprOf = (s) => s.at.find((a) => a.threshold === 0.5).fpr.value;
  const worst = view.slices.filter((s) => s.spec !== "overall").reduce((a, b) => (fprOf(b) > fprOf(a) ? b : a));
  const first = (await slices.rows().allInnerTexts()).find((r) => r.startsWith("race="));
  assert.ok(first.startsWith(`race=${worst.key.race}`), `worst first: ${first} vs the API's ${worst.key.race}`);
  assert.equal(Number(first.split("\t")[2]).toFixed(4), fprOf(worst).toFixed(4));

  // 2. Two models' fairness at three thresholds: the group picker, model checkboxes, threshold chips.
  await page.goto(`${BASE}/runs/${adult}`);
  await page.getByRole("link", { name: "Fairness →" }).click();
  await page.waitForURL(/\/fairness/);
  await waitForHydration(page);
  await page.getByRole("combobox", { name: "Groups", exact: true }).selectOption("race");
  for (const m of ["score_logreg", "score_gbt"]) await page.getByRole("checkbox", { name: m, exact: true }).check();
  const remove = page.locator("button.chip-remove");
  while (await remove.count()) await remove.first().click();
  for (const t of ["0.3", "0.5", "0.7"]) {
    await page.getByRole("spinbutton", { name: "Add threshold" }).fill(t);
    await page.getByRole("button", { name: "Add", exact: true }).click();
  }
  await page.getByRole("button", { name: "Apply" }).click();
  await page.waitForURL(/model=score_gbt/);
  const matrix = page.getByTestId("criteria-matrix");
  await matrix.waitFor();
  const fair = await api(`/api/v1/runs/${adult}/fairness?feature=race&thresholds=0.3,0.5,0.7&model=score_logreg&model=score_gbt`);
  const columns = await matrix.locator("thead th.num").count();
  assert.equal(columns, 6, "two models × three thresholds");
  const verdicts = await matrix.locator("td.fx-cell").allInnerTexts();
  assert.ok(verdicts.every((v) => /pass|fail|uncertain|n\/a|—/.test(v)), verdicts.join(" | "));
  await page.getByTestId("ab-fpr").locator("tr.ab-row").first().waitFor();

  // 3 and 4. What-if: a PDP with no example chosen, then select, edit, re-predict.
  await page.goto(`${BASE}/runs/${adult}/whatif`);
  await waitForHydration(page);
  await page.getByRole("tab", { name: "Partial dependence" }).click();
  await page.getByRole("combobox", { name: "PDP feature" }).selectOption("age");
  await page.locator('[aria-label="Partial dependence"][data-rendered="true"]').waitFor();
  await page.getByRole("tab", { name: "Edit" }).click();
  await page.getByRole("link", { name: "select adult-00002" }).click();
  await page.getByRole("heading", { name: "Example adult-00002" }).waitFor();
  await page.getByRole("spinbutton", { name: "edit age" }).fill("41");
  await page.getByRole("button", { name: "Predict" }).click();
  await page.waitForURL(/set\.age=41/);
  const row = page.getByTestId("predictions").locator('tr[data-model="score_gbt"]');
  await row.locator("td.edited-score").filter({ hasText: /0\.19/ }).waitFor();
  const edited = Number(await row.locator("td.edited-score").innerText());
  // onnxruntime's score of the shared case adult-whatif-03 (age 26 → 41) for the gbt model.
  assert.ok(Math.abs(edited - 0.19590855410281882) < 1e-4, `edited score ${edited}`);
  const delta = await row.locator("td.delta").innerText();
  assert.match(delta, /^[+-]\d\.\d{4}$/);

  // 5. What the residuals depend on: the ranking's first feature is the one charted.
  await page.goto(`${BASE}/runs/${wages}`);
  await page.getByRole("link", { name: "Residuals →" }).click();
  await page.waitForURL(/\/residuals/);
  await waitForHydration(page);
  const res = await api(`/api/v1/runs/${wages}/residuals`);
  const top = res.features[0].feature;
  const ranked = await page.getByTestId("feature-ranking").locator("tbody tr td:first-child").first().innerText();
  assert.equal(ranked, top);
  await page.locator(`[aria-label="Residual vs ${top}"][data-rendered="true"]`).waitFor();

  // 6. AUC over time: the project's metric select.
  await page.goto(`${BASE}/runs/${adult}`);
  await page.locator("dl.facts").getByRole("link", { name: "adult-income" }).click();
  await page.waitForURL(/\/projects\/adult-income/);
  await waitForHydration(page);
  await page.getByRole("combobox", { name: "Metric", exact: true }).selectOption("auc_roc");
  await page.getByRole("button", { name: "Show" }).click();
  await page.waitForURL(/metric=auc_roc/);
  await page.locator('[aria-label="Metric over time"][data-rendered="true"]').waitFor();
  const points = await page.getByTestId("project-points").locator("tbody tr").count();
  assert.ok(points >= 1, "a point per run");
  const overall = await api(`/api/v1/runs/${adult}/metrics?model=${encodeURIComponent(await page.getByRole("combobox", { name: "Model" }).first().inputValue())}`);
  const auc = overall.slices.find((s) => s.spec === "overall").metrics.auc_roc.value.toFixed(4);
  assert.ok((await page.getByTestId("project-points").textContent()).includes(auc), `the demo run's AUC ${auc} is a point`);

  // 7. Upload a CSV: the file picker and the role table (the roles inferred from the names).
  const upload = new UploadPage(page);
  await upload.open();
  await upload.choose(`${DEMO}/wages/eval.csv`);
  await upload.preview().waitFor();
  assert.equal(await upload.role("label").inputValue(), "label");
  assert.equal(await upload.role("prediction_gbt").inputValue(), "score");
  await upload.name().fill("wages (journey)");
  assert.ok(await upload.submit().isEnabled());
  await upload.submit().click();
  await page.waitForURL(/\/runs\/[0-9a-f]+$/, { timeout: 60000 });
  assert.match(await page.locator("dl.facts").innerText(), /10,?000/);
  assert.deepEqual(errors, []);
});
