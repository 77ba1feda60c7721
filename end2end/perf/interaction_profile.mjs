// Where the time of one interaction goes: the request (server + transfer), Plotly's redraws, and
// the rest (the WASM side: decoding the answer, rebuilding the view). Usage:
//   STRATA_URL=http://127.0.0.1:3000 node end2end/perf/interaction_profile.mjs <run id> [reps]
import { BASE, launch, waitForHydration } from "../pages/browser.mjs";

const [id, repsArg] = process.argv.slice(2);
const reps = Number(repsArg ?? 10);
const browser = await launch();
const page = await (await browser.newContext({ viewport: { width: 1280, height: 1000 } })).newPage();
const instrument = () => page.evaluate(() => {
  window.__plotMs = 0;
  if (window.Plotly && !window.Plotly.__timed) {
    const react = window.Plotly.react;
    window.Plotly.react = function (...args) {
      const t = performance.now();
      return react.apply(this, args).then((r) => { window.__plotMs += performance.now() - t; return r; });
    };
    window.Plotly.__timed = true;
  }
  performance.clearResourceTimings();
});
const measure = async (label, act, done) => {
  const rows = [];
  for (let i = 0; i < reps; i++) {
    await instrument();
    const t0 = await act(i);
    await done(i);
    const t1 = await page.evaluate(() => performance.now());
    await page.waitForTimeout(50);
    const r = await page.evaluate(() => {
      const req = performance.getEntriesByType("resource").filter((e) => e.name.includes("/api/get_"));
      const last = req[req.length - 1];
      return { request: last ? last.responseEnd - last.startTime : 0, size: last ? last.encodedBodySize : 0, plot: window.__plotMs };
    });
    r.total = t1 - t0;
    r.rest = r.total - r.request - r.plot;
    rows.push(r);
  }
  const avg = (k) => (rows.reduce((a, r) => a + r[k], 0) / rows.length).toFixed(0);
  console.log(`${label}: total ${avg("total")} ms = request ${avg("request")} ms + Plotly ${avg("plot")} ms + the rest ${avg("rest")} ms; answer ${avg("size")} B on the wire`);
};
await page.goto(`${BASE}/runs/${id}/fairness?feature=race&thresholds=0.5&metric=fpr&model=score_gbt`);
await waitForHydration(page);
await page.locator('figure[aria-label="fpr by group"] .plot[data-rendered="true"]').waitFor();
await measure("fairness threshold", async (i) => {
  await page.locator("button.chip-remove").first().click();
  await page.getByRole("spinbutton", { name: "Add threshold" }).fill(String((60 + i) / 100));
  await page.getByRole("button", { name: "Add", exact: true }).click();
  const apply = page.getByRole("button", { name: "Apply" });
  await apply.waitFor();
  const t0 = await page.evaluate(() => performance.now());
  await apply.click();
  return t0;
}, async (i) => {
  await page.waitForFunction((t) => location.search.includes(`thresholds=${t}`) && [...document.querySelectorAll(".plot")].every((c) => c.__strataPlotted === c.getAttribute("data-plot")) && !document.querySelector('[aria-busy="true"]')
    && document.querySelector('[data-testid="table-fpr"] td:nth-child(2)')?.innerText === t, String((60 + i) / 100), { polling: "raf" });
});
await browser.close();
