// Launches Debian's Chromium through playwright-core (no browser download needed).
import { chromium } from "playwright-core";

export const BASE = process.env.STRATA_URL ?? "http://127.0.0.1:3000";
// Files a test uploads: the demo runs (`demo/`) and the malformed-input corpus (`testdata/`), in the repository.
export const DEMO = new URL("../../demo", import.meta.url).pathname;
export const TESTDATA = new URL("../../testdata", import.meta.url).pathname;

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

// Waits until the WASM bundle has hydrated the page (frontend/src/lib.rs marks the body). A page
// whose server rendering does seconds of work on purpose passes a longer timeout: the bundle starts
// once the streamed document has ended.
export async function waitForHydration(page, timeout = 30000) {
  await page.locator('body[data-hydrated="true"]').waitFor({ timeout });
}
