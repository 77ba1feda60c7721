// The fairness view of the Adult demo: race, three thresholds, FPR; the baseline flipped to a
// group; the copied link reproduces the numbers; the exported HTML report opens standalone. Then two
// models: the criteria matrix (criteria × six columns of verdicts, equal to the detail cards) and
// A versus B (B − A equal to the per-model tables), switched in the browser without recomputing.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { BASE, launch, waitForHydration } from "../pages/browser.mjs";
import { RunsPage } from "../pages/runs_page.mjs";

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const rowsOf = (page, metric) => page.getByTestId(`table-${metric}`).locator("tr.group-row").allInnerTexts();

test("fairness: race at three thresholds, FPR, baseline flip, shared link, standalone export", async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 }, acceptDownloads: true });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: BASE });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await new RunsPage(page).open();
  await new RunsPage(page).runLink("Adult income (demo)").click();
  await page.getByRole("link", { name: "Fairness →" }).click();
  await page.waitForURL(/\/fairness/);
  await waitForHydration(page);
  // Pick race, three thresholds and FPR only.
  await page.getByRole("combobox", { name: "Groups", exact: true }).selectOption("race");
  const remove = page.locator("button.chip-remove");
  while (await remove.count()) await remove.first().click();
  for (const t of ["0.3", "0.5", "0.7"]) {
    await page.getByRole("spinbutton", { name: "Add threshold" }).fill(t);
    await page.getByRole("button", { name: "Add", exact: true }).click();
  }
  for (const m of ["tpr", "positive_rate"]) await page.getByRole("checkbox", { name: `metric ${m}` }).uncheck();
  await page.getByRole("checkbox", { name: "metric fpr" }).check();
  await page.getByRole("button", { name: "Apply" }).click();
  await page.waitForURL(/feature=race/);
  const table = page.getByTestId("table-fpr");
  await table.locator("tr.group-row").first().waitFor();
  assert.equal(await page.getByTestId("table-tpr").count(), 0, "only the chosen metric");
  await page.locator('[aria-label="fpr by group"][data-rendered="true"]').waitFor();
  const rows = await rowsOf(page, "fpr");
  assert.equal(rows.length, 5 * 3, "five groups × three thresholds");
  assert.ok(rows.some((r) => r.startsWith("race=Black")));
  assert.equal(await page.getByTestId("criteria-card").count(), 3, "a criteria card per threshold");
  assert.equal(await page.getByTestId("criteria-matrix").locator("thead th.num").count(), 3, "a matrix column per threshold");
  assert.equal(await page.getByTestId("ab-compare").count(), 0, "no A versus B with one model");
  // The baseline becomes a group: every gap is now measured against White.
  const gapBefore = rows.find((r) => r.startsWith("race=Black"));
  await page.getByRole("combobox", { name: "Baseline" }).selectOption("race=White");
  await page.getByRole("button", { name: "Apply" }).click();
  await page.waitForURL(/baseline=race%3DWhite|baseline=race=White/);
  await page.locator("p.muted", { hasText: "baseline race=White" }).waitFor();
  const after = await rowsOf(page, "fpr");
  const white = after.filter((r) => r.startsWith("race=White"));
  assert.ok(white.every((r) => /\t0\.0000\t1\.0000/.test(r)), `White vs itself: diff 0, ratio 1:\n${white.join("\n")}`);
  assert.notEqual(after.find((r) => r.startsWith("race=Black")), gapBefore);
  await page.screenshot({ path: "end2end/test-results/fairness.png", fullPage: true });
  // Copy the link and open it in a fresh browser: same numbers.
  await page.getByRole("button", { name: "Copy link" }).click();
  await page.getByRole("button", { name: "Link copied" }).waitFor();
  const link = await page.evaluate(() => navigator.clipboard.readText());
  const reviewer = await (await browser.newContext()).newPage();
  await reviewer.goto(link);
  await reviewer.getByTestId("table-fpr").locator("tr.group-row").first().waitFor();
  assert.deepEqual(await rowsOf(reviewer, "fpr"), after);
  // The HTML export opens on its own (no server): charts drawn, same numbers in its tables.
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: "Export HTML report" }).click()]);
  const html = await readFile(await download.path(), "utf8");
  const file = "end2end/test-results/fairness-report.html";
  await writeFile(file, html);
  const offline = await (await browser.newContext({ offline: true })).newPage();
  await offline.goto(new URL(`../../${file}`, import.meta.url).href);
  await offline.locator("#chart0 .main-svg").first().waitFor();
  const black = after.find((r) => r.startsWith("race=Black")).split("\t");
  assert.ok((await offline.content()).includes(black[2]), `the report has the page's value ${black[2]}`);
  // A new feature drops a baseline group of the old one.
  assert.equal(await page.getByRole("combobox", { name: "Baseline" }).inputValue(), "race=White");
  await page.getByRole("combobox", { name: "Groups", exact: true }).selectOption("sex");
  assert.equal(await page.getByRole("combobox", { name: "Baseline" }).inputValue(), "overall");
  // A typo in the groups' spec: the message at the field, the form and the cards stay.
  await page.locator("details.advanced summary").first().click();
  await page.getByRole("textbox", { name: "Groups spec" }).fill("rac");
  await page.getByRole("button", { name: "Apply" }).click();
  await page.waitForURL(/feature=rac(&|$)/);
  const message = page.locator("#feature-error");
  await message.waitFor();
  assert.match(await message.innerText(), /did you mean 'race'\?/);
  assert.equal(await page.getByRole("textbox", { name: "Groups spec" }).getAttribute("aria-describedby"), "feature-error");
  assert.equal(await page.getByTestId("criteria-card").count(), 3, "the last result stays");
  assert.equal(await page.getByRole("checkbox", { name: "metric fpr" }).isChecked(), true, "the form stays");
  assert.deepEqual(errors, []);
});

