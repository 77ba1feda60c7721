// The fairness view of the Adult demo: race, three thresholds, FPR; the baseline flipped to a
// group; the copied link reproduces the numbers; the exported HTML report opens standalone.
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
