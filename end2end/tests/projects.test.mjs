// Continuous evaluation: the demo project's AUC per week with interval bands, a reproducible link;
// a release made worse for Black people fails its gate on exactly that slice when validated from
// its run page, and the failure is listed on /alerts.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { BASE, DEMO, launch, waitForHydration } from "../pages/browser.mjs";

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test("projects: a metric over twelve weeks, and a worse release fails its gate on one slice", async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: BASE });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));

  // "AUC for women over the releases" is one click from the slices view.
  const runs = await (await fetch(`${BASE}/api/v1/runs`)).json();
  const demo = runs.find((r) => r.name === "Adult income (demo)");
  await page.goto(`${BASE}/runs/${demo.id}/slices?slice=sex&metric=auc_roc`);
  await waitForHydration(page);
  await page.getByTestId("over-time").click();
  await page.waitForURL(/\/projects\/adult-income\?metric=auc_roc&model=score_logreg&slice=sex/);
  await page.getByTestId("project-points").locator("tbody tr").first().waitFor({ state: "attached" });
  const perRun = await page.getByTestId("project-points").locator("tbody tr td:nth-child(3)").allTextContents();
  assert.ok(perRun.includes("sex=Female") && perRun.includes("sex=Male"), perRun.join(" "));

  // From the runs list to the demo's project, then per week and per sex.
  await page.goto(`${BASE}/`);
  await waitForHydration(page);
  await page.getByRole("link", { name: "adult-income" }).first().click();
  await page.waitForURL(/\/projects\/adult-income/);
  // (Exact: each gate in the gates editor has a metric too.)
  await page.getByRole("combobox", { name: "Metric", exact: true }).selectOption("auc_roc");
  await page.getByRole("combobox", { name: "Over" }).selectOption("week");
  await page.getByRole("combobox", { name: "Slices", exact: true }).selectOption("sex");
  await page.getByRole("button", { name: "Show" }).click();
  await page.waitForURL(/by=week/);
  await page.locator('[aria-label="Metric over time"][data-rendered="true"]').waitFor();
  const summary = await page.getByTestId("project-summary").innerText();
  const points = Number(summary.match(/(\d+) points/)[1]);
  assert.ok(points >= 24 && points % 24 === 0, `twelve weeks × two sexes per run: ${summary}`);
  const weeks = await page.getByTestId("project-points").locator("tbody tr td:first-child").allTextContents();
  assert.equal(new Set(weeks).size, 12, weeks.join(" "));
  const shownRows = await page.getByTestId("project-points").locator("tbody tr").allTextContents();

  await page.getByRole("button", { name: "Copy link" }).click();
  await page.getByRole("button", { name: "Link copied" }).waitFor();
  const link = await page.evaluate(() => navigator.clipboard.readText());
  assert.match(link, /by=week/);
  const reviewer = await (await browser.newContext()).newPage();
  await reviewer.goto(link);
  assert.deepEqual(await reviewer.getByTestId("project-points").locator("tbody tr").allTextContents(), shownRows);
  await page.screenshot({ path: "end2end/test-results/project.png", fullPage: true });

  // A new release whose scores for Black people are half noise, uploaded into the project.
  const lines = (await readFile(`${DEMO}/adult/eval.csv`, "utf8")).trim().split("\n");
  const header = lines[0].split(",");
  const [race, s1, s2] = ["race", "score_logreg", "score_gbt"].map((c) => header.indexOf(c));
  let seed = 7;
  const rand = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
  const worse = [lines[0], ...lines.slice(1).map((l) => {
    const c = l.split(",");
    if (c[race] === "Black") for (const i of [s1, s2]) c[i] = String(0.5 * Number(c[i]) + 0.5 * rand());
    return c.join(",");
  })].join("\n");
  const form = new FormData();
  form.append("file", new Blob([worse]), "worse.csv");
  form.append("spec", JSON.stringify({ name: "Adult v2 (e2e, worse for Black)", label: "label", scores: ["score_logreg", "score_gbt"], id: "example_id", timestamp: "timestamp", project: "adult-income", version: "v2-e2e" }));
  const res = await fetch(`${BASE}/api/v1/runs`, { method: "POST", body: form });
  assert.equal(res.status, 201, await res.clone().text());
  const { id } = await res.json();

  await page.goto(`${BASE}/runs/${id}`);
  await waitForHydration(page);
  await page.getByRole("button", { name: "Validate against the project's gates" }).click();
  const verdict = page.getByTestId("validation").filter({ hasText: "FAILED" }).last();
  await verdict.waitFor();
  const failing = await verdict.locator("tr.verdict-fail td:nth-child(2)").allInnerTexts();
  assert.deepEqual(failing, ["race=Black"]);
  assert.match(await verdict.locator("ul.failures").innerText(), /^auc_roc on race=Black: /);
  await page.screenshot({ path: "end2end/test-results/validation.png", fullPage: true });

  await page.getByRole("link", { name: "Alerts" }).click();
  await page.waitForURL(/\/alerts/);
  const first = await page.getByTestId("alerts").locator("tbody tr").first().innerText();
  assert.match(first, new RegExp(`gate\\tadult-income\\t${id}\\t.*race=Black`));
  assert.deepEqual(errors, []);
});

