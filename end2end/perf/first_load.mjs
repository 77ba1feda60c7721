// First load on a throttled profile: bytes over the wire and time to interactive of the main pages,
// with an empty cache. Profile: 10 Mbit/s down, 5 up, 40 ms round trip, CPU slowed 4× (Chromium's
// DevTools emulation). "Interactive" = the WASM bundle has hydrated the page (its controls are live);
// "content" = the server-rendered table is visible; "charts" = every chart on the page is drawn.
// Usage: STRATA_URL=http://127.0.0.1:3000 node end2end/perf/first_load.mjs [label]
import { BASE, launch } from "../pages/browser.mjs";

const label = process.argv[2] ?? "";
const runs = await (await fetch(`${BASE}/api/v1/runs`)).json();
const adult = runs.find((r) => r.name === "Adult income (demo)").id;
const pages = [
  ["runs list", "/"],
  ["overview", `/runs/${adult}`],
  ["slices", `/runs/${adult}/slices?slice=race&metric=fpr`],
  ["upload", "/upload"],
];
const REPEATS = Number(process.env.FIRST_LOAD_REPEATS ?? 3);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const rows = [];
for (const [name, path] of pages) {
  const samples = [];
  for (let r = 0; r < REPEATS; r++) {
    // A fresh browser per sample: nothing compiled or cached from a previous load.
    const browser = await launch();
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send("Network.enable");
    await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
    await cdp.send("Network.emulateNetworkConditions", {
      offline: false, latency: 40, downloadThroughput: 1.25e6, uploadThroughput: 0.625e6,
    });
    await cdp.send("Emulation.setCPUThrottlingRate", { rate: 4 });
    const urls = new Map();
    const bytes = { wasm: 0, plotly: 0, other: 0 };
    cdp.on("Network.responseReceived", (e) => urls.set(e.requestId, e.response.url));
    cdp.on("Network.loadingFinished", (e) => {
      const u = urls.get(e.requestId) ?? "";
      const kind = u.endsWith(".wasm") ? "wasm" : u.includes("plotly") ? "plotly" : "other";
      bytes[kind] += e.encodedDataLength;
    });
    const t0 = Date.now();
    await page.goto(`${BASE}${path}`, { waitUntil: "commit" });
    await page.locator("main h1").first().waitFor({ timeout: 120000 });
    const content = Date.now() - t0;
    await page.locator('body[data-hydrated="true"]').waitFor({ timeout: 180000 });
    const interactive = Date.now() - t0;
    await page.waitForFunction(() => [...document.querySelectorAll("[data-plot]")].every((e) => e.getAttribute("data-rendered") === "true"), null, { timeout: 180000, polling: 50 });
    const charts = Date.now() - t0;
    await page.waitForLoadState("networkidle");
    samples.push({ content, interactive, charts, ...bytes });
    if (process.env.FIRST_LOAD_VERBOSE) console.error(name, r, content, interactive, charts, bytes);
    await browser.close();
  }
  const m = (k) => median(samples.map((s) => s[k]));
  rows.push({ page: name, content_ms: m("content"), interactive_ms: m("interactive"), charts_ms: m("charts"),
    wasm_kb: Math.round(m("wasm") / 1024), plotly_kb: Math.round(m("plotly") / 1024), other_kb: Math.round(m("other") / 1024) });
}
console.log(`first load ${label} (median of ${REPEATS}; 10 Mbit/s, 40 ms RTT, CPU 4× slower, empty cache)`);
console.log("| page | content visible | interactive (hydrated) | charts drawn | WASM | plotly.js | other |");
console.log("|---|---:|---:|---:|---:|---:|---:|");
for (const r of rows) {
  console.log(`| ${r.page} | ${r.content_ms} ms | ${r.interactive_ms} ms | ${r.charts_ms} ms | ${r.wasm_kb} KiB | ${r.plotly_kb} KiB | ${r.other_kb} KiB |`);
}
