// Page-load time of the fairness view of a 1M-row run: server time (the API answer, first and
// repeated request) and browser time (navigation until the table and chart are drawn).
// Usage: STRATA_URL=http://127.0.0.1:3000 node end2end/perf/fairness_1m.mjs
// It builds a 1M-row CSV from the Adult demo rows (ids made unique) and uploads it once.
import { execFileSync } from "node:child_process";
import { existsSync, openAsBlob } from "node:fs";
import { BASE, launch, waitForHydration } from "../pages/browser.mjs";

const file = "/tmp/strata-adult-1m.csv";
if (!existsSync(file)) {
  execFileSync("python3", ["-c", `
import pandas as pd
d = pd.read_parquet("demo/adult/eval.parquet")
reps = -(-1_000_000 // len(d))
big = pd.concat([d] * reps, ignore_index=True).iloc[:1_000_000]
big["example_id"] = [f"x{i}" for i in range(len(big))]
big.to_csv("${file}", index=False)`]);
}
let runs = await (await fetch(`${BASE}/api/v1/runs`)).json();
let run = runs.find((r) => r.name === "adult-1m");
if (!run) {
  const form = new FormData();
  form.append("file", await openAsBlob(file), "adult-1m.csv");
  form.append("spec", JSON.stringify({ name: "adult-1m", label: "label", scores: ["score_logreg", "score_gbt"], id: "example_id", timestamp: "timestamp" }));
  const t = performance.now();
  const res = await fetch(`${BASE}/api/v1/runs`, { method: "POST", body: form });
  if (!res.ok) throw new Error(await res.text());
  console.log(`upload of 1M rows: ${((performance.now() - t) / 1000).toFixed(2)} s`);
  run = { id: (await res.json()).id };
}
const query = "model=score_gbt&feature=race&thresholds=0.3,0.5,0.7&metric=fpr&metric=tpr&metric=positive_rate";
const timeApi = async (q) => {
  const t = performance.now();
  const r = await fetch(`${BASE}/api/v1/runs/${run.id}/fairness?${q}`);
  await r.json();
  return (performance.now() - t) / 1000;
};
console.log(`server, first request (load + prepare + 200 bootstrap + trade-off grid): ${(await timeApi(query)).toFixed(3)} s`);
console.log(`server, same request again: ${(await timeApi(query)).toFixed(3)} s`);
console.log(`server, new thresholds (prepared cells reused): ${(await timeApi(query.replace("0.3,0.5,0.7", "0.2,0.4,0.6"))).toFixed(3)} s`);
const browser = await launch();
const page = await (await browser.newContext({ viewport: { width: 1280, height: 1000 } })).newPage();
const t = performance.now();
await page.goto(`${BASE}/runs/${run.id}/fairness?${query.replace("0.3,0.5,0.7", "0.25,0.5,0.75")}`);
await page.getByTestId("table-fpr").locator("tr.group-row").first().waitFor();
const html = (performance.now() - t) / 1000;
await page.locator('[aria-label="fpr by group"][data-rendered="true"]').waitFor();
await waitForHydration(page);
const drawn = (performance.now() - t) / 1000;
console.log(`browser, new request: server-rendered table visible ${html.toFixed(3)} s, charts drawn and page hydrated ${drawn.toFixed(3)} s`);
await browser.close();
