// Accessibility and narrow screens: axe-core (WCAG 2.0–2.2 A/AA rules) finds no serious or critical
// violation on the main pages once they are hydrated and their charts drawn, and at 390 px no page
// is wider than the screen (tables scroll in their own container, cards stack).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { BASE, launch, waitForHydration } from "../pages/browser.mjs";

const require = createRequire(import.meta.url);
const AXE = await readFile(require.resolve("axe-core/axe.min.js"), "utf8");
const TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"];

let browser, adult, gss;
before(async () => {
  browser = await launch();
  const runs = await (await fetch(`${BASE}/api/v1/runs`)).json();
  adult = runs.find((r) => r.name === "Adult income (demo)").id;
  gss = runs.find((r) => r.name === "GSS wages (demo)").id;
});
after(async () => { await browser?.close(); });

// Opens a page, waits until it is hydrated and every chart on it is drawn.
async function open(page, path) {
  await page.goto(`${BASE}${path}`);
  await waitForHydration(page);
  await page.waitForFunction(() => [...document.querySelectorAll("[data-plot]")].every((e) => e.getAttribute("data-rendered") === "true"), null, { timeout: 30000 });
}

// The serious and critical violations axe reports on the page, one line each.
async function violations(page) {
  await page.evaluate(AXE);
  const result = await page.evaluate(async (tags) => await window.axe.run(document, { runOnly: { type: "tag", values: tags } }), TAGS);
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}, ${v.nodes.length}×): ${v.help} — e.g. ${v.nodes[0].target.join(" ")}`);
}

const MAIN_PAGES = () => [
  ["runs list", "/"],
  ["overview", `/runs/${adult}`],
  ["slices", `/runs/${adult}/slices?slice=race&metric=fpr`],
  ["fairness", `/runs/${adult}/fairness?feature=race&thresholds=0.3,0.5,0.7`],
  ["what-if", `/runs/${adult}/whatif`],
  ["upload", "/upload"],
];

for (const width of [1280, 390]) {
  test(`axe-core: no serious or critical violation on the main pages at ${width} px`, async () => {
    const context = await browser.newContext({ viewport: { width, height: 900 }, bypassCSP: true });
    const page = await context.newPage();
    const found = [];
    for (const [name, path] of MAIN_PAGES()) {
      await open(page, path);
      for (const v of await violations(page)) found.push(`${name}: ${v}`);
    }
    await context.close();
    assert.deepEqual(found, [], found.join("\n"));
  });
}

test("at 390 px no page is wider than the screen", async () => {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  const pages = [
    ...MAIN_PAGES(),
    ["regression overview", `/runs/${gss}`],
    ["residuals", `/runs/${gss}/residuals`],
    ["regression slices", `/runs/${gss}/slices?slice=region`],
    ["discovery", `/runs/${adult}/discover`],
    ["drift", `/runs/${adult}/drift?reference=${gss}`],
    ["explain", `/runs/${adult}/explain`],
    ["project", "/projects/adult-income"],
    ["compare", `/compare?runs=${adult},${adult}&feature=sex`],
  ];
  const wide = [];
  for (const [name, path] of pages) {
    await open(page, path);
    const w = await page.evaluate(() => document.documentElement.scrollWidth);
    if (w > 390) {
      const culprits = await page.evaluate(() => [...document.querySelectorAll("body *")]
        .filter((e) => e.getBoundingClientRect().right > 391 && !e.closest(".table-scroll, .plot"))
        .slice(0, 3).map((e) => `${e.tagName.toLowerCase()}${e.className ? "." + String(e.className).split(" ")[0] : ""}`));
      wide.push(`${name}: ${w} px (${culprits.join(", ")})`);
    }
  }
  await context.close();
  assert.deepEqual(wide, [], wide.join("\n"));
});

test("first load: controls that need the WASM bundle are disabled until it has hydrated the page, then live", async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  // A slow link: the bundle arrives two seconds late.
  let release;
  const held = new Promise((r) => { release = r; });
  await page.route("**/pkg/strata.wasm", async (route) => { await held; await route.continue(); });
  await page.goto(`${BASE}/runs/${adult}/slices?slice=race&metric=fpr`);
  const metric = page.getByRole("combobox", { name: "Metric" });
  await metric.waitFor();
  assert.equal(await metric.isDisabled(), true, "disabled while the page is not live");
  assert.equal(await page.locator("body").getAttribute("aria-busy"), "true");
  release();
  await waitForHydration(page);
  await page.waitForFunction(() => !document.querySelector("[data-until-hydrated]"));
  assert.equal(await metric.isDisabled(), false, "live after hydration");
  assert.equal(await page.locator("body").getAttribute("aria-busy"), null);
  // The choice made now is applied, not dropped.
  await metric.selectOption("tpr");
  await page.waitForURL(/metric=tpr/);
  await context.close();
});
