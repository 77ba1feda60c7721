// What-if speed through the HTTP API of a running server: one-example ONNX prediction round trips
// (median and 95th percentile of 100, after a warm-up that loads the model) and a 20-point PDP over
// 500 examples. Usage: STRATA_URL=http://127.0.0.1:3000 node end2end/perf/whatif_api.mjs
import { BASE } from "../pages/browser.mjs";

const runs = await (await fetch(`${BASE}/api/v1/runs`)).json();
const id = runs.find((r) => r.name === "Adult income (demo)").id;
const example = { age: 41, workclass: "Private", education: "Bachelors", education_num: 13, marital_status: "Never-married",
  occupation: "Sales", relationship: "Own-child", race: "White", sex: "Male", capital_gain: 0, capital_loss: 0,
  hours_per_week: 50, native_country: "United-States" };
const predict = async (models) => {
  const t = performance.now();
  const r = await fetch(`${BASE}/api/v1/runs/${id}/predict`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ examples: [example], models }) });
  if (!r.ok) throw new Error(await r.text());
  await r.json();
  return performance.now() - t;
};
const stats = (xs) => { xs.sort((a, b) => a - b); return `median ${xs[Math.floor(xs.length / 2)].toFixed(1)} ms, p95 ${xs[Math.floor(xs.length * 0.95)].toFixed(1)} ms`; };
for (const models of [["score_gbt"], ["score_logreg"], []]) {
  await predict(models);
  const times = [];
  for (let i = 0; i < 100; i++) times.push(await predict(models));
  console.log(`predict 1 example, models ${models.length ? models.join(",") : "all (2)"}: ${stats(times)}`);
}
for (const model of ["score_gbt", "score_logreg"]) {
  const times = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    const r = await fetch(`${BASE}/api/v1/runs/${id}/pdp?model=${model}&feature=age&sample=500&grid=20&seed=${i}`);
    await r.json();
    times.push(performance.now() - t);
  }
  console.log(`PDP ${model}, 20 points x 500 examples (10,000 predictions): ${stats(times)}`);
}