test("projects: the gates editor saves a new version, the verdict follows it, and a refused set keeps the edits", async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  const original = await (await fetch(`${BASE}/api/v1/projects/adult-income/gates`)).json();
  const n = original.version;
  // The release uploaded by the test above (or, run alone, the demo run itself).
  const runs = await (await fetch(`${BASE}/api/v1/runs`)).json();
  const run = runs.find((r) => r.version === "v2-e2e") ?? runs.find((r) => r.name === "Adult income (demo)");

  await page.goto(`${BASE}/projects/adult-income`);
  await waitForHydration(page);
  const gates = page.getByTestId("gates");
  assert.match(await page.getByTestId("gates-version").innerText(), new RegExp(`^Version ${n} `));
  const gate1 = gates.getByRole("group", { name: "Gate 1", exact: true });
  const min = gate1.getByRole("textbox", { name: "Min", exact: true });
  assert.equal(await min.inputValue(), String(original.gates.gates[0].min));
  assert.equal(await gates.getByRole("group", { name: "Gate 2", exact: true }).getByRole("textbox", { name: "Slice" }).inputValue(), "race");
  // Edit a bound in the form and save: a new version.
  await min.fill("0.99");
  await gates.getByRole("button", { name: "Save the gates as a new version" }).click();
  await page.getByTestId("gates-saved").filter({ hasText: `Saved as version ${n + 1}.` }).waitFor();
  assert.match(await page.getByTestId("gates-version").innerText(), new RegExp(`^Version ${n + 1} `));
  const saved = await (await fetch(`${BASE}/api/v1/projects/adult-income/gates`)).json();
  assert.equal(saved.version, n + 1);
  assert.equal(saved.gates.gates[0].min, 0.99);
  assert.deepEqual(saved.gates.gates.slice(1), original.gates.gates.slice(1), "the other gates unchanged");
  await page.screenshot({ path: "end2end/test-results/gates-editor.png", fullPage: true });

  // The run's verdict now follows the new version: overall AUC is below 0.99.
  await page.goto(`${BASE}/runs/${run.id}`);
  await waitForHydration(page);
  await page.getByRole("button", { name: "Validate against the project's gates" }).click();
  const verdict = page.getByTestId("validation").filter({ hasText: `gates v${n + 1} ` });
  await verdict.waitFor();
  assert.match(await verdict.innerText(), /FAILED/);
  assert.match(await verdict.locator("ul.failures").innerText(), /auc_roc on overall: /);

  // A set the server refuses: its reason beside the form, and the edits stay.
  await page.goto(`${BASE}/projects/adult-income`);
  await waitForHydration(page);
  await min.fill("");
  await gates.getByRole("group", { name: "Gate 2", exact: true }).getByRole("textbox", { name: "Min", exact: true }).fill("0.75");
  await gates.getByRole("button", { name: "Save the gates as a new version" }).click();
  const refusal = page.getByTestId("gates-error");
  await refusal.waitFor();
  assert.match(await refusal.innerText(), /gate 1 \(auc_roc\): give at least one of min, max/);
  assert.equal(await min.inputValue(), "");
  assert.equal(await gates.getByRole("group", { name: "Gate 2", exact: true }).getByRole("textbox", { name: "Min", exact: true }).inputValue(), "0.75");
  assert.match(await page.getByTestId("gates-version").innerText(), new RegExp(`^Version ${n + 1} `));
  // Remove a gate, then the JSON tab shows the form's content; put the original set back as JSON.
  const count = await gates.getByRole("group", { name: /^Gate \d+$/ }).count();
  await gates.getByRole("button", { name: `Remove gate ${count}` }).click();
  assert.equal(await gates.getByRole("group", { name: /^Gate \d+$/ }).count(), count - 1);
  await gates.getByRole("button", { name: "JSON" }).click();
  const json = gates.getByRole("textbox", { name: "Gates as JSON" });
  const shown = JSON.parse(await json.inputValue());
  assert.equal(shown.gates.length, count - 1);
  assert.equal(shown.gates[0].min, undefined);
  assert.equal(shown.gates[1].min, 0.75);
  await json.fill(JSON.stringify(original.gates, null, 2));
  await gates.getByRole("button", { name: "Save the gates as a new version" }).click();
  await page.getByTestId("gates-saved").filter({ hasText: `Saved as version ${n + 2}.` }).waitFor();
  const restored = await (await fetch(`${BASE}/api/v1/projects/adult-income/gates`)).json();
  assert.deepEqual(restored.gates, original.gates);
  await gates.getByRole("button", { name: "Form" }).click();
  assert.equal(await min.inputValue(), String(original.gates.gates[0].min));
  await page.setViewportSize({ width: 390, height: 900 });
  await page.screenshot({ path: "end2end/test-results/gates-editor-390.png", fullPage: true });
  const fits = await gates.evaluate((s) => s.getBoundingClientRect().right <= 390 && s.scrollWidth <= s.clientWidth);
  assert.ok(fits, "the gates editor fits a phone's width");
  assert.deepEqual(errors, []);
  await context.close();
});
