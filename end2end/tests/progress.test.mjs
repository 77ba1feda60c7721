// Progress of long work (issue 19): an upload shows the bytes it has sent and then the rows the
// server has read; a long search shows a progress bar, and Cancel stops it on the server (the job's
// progress, read from the API, stops short of its total).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { BASE, DEMO, launch, waitForHydration } from "../pages/browser.mjs";
import { UploadPage } from "../pages/runs_page.mjs";

let browser, demoId;

before(async () => {
  browser = await launch();
  const runs = await (await fetch(`${BASE}/api/v1/runs`)).json();
  demoId = runs.find((r) => r.name === "Adult income (demo)").id;
});

after(async () => {
  await browser?.close();
});

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  return { context, page, errors };
}

// A run whose analyses take seconds: the demo's rows forty times over with five more categorical
// columns (copies of the same rows alone would fall into the same cells and search as fast as
// the demo), via the API; made once for the tests that need it.
const bigRunIds = new Map();
async function bigRun(name = "Adult x40 (progress test)") {
  if (bigRunIds.has(name)) return bigRunIds.get(name);
  const csv = readFileSync(join(DEMO, "adult/eval.csv"), "utf8").trimEnd().split("\n");
  const idAt = csv[0].split(",").indexOf("example_id");
  const extra = (r, k) => [`c${k}`, `s${(r * 7 + k) % 13}`, `t${(r * 3 + k * 5) % 11}`, `u${(r * 5 + k) % 17}`, `v${(r * 11 + k * 3) % 19}`];
  const copy = (k) => csv.slice(1).map((line, r) => line.split(",").map((v, i) => (i === idAt ? `${v}-${k}` : v)).concat(extra(r, k)).join(","));
  const big = [`${csv[0]},copy,shard,tier,unit,vat`, ...Array.from({ length: 40 }, (_, k) => copy(k)).flat()].join("\n") + "\n";
  const form = new FormData();
  form.append("spec", JSON.stringify({ name, label: "label", scores: ["score_logreg", "score_gbt"] }));
  form.append("file", new Blob([big]), "adult40.csv");
  const created = await fetch(`${BASE}/api/v1/runs`, { method: "POST", body: form, headers: { origin: BASE } });
  assert.equal(created.status, 201, await created.clone().text());
  bigRunIds.set(name, (await created.json()).id);
  return bigRunIds.get(name);
}

const job = async (id) => (await fetch(`${BASE}/api/v1/jobs/${id}`)).json();

test("an upload shows the bytes it sends, then the rows read, and the server's job ends with every row", async () => {
  const { context, page, errors } = await newPage();
  const upload = new UploadPage(page);
  await upload.open();
  await upload.choose(join(DEMO, "adult/eval.csv"));
  await upload.preview().waitFor();
  await upload.name().fill("Adult (progress test)");
  // A slow link (2.7 MB at ~1 MB/s), so the bytes can be watched going out.
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 20, downloadThroughput: -1, uploadThroughput: 1_000_000 });
  await upload.submit().click();

  const sent = page.getByRole("progressbar", { name: "Bytes sent" });
  await sent.waitFor();
  const jobId = await page.locator(".job-progress").getAttribute("data-job");
  assert.match(jobId, /^job-[a-z0-9]{20}$/);
  // Part of the file is out, not all of it yet.
  await page.waitForFunction(() => {
    const v = Number(document.querySelector('[role=progressbar][aria-label="Bytes sent"]')?.getAttribute("aria-valuenow"));
    return v > 0 && v < 100;
  });
  assert.match(await page.locator(".upload-sent").innerText(), /sent \d+\.\d of 2\.\d MB \(\d+%\)/);
  // The server's side: the same job, its bar labelled and with a Cancel button.
  assert.equal(await page.getByRole("progressbar", { name: "Upload" }).count(), 1);
  assert.equal(await page.getByRole("button", { name: "Cancel upload" }).count(), 1);

  await page.waitForURL(/\/runs\/[0-9a-f]+$/, { timeout: 60000 });
  const done = await job(jobId);
  assert.equal(done.state, "done");
  assert.equal(done.rows, 16000, "every row was read");
  assert.equal(done.done, done.total);
  assert.deepEqual(errors, []);
  await context.close();
});

test("a long search shows its progress and Cancel stops it on the server", async () => {
  const { context, page, errors } = await newPage();
  const bigId = await bigRun();
  // A quick search first (server-rendered), then the long one from the form, in the browser.
  await page.goto(`${BASE}/runs/${bigId}/discover?model=score_gbt&level=1`);
  await waitForHydration(page);
  await page.getByTestId("discovered").waitFor();
  await page.getByRole("combobox", { name: "Features per slice" }).selectOption("3");
  await page.getByRole("spinbutton", { name: "Minimum rows" }).fill("5");
  await page.getByRole("button", { name: "Search" }).click();

  const bar = page.getByRole("progressbar", { name: "Search" });
  await bar.waitFor();
  const jobId = await page.locator(".job-progress").getAttribute("data-job");
  // The bar moves: some of the levels' row passes are done.
  await page.waitForFunction(() => Number(document.querySelector('[role=progressbar][aria-label="Search"]')?.getAttribute("aria-valuenow")) > 0, null, { timeout: 30000 });
  await page.screenshot({ path: "end2end/test-results/progress-search.png", fullPage: false });
  await page.getByRole("button", { name: "Cancel search" }).click();

  // The page says so, and the server's job stopped short of its total and stays there.
  await page.getByRole("alert").filter({ hasText: /cancelled/ }).waitFor();
  let j = await job(jobId);
  for (let i = 0; i < 50 && j.state !== "cancelled"; i++) {
    await new Promise((r) => setTimeout(r, 100));
    j = await job(jobId);
  }
  assert.equal(j.state, "cancelled");
  assert.ok(j.done < j.total, `stopped early: ${j.done} of ${j.total}`);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal((await job(jobId)).done, j.done, "its progress no longer grows");
  assert.equal(await bar.count(), 0, "the bar is gone once the search ended");
  assert.deepEqual(errors, []);
  await context.close();
});

