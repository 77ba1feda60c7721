// Teams, end to end, on a Strata of its own in team mode (started here, with a real OpenID
// provider beside it): an admin creates an editor and a viewer; the editor uploads a run into a
// project and shares its fairness view; a fresh browser without an account opens the link, sees
// exactly the same numbers and cannot open another run; a reviewer signs in, comments on the view
// and approves; the run page shows the approval and the gates; the link is revoked and refused;
// and a user signs in through OpenID Connect.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { DEMO, launch, waitForHydration } from "../pages/browser.mjs";

const ROOT = new URL("../..", import.meta.url).pathname;
const BIN = process.env.STRATA_BIN ?? resolve(ROOT, process.env.CARGO_TARGET_DIR ?? "target", "debug", "strata");
const SITE = resolve(ROOT, process.env.LEPTOS_SITE_ROOT ?? "target/site");
const ADMIN_PW = "admin password for the journey";

function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

async function waitFor(url, child, what) {
  for (let i = 0; i < 240; i++) {
    if (child.exitCode !== null) throw new Error(`${what} exited (${child.exitCode})`);
    try { if ((await fetch(url)).status < 500) return; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} did not start`);
}

let browser, strata, provider, dataDir, BASE;
const logs = [];

before(async () => {
  browser = await launch();
  dataDir = await mkdtemp(join(tmpdir(), "strata-teams-"));
  const [port, oidcPort] = [await freePort(), await freePort()];
  BASE = `http://127.0.0.1:${port}`;
  provider = spawn(process.execPath, [join(ROOT, "end2end/oidc/provider.mjs")], {
    env: { ...process.env, OIDC_PORT: String(oidcPort), OIDC_REDIRECT_URIS: `${BASE}/auth/oidc/callback` },
    stdio: ["ignore", "pipe", "pipe"],
  });
  provider.stderr.on("data", (d) => logs.push(`[oidc] ${d}`));
  await waitFor(`http://127.0.0.1:${oidcPort}/.well-known/openid-configuration`, provider, "the OpenID provider");
  const env = { ...process.env, STRATA_DATA_DIR: dataDir, DATABASE_URL: "", RUST_LOG: "warn" };
  // The first admin, as the README says: the password on standard input.
  const add = spawnSync(BIN, ["users", "add", "root", "--role", "admin"], { env, input: `${ADMIN_PW}\n`, encoding: "utf8" });
  assert.equal(add.status, 0, add.stderr);
  strata = spawn(BIN, ["serve", "--no-demo", "--addr", `127.0.0.1:${port}`], {
    env: {
      ...env, LEPTOS_SITE_ROOT: SITE,
      STRATA_OIDC_ISSUER: `http://127.0.0.1:${oidcPort}`, STRATA_OIDC_CLIENT_ID: "strata", STRATA_OIDC_CLIENT_SECRET: "strata-test-secret",
      STRATA_OIDC_ROLES: "strata-admins=admin,strata-editors=editor", STRATA_OIDC_DEFAULT_ROLE: "viewer", STRATA_OIDC_LABEL: "Sign in with the test provider",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  strata.stderr.on("data", (d) => logs.push(`[strata] ${d}`));
  await waitFor(`${BASE}/healthz`, strata, "Strata");
});

after(async () => {
  await browser?.close();
  strata?.kill("SIGTERM");
  provider?.kill("SIGTERM");
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

async function signIn(context, name, password) {
  const page = await context.newPage();
  await page.goto(`${BASE}/login`);
  await page.getByLabel("Name").fill(name);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${BASE}/`);
  return page;
}

test("teams: roles, a reviewer link, review and sign-off, revocation, single sign-on", async () => {
  try {
    await journey();
  } catch (e) {
    console.error(logs.slice(-40).join(""));
    throw e;
  }
});

async function journey() {
  // Team mode: a page asks for a sign-in.
  const stranger = await (await browser.newContext()).newPage();
  await stranger.goto(`${BASE}/`);
  assert.match(stranger.url(), /\/login\?next=%2F$/);

  // An admin creates an editor and a viewer.
  const adminCtx = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  const admin = await signIn(adminCtx, "root", ADMIN_PW);
  await admin.goto(`${BASE}/admin`);
  await waitForHydration(admin);
  for (const [name, role] of [["eddie", "editor"], ["vera", "viewer"]]) {
    await admin.getByLabel("New account name").fill(name);
    await admin.getByLabel("New account role").selectOption(role);
    await admin.getByLabel("New account password").fill(`${name} has a long password`);
    await admin.getByTestId("add-user").click();
    await admin.getByRole("status").filter({ hasText: `Added ${name} (${role})` }).waitFor();
  }
  await admin.getByTestId("users").getByRole("cell", { name: "vera", exact: true }).waitFor();
  await admin.screenshot({ path: "end2end/test-results/teams-admin.png", fullPage: true });

  // The editor uploads a run into a project (and one elsewhere), and shares its fairness view.
  const editorCtx = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  const editor = await signIn(editorCtx, "eddie", "eddie has a long password");
  const csv = await readFile(`${DEMO}/adult/eval.csv`);
  const upload = async (name, project) => {
    const spec = { name, label: "label", scores: ["score_logreg", "score_gbt"], id: "example_id", timestamp: "timestamp", project };
    const res = await editor.request.post(`${BASE}/api/v1/runs`, {
      multipart: { spec: JSON.stringify(spec), file: { name: "eval.csv", mimeType: "text/csv", buffer: csv } },
    });
    assert.equal(res.status(), 201, await res.text());
    return (await res.json()).id;
  };
  const run = await upload("Credit model v3", "credit");
  const other = await upload("Another team's run", "marketing");
  const view = `${BASE}/runs/${run}/fairness?feature=sex&thresholds=0.5&metric=tpr`;
  await editor.goto(view);
  await waitForHydration(editor);
  await editor.getByRole("button", { name: "Save limits with the run" }).waitFor();
  const authorNumbers = await editor.getByTestId("criteria-matrix").allInnerTexts();
  assert.ok(authorNumbers.length > 0);
  await editor.getByTestId("share-open").click();
  await editor.getByTestId("share-create").click();
  const link = await editor.getByTestId("share-url").inputValue();
  assert.match(link, new RegExp(`^${BASE}/s/[A-Za-z0-9_-]{40,}$`));

  // A fresh browser, no account: the link opens exactly that view, read-only.
  const guest = await (await browser.newContext({ viewport: { width: 1280, height: 1000 } })).newPage();
  await guest.goto(link);
  assert.equal(guest.url(), view.replace(BASE, BASE));
  await guest.getByTestId("share-badge").waitFor();
  assert.deepEqual(await guest.getByTestId("criteria-matrix").allInnerTexts(), authorNumbers, "the reviewer sees the author's numbers");
  assert.equal(await guest.getByRole("button", { name: "Save limits with the run" }).count(), 0, "a reader gets no controls that change the run");
  await guest.screenshot({ path: "end2end/test-results/teams-shared-view.png", fullPage: true });
  const refused = await guest.goto(`${BASE}/runs/${other}`);
  assert.equal(refused.status(), 403);
  assert.match(await guest.locator("body").innerText(), /Not allowed/);
  assert.equal((await guest.request.get(`${BASE}/api/v1/runs`)).status(), 403);

  // Gates for the project (the admin), then a reviewer signs in, comments on the view, approves.
  let res = await admin.request.put(`${BASE}/api/v1/projects/credit/gates`, { data: { gates: [{ metric: "auc_roc", min: 0.8 }] } });
  assert.equal(res.status(), 200, await res.text());
  res = await admin.request.post(`${BASE}/api/v1/projects/credit/runs/${run}/validate`);
  assert.equal(res.status(), 200, await res.text());
  assert.equal((await res.json()).passed, true);
  const reviewerCtx = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  const reviewer = await signIn(reviewerCtx, "vera", "vera has a long password");
  await reviewer.goto(view);
  await waitForHydration(reviewer);
  await reviewer.getByTestId("review-this-view").click();
  await reviewer.waitForURL(/review_view=/);
  await waitForHydration(reviewer);
  await reviewer.getByLabel("Comment", { exact: true }).fill("TPR gap between women and men is within our limit at 0.5.");
  await reviewer.getByLabel("Approve").check();
  await reviewer.getByTestId("review-submit").click();
  await reviewer.getByTestId("approved-by").filter({ hasText: "vera" }).waitFor();
  const preview = await reviewer.getByTestId("review-preview").first().innerText();
  assert.match(preview, /^sex · /);

  // The run page shows the approval beside the gates' verdict.
  await editor.goto(`${BASE}/runs/${run}`);
  await waitForHydration(editor);
  const state = await editor.getByTestId("review-state").innerText();
  assert.match(state, /Blessed: 1 approval\(s\), gates passed/);
  await editor.getByTestId("review-panel").screenshot({ path: "end2end/test-results/teams-review.png" });

  // The editor makes a token for CI on the account page; it acts as the editor, within its scope.
  await editor.goto(`${BASE}/account`);
  await waitForHydration(editor);
  await editor.getByLabel("Token name").fill("ci pipeline");
  await editor.getByTestId("token-create").click();
  const token = await editor.getByTestId("token-secret").inputValue();
  await editor.screenshot({ path: "end2end/test-results/teams-account.png", fullPage: true });
  const asToken = await (await fetch(`${BASE}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } })).json();
  assert.deepEqual([asToken.kind, asToken.name, asToken.scopes], ["token", "eddie", ["validate"]]);
  const validated = await fetch(`${BASE}/api/v1/projects/credit/runs/${run}/validate`, { method: "POST", headers: { authorization: `Bearer ${token}` } });
  assert.equal(validated.status, 200);
  assert.equal((await validated.json()).review.blessed, true, "CI sees the sign-off");
  const deleted = await fetch(`${BASE}/api/v1/runs/${run}`, { method: "DELETE", headers: { authorization: `Bearer ${token}` } });
  assert.equal(deleted.status, 403, "a validate token cannot delete");

  // The editor revokes the link: it is refused from then on.
  await editor.goto(`${BASE}/runs/${run}`);
  await waitForHydration(editor);
  await editor.getByTestId("share-revoke").first().click();
  await editor.getByTestId("share-links").getByText(/revoked/).first().waitFor();
  const gone = await guest.goto(link);
  assert.equal(gone.status(), 410);
  const again = await guest.goto(view);
  assert.equal(again.status(), 410, "the link's cookie no longer opens the view");

  // Single sign-on: a user of the OpenID provider signs in and gets the role their groups map to.
  const sso = await (await browser.newContext()).newPage();
  await sso.goto(`${BASE}/login`);
  await sso.getByTestId("sso").click();
  await sso.locator('input[name="login"]').fill("admin-ann");
  await sso.locator('input[name="password"]').fill("anything");
  await sso.locator('button[type="submit"]').click();
  await sso.waitForURL(`${BASE}/`);
  assert.equal(await sso.getByTestId("signed-in-as").innerText(), "admin-ann (admin)");
  const me = await (await sso.request.get(`${BASE}/api/v1/me`)).json();
  assert.deepEqual([me.kind, me.name, me.role], ["user", "admin-ann", "admin"]);
}
