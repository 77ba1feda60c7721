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
  await page.getByRole("combobox", { name: "Metric" }).selectOption("auc_roc");
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
