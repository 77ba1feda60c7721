// What-if on a model exported the way users export them: a default skl2onnx export (ZipMap on) of a
// Pipeline(ColumnTransformer(OneHotEncoder, StandardScaler), LogisticRegression) trained on the Adult
// demo (server/tests/golden/make_onnxml_models.py), attached to a run of the first 200 demo rows
// whose score_pipe column holds onnxruntime's probabilities. On the what-if page the model's own
// prediction of the first example equals the stored one, and an edit (age 51 -> 30) equals
// onnxruntime's score for it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { BASE, DEMO, TESTDATA, launch, waitForHydration } from "../pages/browser.mjs";

const GOLDEN = new URL("../../server/tests/golden", import.meta.url).pathname;
let browser, runId, edited;

before(async () => {
  browser = await launch();
  const cases = (await readFile(join(GOLDEN, "adult_pipe_cases.csv"), "utf8")).trim().split("\n");
  const col = cases[0].split(",").indexOf("score_pipe_zipmap");
  const scores = cases.slice(1).map((l) => l.split(",")[col]);
  edited = Number(scores[scores.length - 1]); // the last case: adult-00000 with age 30
  const lines = (await readFile(join(DEMO, "adult/eval.csv"), "utf8")).split("\n");
  const csv = [`${lines[0]},score_pipe`, ...scores.slice(0, 200).map((s, i) => `${lines[i + 1]},${s}`)].join("\n") + "\n";
  const form = new FormData();
  form.append("spec", JSON.stringify({ name: "skl2onnx pipeline (e2e)", label: "label", id: "example_id", timestamp: "timestamp", scores: ["score_logreg", "score_gbt", "score_pipe"] }));
  form.append("file", new Blob([csv]), "pipeline.csv");
  form.append("model", new Blob([await readFile(join(TESTDATA, "models/adult_pipe_skl2onnx_zipmap.onnx"))]), "model_pipe.onnx");
  const up = await fetch(`${BASE}/api/v1/runs`, { method: "POST", body: form });
  const text = await up.text();
  assert.equal(up.status, 201, text);
  runId = JSON.parse(text).id;
});

after(async () => {
  await browser?.close();
  if (runId) await fetch(`${BASE}/api/v1/runs/${runId}`, { method: "DELETE" });
});

test("what-if on a default skl2onnx pipeline export: the edit equals onnxruntime", async () => {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 1000 } })).newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${BASE}/runs/${runId}/whatif?model=score_pipe&example=adult-00000`);
  await waitForHydration(page);
  const row = page.getByTestId("predictions").locator('tr[data-model="score_pipe"]');
  await row.waitFor();
  const cells = await row.locator("td").allInnerTexts();
  // Model, stored score, the model's prediction of the original: the same number.
  assert.ok(Math.abs(Number(cells[1]) - Number(cells[2])) < 1e-4, cells.join(" | "));
  await page.getByRole("spinbutton", { name: "edit age" }).fill("30");
  await page.getByRole("button", { name: "Predict" }).click();
  await page.waitForURL(/set\.age=30/);
  // The editor updates in place: wait for the edited example, not the one before it.
  await page.getByTestId("edit-summary").filter({ hasText: "1 feature edited" }).waitFor();
  const got = Number(await row.locator("td.edited-score").innerText());
  assert.ok(Math.abs(got - edited) < 5e-6, `tract ${got}, onnxruntime ${edited}`);
  await page.screenshot({ path: "end2end/test-results/onnxml-whatif.png", fullPage: true });
  assert.deepEqual(errors, []);
});