const num = (text) => Number(text.replace("−", "-"));
const cellsOf = (rows) => rows.map((r) => r.split("\t").map((c) => c.trim()));

test("fairness with two models: criteria matrix, A versus B equal to the per-model tables, switched without recomputing", async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await new RunsPage(page).open();
  await new RunsPage(page).runLink("Adult income (demo)").click();
  await page.getByRole("link", { name: "Fairness →" }).click();
  await page.waitForURL(/\/fairness/);
  const base = page.url().split("?")[0];
  await page.goto(`${base}?feature=race&thresholds=0.3,0.5,0.7&metric=fpr&metric=tpr&model=score_logreg&model=score_gbt`);
  await waitForHydration(page);

  // The matrix: a row per criterion, a column per (model, threshold), a verdict word in every cell.
  const matrix = page.getByTestId("criteria-matrix");
  await matrix.waitFor();
  assert.deepEqual(await matrix.locator('thead th[scope="colgroup"]').allInnerTexts(), ["score_logreg", "score_gbt"]);
  assert.deepEqual(await matrix.locator("thead tr").nth(1).locator("th").allInnerTexts(), ["@ 0.3", "@ 0.5", "@ 0.7", "@ 0.3", "@ 0.5", "@ 0.7"]);
  const criteria = await matrix.locator('tbody th[scope="row"]').allInnerTexts();
  assert.ok(criteria.includes("demographic parity") && criteria.includes("equalized odds"), criteria.join(", "));
  const matrixRows = matrix.locator("tbody tr");
  assert.equal(await matrixRows.count(), criteria.length);
  const verdicts = [];
  for (let i = 0; i < criteria.length; i++) {
    const cells = await matrixRows.nth(i).locator("td").allInnerTexts();
    assert.equal(cells.length, 6, `${criteria[i]}: six columns`);
    for (const c of cells) assert.match(c, /^(✓ pass|✗ fail|\? uncertain|— n\/a)/, `a verdict word in "${c}"`);
    verdicts.push(cells);
  }
  assert.ok(verdicts.flat().some((c) => /pass|fail|uncertain/.test(c)), "some criterion is decided");
  // Each column holds its detail card's verdicts and values (the cards are kept, folded away).
  assert.equal(await page.getByTestId("criteria-card").count(), 6);
  await page.getByText("Each model and threshold in detail").click();
  for (let k = 0; k < 6; k++) {
    const card = page.getByTestId("criteria-card").nth(k);
    for (const [name, value, , limit, verdict] of cellsOf(await card.locator("tbody tr").allInnerTexts())) {
      const cell = verdicts[criteria.indexOf(name)][k];
      assert.ok(cell.includes(verdict) && cell.includes(value) && cell.includes(limit), `card ${k} ${name}: "${cell}" has ${verdict} ${value} ${limit}`);
    }
  }

  // A versus B: defaults are the first two models; B − A is the per-model tables' difference.
  const pickA = page.getByRole("combobox", { name: "Model A" });
  const pickB = page.getByRole("combobox", { name: "Model B" });
  assert.equal(await pickA.locator("option:checked").innerText(), "score_logreg");
  assert.equal(await pickB.locator("option:checked").innerText(), "score_gbt");
  await page.locator('[aria-label="fpr: B minus A by group"][data-rendered="true"]').waitFor();
  const perModel = new Map();
  for (const [group, model, threshold, value, , , , , vsFirst] of cellsOf(await rowsOf(page, "fpr"))) perModel.set(`${group}|${model.split(" · ").pop()}|${threshold}`, { value, vsFirst });
  const ab = cellsOf(await page.getByTestId("ab-fpr").locator("tr.ab-row").allInnerTexts());
  assert.equal(ab.length, 5 * 3, "five groups × three thresholds");
  for (const [group, threshold, a, , b, , d, interval] of ab) {
    const ma = perModel.get(`${group}|score_logreg|${threshold}`);
    const mb = perModel.get(`${group}|score_gbt|${threshold}`);
    assert.equal(a, ma.value, `${group} @ ${threshold}: A is score_logreg's value`);
    assert.equal(b, mb.value, `${group} @ ${threshold}: B is score_gbt's value`);
    assert.ok(Math.abs(num(d) - (num(b) - num(a))) <= 1.5e-4, `${group} @ ${threshold}: ${d} = ${b} − ${a}`);
    assert.equal(`${d} ${interval}`, mb.vsFirst, "the same as the per-model table's Δ vs first model");
  }
  assert.match(await page.getByTestId("ab-note").innerText(), /quadrature.*same rows.*conservative/s);
  await page.screenshot({ path: "end2end/test-results/fairness-compare.png", fullPage: true });

  // Swap A and B in the browser: the URL keeps the pair, nothing is recomputed, B − A changes sign.
  let calls = 0;
  page.on("request", (r) => { if (r.url().includes("get_fairness_view")) calls += 1; });
  await pickA.selectOption({ label: "score_gbt" });
  await page.waitForURL(/a=score_gbt/);
  assert.match(page.url(), /b=score_logreg/, "choosing B's model for A swaps them");
  assert.equal(await pickB.locator("option:checked").innerText(), "score_logreg");
  const swapped = cellsOf(await page.getByTestId("ab-fpr").locator("tr.ab-row").allInnerTexts());
  assert.equal(swapped.length, ab.length);
  swapped.forEach((r, i) => {
    assert.deepEqual([r[0], r[1], r[2], r[4]], [ab[i][0], ab[i][1], ab[i][4], ab[i][2]], "A and B change places");
    assert.ok(Math.abs(num(r[6]) + num(ab[i][6])) < 1e-9, `${r[6]} = −(${ab[i][6]})`);
  });
  assert.equal(calls, 0, "switching A and B does not ask the server");
  // The link reopens the same pair.
  const reviewer = await (await browser.newContext()).newPage();
  await reviewer.goto(page.url());
  await reviewer.getByTestId("ab-fpr").locator("tr.ab-row").first().waitFor();
  assert.equal(await reviewer.getByRole("combobox", { name: "Model A" }).locator("option:checked").innerText(), "score_gbt");
  assert.deepEqual(cellsOf(await reviewer.getByTestId("ab-fpr").locator("tr.ab-row").allInnerTexts()), swapped);

  // On a phone the matrix and the tables scroll inside their own boxes; the page does not widen.
  await page.setViewportSize({ width: 390, height: 844 });
  for (const box of await page.locator(".table-scroll").all()) {
    const b = await box.boundingBox();
    if (b) assert.ok(b.x >= 0 && b.x + b.width <= 391, `a table box within the screen (${b.x} + ${b.width})`);
  }
  await page.screenshot({ path: "end2end/test-results/fairness-compare-390.png", fullPage: true });
  assert.deepEqual(errors, []);
});
