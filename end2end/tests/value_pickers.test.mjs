// Issue 20, the value pickers: the what-if "Only slice" filter and the attack's slicing set with
// pickers only (a column, its values or a range; no spec typed), each answer checked against the
// API; a typo'd filter says what is wrong at the field, with the value meant; a baseline of
// several values chosen with checkboxes; the fairness page keeps its A-vs-B pair on Apply and its
// HTML export holds the criteria matrix and the A-vs-B table.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { BASE, launch, waitForHydration } from "../pages/browser.mjs";

let browser;
let adult;
before(async () => {
  browser = await launch();
  const runs = await (await fetch(`${BASE}/api/v1/runs`)).json();
  adult = runs.find((r) => r.name === "Adult income (demo)").id;
});
after(async () => { await browser?.close(); });

const api = async (path, init) => {
  const r = await fetch(`${BASE}${path}`, init);
  assert.equal(r.status, 200, path);
  return r.json();
};
// Rows of one filter, by the metrics API (a filter is one slice).
const rowsOf = async (filter) => {
  const v = await api(`/api/v1/runs/${adult}/metrics?slice=${encodeURIComponent(filter)}`);
  return v.slices.find((s) => s.spec !== "overall").count;
};
// The filter text the form sends: under the closed "Advanced" when a picker made it.
const filterText = (page) => page.getByRole("textbox", { name: "Only slice filter", includeHidden: true });
// Waits until the examples' count says `n` rows match (the table is replaced in place).
const shows = (page, n) => page.getByTestId("browser-count")
  .filter({ hasText: new RegExp(`^(${n.toLocaleString("en-US")}|${n}) `) }).waitFor();
const matching = async (page) => Number((await page.getByTestId("browser-count").innerText()).split(" ")[0].replace(/,/g, ""));

test("what-if: the filter and the attack's slicing are picked, the answers equal the API's", async () => {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 1000 } })).newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${BASE}/runs/${adult}/whatif`);
  await waitForHydration(page);

  // One value: sex = Female.
  await page.getByRole("combobox", { name: "Only slice", exact: true }).selectOption("sex");
  await page.getByRole("group", { name: "Values of sex" }).getByRole("checkbox", { name: "Female" }).check();
  assert.equal(await filterText(page).inputValue(), "sex=Female");
  await page.getByRole("button", { name: "Filter" }).click();
  await page.waitForURL(/slice=sex%3DFemale/);
  const female = await rowsOf("sex=Female");
  await shows(page, female);
  assert.equal(await matching(page), female);

  // Several values of another column: race in {Black, White}.
  await page.getByRole("combobox", { name: "Only slice", exact: true }).selectOption("race");
  const race = page.getByRole("group", { name: "Values of race" });
  await race.getByRole("checkbox", { name: "White" }).check();
  await race.getByRole("checkbox", { name: "Black" }).check();
  assert.equal(await filterText(page).inputValue(), "race in {Black, White}");
  await page.getByRole("button", { name: "Filter" }).click();
  await page.waitForURL(/slice=race/);
  const both = await rowsOf("race in {Black, White}");
  await shows(page, both);
  assert.equal(both, (await rowsOf("race=Black")) + (await rowsOf("race=White")), "the set is the union of its values");
  assert.ok(await race.getByRole("checkbox", { name: "Black" }).isChecked(), "the picker reads the URL back");

  // A numeric column: a range.
  await page.getByRole("combobox", { name: "Only slice", exact: true }).selectOption("age");
  await page.getByRole("spinbutton", { name: "age from" }).fill("25");
  await page.getByRole("spinbutton", { name: "age from" }).press("Tab");
  await page.getByRole("spinbutton", { name: "age to" }).fill("45");
  await page.getByRole("spinbutton", { name: "age to" }).press("Tab");
  assert.equal(await filterText(page).inputValue(), "age in [25, 45)");
  await page.getByRole("button", { name: "Filter" }).click();
  await page.waitForURL(/slice=age/);
  const ages = await rowsOf("age in [25, 45)");
  await shows(page, ages);
  assert.equal(await matching(page), ages);

  // The attack, by sex, picked: its table equals the attack API's answer for the same request.
  await page.getByRole("tab", { name: "Attacks" }).click();
  await page.getByRole("spinbutton", { name: "Attack noise" }).fill("0.5");
  await page.getByRole("combobox", { name: "Attack by slice", exact: true }).selectOption("sex");
  await page.getByRole("button", { name: "Attack" }).click();
  await page.waitForURL(/attack_slice=sex/);
  await page.getByTestId("attack").locator("tbody tr").first().waitFor();
  const shown = await page.getByTestId("attack").locator("tbody tr").allInnerTexts();
  const model = await page.getByRole("combobox", { name: "Model" }).inputValue();
  const answer = await api(`/api/v1/runs/${adult}/attacks`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ model, noise: 0.5, swap: 0.05, sample: 2000, seed: 0, slice: "sex", threshold: 0.5 }),
  });
  assert.equal(shown.length, answer.slices.length);
  for (const [row, s] of shown.map((r, i) => [r.split("\t"), answer.slices[i]])) {
    assert.equal(row[0], s.slice);
    assert.equal(Number(row[1]), s.n);
    assert.equal(row[2], s.flip_rate.toFixed(4));
  }
  await page.screenshot({ path: "end2end/test-results/whatif-pickers-1280.png", fullPage: false });
  // The last filter is remembered: a bare visit to the page opens with it.
  await page.goto(`${BASE}/runs/${adult}/whatif`);
  await page.waitForURL(/slice=age/);
  await shows(page, ages);
  assert.equal(await filterText(page).inputValue(), "age in [25, 45)");
  assert.deepEqual(errors, []);
});

test("what-if: a typo'd filter is marked at the field with the value meant; the form stays", async () => {
  const context = await browser.newContext({ viewport: { width: 390, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${BASE}/runs/${adult}/whatif?slice=${encodeURIComponent("sex=Femal")}`);
  await waitForHydration(page);
  assert.equal(await page.getByTestId("slice-error").innerText(), "no value 'Femal' in sex; did you mean 'Female'?");
  assert.equal(await page.getByRole("combobox", { name: "Only slice", exact: true }).getAttribute("aria-invalid"), "true");
  assert.doesNotMatch(await page.getByTestId("browser-count").innerText(), /showing 1–0/);
  // Fixed with the picker: the error goes, the rows come.
  await page.getByRole("group", { name: "Values of sex" }).getByRole("checkbox", { name: "Female" }).check();
  assert.equal(await page.getByTestId("slice-error").innerText(), "");
  // Typed under Advanced, a value the column lacks is caught as it is typed.
  await page.getByText("Advanced").first().click();
  await page.getByRole("textbox", { name: "Only slice filter" }).fill("race in {Black, Whit}");
  assert.equal(await page.getByTestId("slice-error").innerText(), "no value 'Whit' in race; did you mean 'White'?");
  // A column the run lacks: the server's word, at the field, and the page keeps its rows.
  await page.goto(`${BASE}/runs/${adult}/whatif?slice=${encodeURIComponent("gender=Female")}`);
  await waitForHydration(page);
  assert.match(await page.getByTestId("slice-error").innerText(), /^no column 'gender'/);
  assert.ok(await matching(page) > 0, "the browser shows the examples without the rejected filter");
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `the page is ${width} px wide`);
  await page.goto(`${BASE}/runs/${adult}/whatif?slice=${encodeURIComponent("sex=Female")}`);
  await waitForHydration(page);
  await page.screenshot({ path: "end2end/test-results/whatif-pickers-390.png", fullPage: true });
  await context.close();
});

