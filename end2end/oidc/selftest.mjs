// Self-test for end2end/oidc/provider.mjs: starts the provider and a tiny
// redirect-capturing server, runs the authorization code flow (PKCE S256)
// in headless Chromium, exchanges the code (client_secret_basic) and checks
// the id_token claims. Also checks client_secret_post is accepted.
//
// Run: node end2end/oidc/selftest.mjs   -> prints PASS or FAIL (exit 0 / 1)

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const CLIENT_ID = 'strata';
const CLIENT_SECRET = 'strata-test-secret';

const b64url = (buf) => Buffer.from(buf).toString('base64url');

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

function startProvider(env) {
  const child = spawn(process.execPath, [join(here, 'provider.mjs')], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; process.stderr.write(`[provider] ${d}`); });
  const ready = new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`provider not ready in 15s; stderr: ${stderr}`)), 15000);
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('OIDC provider ready at')) { clearTimeout(timer); resolve(); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`provider exited early (${code}); stderr: ${stderr}`)); });
  });
  return { child, ready };
}

async function login(browser, authorizeUrl, loginName, callbackPath) {
  const context = await browser.newContext();
  const page = await context.newPage();
  try {
    await page.goto(authorizeUrl);
    // devInteractions login form
    await page.locator('input[name="login"]').fill(loginName);
    await page.locator('input[name="password"]').fill('any-password');
    await Promise.all([
      page.waitForURL((u) => u.pathname === callbackPath, { timeout: 15000 }),
      page.locator('button[type="submit"]').click(), // text "Sign-in"
    ]);
    return page.url();
  } catch (e) {
    console.error('browser at', page.url());
    console.error((await page.content()).slice(0, 3000));
    throw e;
  } finally {
    await context.close();
  }
}

async function main() {
  const [oidcPort, rpPort] = [await freePort(), await freePort()];
  const issuer = `http://127.0.0.1:${oidcPort}`;
  const callbackPath = '/auth/oidc/callback';
  const redirectUri = `http://127.0.0.1:${rpPort}${callbackPath}`;

  const captured = [];
  const rp = createServer((req, res) => {
    const u = new URL(req.url, redirectUri);
    if (u.pathname === callbackPath) {
      captured.push(Object.fromEntries(u.searchParams));
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => rp.listen(rpPort, '127.0.0.1', r));

  const { child, ready } = startProvider({ OIDC_PORT: String(oidcPort), OIDC_REDIRECT_URIS: redirectUri });
  let browser;
  const failures = [];
  const check = (cond, msg) => { if (!cond) failures.push(msg); };
  try {
    await ready;
    const disc = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
    check(disc.issuer === issuer, `issuer ${disc.issuer}`);
    console.log('discovery:', JSON.stringify({
      authorization_endpoint: disc.authorization_endpoint,
      token_endpoint: disc.token_endpoint,
      userinfo_endpoint: disc.userinfo_endpoint,
      jwks_uri: disc.jwks_uri,
      scopes_supported: disc.scopes_supported,
      claims_supported: disc.claims_supported,
      token_endpoint_auth_methods_supported: disc.token_endpoint_auth_methods_supported,
      code_challenge_methods_supported: disc.code_challenge_methods_supported,
    }));

    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });

    const runFlow = async (loginName, authMethod) => {
      const verifier = b64url(randomBytes(32));
      const challenge = b64url(createHash('sha256').update(verifier).digest());
      const state = b64url(randomBytes(16));
      const nonce = b64url(randomBytes(16));
      const auth = new URL(disc.authorization_endpoint);
      auth.search = new URLSearchParams({
        response_type: 'code',
        client_id: CLIENT_ID,
        redirect_uri: redirectUri,
        scope: 'openid profile email groups',
        code_challenge: challenge,
        code_challenge_method: 'S256',
        state,
        nonce,
      }).toString();

      const finalUrl = await login(browser, auth.href, loginName, callbackPath);
      const got = captured.at(-1) ?? {};
      console.log(`[${loginName}] redirected to`, finalUrl.replace(/code=[^&]+/, 'code=…'));
      check(got.state === state, `[${loginName}] state mismatch: ${got.state}`);
      check(!!got.code, `[${loginName}] no code: ${JSON.stringify(got)}`);
      if (!got.code) return;

      const body = new URLSearchParams({
        grant_type: 'authorization_code', code: got.code, redirect_uri: redirectUri, code_verifier: verifier,
      });
      const headers = { 'content-type': 'application/x-www-form-urlencoded' };
      if (authMethod === 'basic') {
        headers.authorization = `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`;
      } else {
        body.set('client_id', CLIENT_ID);
        body.set('client_secret', CLIENT_SECRET);
      }
      const tokRes = await fetch(disc.token_endpoint, { method: 'POST', headers, body });
      const tok = await tokRes.json();
      check(tokRes.ok, `[${loginName}] token endpoint ${tokRes.status}: ${JSON.stringify(tok)}`);
      if (!tok.id_token) return;
      const claims = JSON.parse(Buffer.from(tok.id_token.split('.')[1], 'base64url').toString());
      console.log(`[${loginName}] id_token (${authMethod}):`, JSON.stringify(claims));
      return { claims, nonce };
    };

    const a = await runFlow('admin-ann', 'basic');
    if (a) {
      const { claims, nonce } = a;
      check(claims.sub === 'admin-ann', `sub ${claims.sub}`);
      check(claims.iss === issuer, `iss ${claims.iss}`);
      check(claims.aud === CLIENT_ID, `aud ${claims.aud}`);
      check(claims.nonce === nonce, `nonce ${claims.nonce}`);
      check(claims.email === 'admin-ann@example.test', `email ${claims.email}`);
      check(claims.email_verified === true, `email_verified ${claims.email_verified}`);
      check(claims.preferred_username === 'admin-ann', `preferred_username ${claims.preferred_username}`);
      check(claims.name === 'admin-ann', `name ${claims.name}`);
      check(JSON.stringify(claims.groups) === '["strata-admins"]', `groups ${JSON.stringify(claims.groups)}`);
    }
    const e = await runFlow('editor-ed', 'post');
    if (e) {
      check(e.claims.sub === 'editor-ed', `editor sub ${e.claims.sub}`);
      check(JSON.stringify(e.claims.groups) === '["strata-editors"]', `editor groups ${JSON.stringify(e.claims.groups)}`);
    }
  } catch (err) {
    failures.push(`error: ${err.stack || err}`);
  } finally {
    await browser?.close().catch(() => {});
    rp.close();
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    }
  }

  if (failures.length) {
    console.log('FAIL');
    for (const f of failures) console.log('  -', f);
    process.exit(1);
  }
  console.log('PASS');
}

main();