test("a slow slices request shows its progress after a moment, and Cancel stops it on the server", async () => {
  const { context, page, errors } = await newPage();
  const bigId = await bigRun();
  // A first view (server-rendered: 80,000 cells), then a slicing with 640,000 cells x 2,000
  // bootstrap replicates from the form, in the browser: seconds of work.
  // The document ends once that first view is computed (seconds on a busy machine: the server
  // also computes the other model's view ahead), and hydration waits for it.
  await page.goto(`${BASE}/runs/${bigId}/slices?model=score_gbt&slice=race&bootstrap=2000`, { timeout: 120000 });
  await waitForHydration(page, 120000);
  await page.locator("table.slices tr.slice-row").first().waitFor();
  // A quick request (another metric: the server answers the same numbers from its cache) never
  // shows a bar, not even for a moment.
  await page.evaluate(() => {
    window.barSeen = false;
    new MutationObserver(() => { if (document.querySelector(".job-progress")) window.barSeen = true; })
      .observe(document.body, { childList: true, subtree: true });
  });
  const answered = page.waitForResponse((r) => r.url().includes("get_slice_view"));
  await page.getByRole("combobox", { name: "Metric" }).selectOption("fpr");
  await page.waitForURL(/metric=/);
  await answered;
  await page.waitForFunction(() => !document.querySelector('.view-updating[aria-busy="true"]'));
  await new Promise((r) => setTimeout(r, 600));
  assert.equal(await page.evaluate(() => window.barSeen), false, "no bar for a quick answer");
  await page.getByRole("combobox", { name: "Slice by", exact: true }).selectOption("copy");
  await page.getByRole("button", { name: "Apply" }).click();

  const bar = page.getByRole("progressbar", { name: "Computing" });
  await bar.waitFor({ timeout: 30000 });
  const jobId = await page.locator(".job-progress").getAttribute("data-job");
  assert.match(page.url(), /bootstrap=2000/, "Apply keeps the interval settings of the URL");
  await page.getByRole("button", { name: "Cancel computing" }).click();
  await page.screenshot({ path: "end2end/test-results/progress-slices.png", fullPage: false });
  let j = await job(jobId);
  for (let i = 0; i < 100 && j.state !== "cancelled"; i++) {
    await new Promise((r) => setTimeout(r, 100));
    j = await job(jobId);
  }
  assert.equal(j.state, "cancelled", JSON.stringify(j));
  assert.ok(j.done < j.total, `stopped early: ${j.done} of ${j.total}`);
  // The request ends (answered 409): its bar goes, the page says why.
  await bar.waitFor({ state: "detached", timeout: 30000 });
  await page.getByRole("alert").filter({ hasText: /cancelled/ }).waitFor();
  assert.deepEqual(errors, []);
  await context.close();
});

test("a slow drift shows its progress, and Cancel stops it on the server", async () => {
  const { context, page, errors } = await newPage();
  // Two runs of 640,000 rows each: comparing every column takes a second or more.
  const reference = await bigRun();
  const current = await bigRun("Adult x40, again (drift progress test)");
  await page.goto(`${BASE}/runs/${current}/drift`);
  await waitForHydration(page);
  await page.getByRole("combobox", { name: "Reference run" }).selectOption(reference);
  await page.getByRole("button", { name: "Compare" }).click();
  const bar = page.getByRole("progressbar", { name: "Computing drift" });
  await bar.waitFor({ timeout: 30000 });
  const jobId = await page.locator(".job-progress").getAttribute("data-job");
  await page.screenshot({ path: "end2end/test-results/progress-drift.png", fullPage: false });
  await page.getByRole("button", { name: "Cancel computing drift" }).click();
  let j = await job(jobId);
  for (let i = 0; i < 100 && j.state !== "cancelled"; i++) {
    await new Promise((r) => setTimeout(r, 100));
    j = await job(jobId);
  }
  assert.equal(j.state, "cancelled", JSON.stringify(j));
  assert.ok(j.done < j.total, `stopped early: ${j.done} of ${j.total} columns`);
  await bar.waitFor({ state: "detached", timeout: 30000 });
  await page.getByRole("alert").filter({ hasText: /cancelled/ }).waitFor();
  assert.match(page.url(), new RegExp(`reference=${reference}`), "the address names the comparison asked for");
  assert.deepEqual(errors, []);
  await context.close();
});