test("a baseline of several values is picked; fairness keeps A vs B on Apply and exports the matrix", async () => {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 1000 } })).newPage();
  await page.goto(`${BASE}/runs/${adult}/slices?slice=race`);
  await waitForHydration(page);
  await page.getByText("Several values of race as the baseline").click();
  const set = page.getByRole("group", { name: "Baseline values of race" });
  await set.getByRole("checkbox", { name: "White" }).check();
  await set.getByRole("checkbox", { name: "Asian-Pac-Islander" }).check();
  assert.equal(await page.getByRole("combobox", { name: "Baseline" }).inputValue(), "race in {Asian-Pac-Islander, White}");
  await page.getByRole("button", { name: "Apply" }).click();
  await page.waitForURL(/baseline=race/);
  const v = await api(`/api/v1/runs/${adult}/metrics?slice=race&baseline=${encodeURIComponent("race in {Asian-Pac-Islander, White}")}`);
  assert.ok(v.slices.some((s) => Object.keys(s.vs_baseline ?? {}).length > 0), "the API compares against the set");

  // Fairness: two models, the pair B/A swapped by the pickers, then Apply keeps it.
  await page.goto(`${BASE}/runs/${adult}/fairness?feature=sex&model=score_logreg&model=score_gbt&thresholds=0.5`);
  await waitForHydration(page);
  await page.getByTestId("pick-a").selectOption({ label: "score_gbt" });
  await page.waitForURL(/a=score_gbt/);
  await page.getByRole("button", { name: "Apply" }).click();
  await page.waitForURL((u) => u.search.includes("a=score_gbt") && u.search.includes("min_size="));
  assert.equal(await page.getByTestId("pick-a").locator("option:checked").innerText(), "score_gbt");
  const href = await page.getByRole("link", { name: "Export HTML report" }).getAttribute("href");
  assert.match(href, /a=score_gbt/);
  const html = await (await fetch(`${BASE}${href}`)).text();
  assert.match(html, /<h2>Criteria matrix<\/h2>/);
  assert.match(html, /<h2>A vs B<\/h2><p>A: score_gbt · B: score_logreg/);
  const fair = await api(`/api/v1/runs/${adult}/fairness?feature=sex&model=score_logreg&model=score_gbt&thresholds=0.5`);
  const dp = fair.cards[0].checks.find((c) => c.name === "demographic_parity");
  assert.ok(html.includes(`${dp.verdict}</span>`), "the matrix holds the API's verdicts");
});
