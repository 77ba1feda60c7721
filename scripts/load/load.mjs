#!/usr/bin/env node
// Load generator for a running Strata server (Node 20, no npm dependencies).
//
//   node scripts/load/load.mjs --base http://127.0.0.1:PORT [--users 50] [--duration 120]
//        [--rows 1000000] [--pid SERVER_PID] [--think 100:500] [--timeout 60] [--seed 1]
//        [--json FILE] [--exclude REGEX] [--trace FILE] [--allow-status 503,…]
//
// 1. Builds a CSV of --rows rows from demo/adult/eval.csv (its rows repeated, `example_id` made
//    unique) and uploads it with the two adult ONNX models as one run (POST /api/v1/runs); prints
//    the upload time.
// 2. Runs --users virtual users for --duration seconds. Each loops over a weighted random mix of
//    what a person browsing does (page loads, analyses through the API, what-if predictions, now
//    and then a small upload), with a think time between requests. --exclude leaves out the
//    actions whose name matches (e.g. 'whatif\?example|upload'); the names are in `actions`.
// 3. Prints a Markdown table per route class (count, p50/p95/p99/max in ms, errors), the request
//    rate and, with --pid, the server's peak resident memory (VmHWM of /proc/PID/status, sampled).
//
// Analyses are labelled "first" when no identical request (same method and URL) had completed
// before it started, "cached" otherwise: the server caches the prepared data of an analysis
// (model × slices × baseline), so a repeat only recomputes the statistics. Target: p99 ≤ 500 ms
// for cached analyses.
//
// --trace FILE: every request as one JSON line as it completes ({t0, t1: wall-clock ms, label,
// method, url, status (0 = network error or timeout), ms, error, retryAfter}), and {"event":"load-start",t} /
// {"event":"load-end",t} around step 2 (scripts/faults.sh lines these up with its outage).
// --allow-status: statuses (comma-separated, e.g. 503) still counted and shown, but not failures.
//
// Exit code: 0 when every request answered 2xx (or an allowed status), 1 when any request failed
// (non-2xx, network error or timeout), 2 on a usage or set-up error.

import { performance } from 'node:perf_hooks';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// ---------------------------------------------------------------------------------------------
// Arguments

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
const ADULT = path.join(REPO, 'demo', 'adult');

function parseArgs(argv) {
  const o = { base: null, users: 50, duration: 120, rows: 1_000_000, pid: null, think: '100:500', timeout: 60, uploadTimeout: 3600, seed: 1, json: null, smallRows: 1000, exclude: null, trace: null, allowStatus: '' };
  const names = { '--base': 'base', '--users': 'users', '--duration': 'duration', '--rows': 'rows', '--pid': 'pid', '--think': 'think', '--timeout': 'timeout', '--upload-timeout': 'uploadTimeout', '--seed': 'seed', '--json': 'json', '--small-rows': 'smallRows', '--exclude': 'exclude', '--trace': 'trace', '--allow-status': 'allowStatus' };
  for (let i = 0; i < argv.length; i++) {
    let [k, v] = argv[i].split(/=(.*)/s, 2);
    if (k === '-h' || k === '--help') {
      console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('//')).slice(0, 28).map((l) => l.slice(3)).join('\n'));
      process.exit(0);
    }
    if (!(k in names)) usage(`unknown option ${k}`);
    if (v === undefined) v = argv[++i];
    if (v === undefined) usage(`${k} needs a value`);
    o[names[k]] = v;
  }
  if (!o.base) usage('--base is required');
  o.base = o.base.replace(/\/+$/, '');
  for (const k of ['users', 'duration', 'rows', 'timeout', 'uploadTimeout', 'seed', 'smallRows']) {
    o[k] = Number(o[k]);
    if (!Number.isFinite(o[k]) || o[k] < 0) usage(`--${k} must be a non-negative number`);
  }
  if (o.rows < 1) usage('--rows must be at least 1');
  o.pid = o.pid == null ? null : Number(o.pid);
  if (o.exclude) o.exclude = new RegExp(o.exclude);
  o.allowStatus = new Set(String(o.allowStatus).split(',').map((x) => x.trim()).filter(Boolean).map(Number));
  for (const c of o.allowStatus) if (!Number.isInteger(c) || c < 100 || c > 599) usage('--allow-status takes HTTP status codes, e.g. 503 or 503,429');
  const [lo, hi] = String(o.think).split(':').map(Number);
  o.thinkMin = lo;
  o.thinkMax = Number.isFinite(hi) ? hi : lo;
  return o;
}

function usage(msg) {
  console.error(`load.mjs: ${msg}\nusage: node scripts/load/load.mjs --base http://127.0.0.1:PORT [--users 50] [--duration 120] [--rows 1000000] [--pid PID] [--think MIN:MAX ms] [--timeout S] [--json FILE] [--exclude REGEX] [--trace FILE] [--allow-status 503]`);
  process.exit(2);
}

const opt = parseArgs(process.argv.slice(2));
const traceFd = opt.trace ? fs.openSync(opt.trace, 'w') : null;
/** One line of the --trace file (written at once, so a reader sees it while the test runs). */
function trace(obj) {
  if (traceFd !== null) fs.writeSync(traceFd, JSON.stringify(obj) + '\n');
}

// A small seeded PRNG (mulberry32), so a run's mix of requests is repeatable.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.error(`[load ${new Date().toISOString().slice(11, 19)}]`, ...a);

// ---------------------------------------------------------------------------------------------
// The source rows

/** Splits one CSV line into fields (RFC 4180 quotes). */
function splitCsv(line) {
  const out = [];
  let cur = '';
  let q = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (q) {
      if (c === '"' && line[i + 1] === '"') { cur += '"'; i++; }
      else if (c === '"') q = false;
      else cur += c;
    } else if (c === '"') q = true;
    else if (c === ',') { out.push(cur); cur = ''; }
    else cur += c;
  }
  out.push(cur);
  return out;
}

const csvText = fs.readFileSync(path.join(ADULT, 'eval.csv'), 'utf8');
const csvLines = csvText.split('\n').filter((l) => l.length > 0);
const header = csvLines[0];
const columns = splitCsv(header);
const ID = 'example_id';
const LABEL = 'label';
const SCORES = ['score_logreg', 'score_gbt'];
const TIMESTAMP = 'timestamp';
const idCol = columns.indexOf(ID);
for (const c of [ID, LABEL, TIMESTAMP, ...SCORES]) if (!columns.includes(c)) { console.error(`eval.csv has no column ${c}`); process.exit(2); }
// The rest of each line after the id (the id is the first column; checked).
if (idCol !== 0) { console.error('expected example_id to be the first column of eval.csv'); process.exit(2); }
const tails = csvLines.slice(1).map((l) => l.slice(l.indexOf(',')));
const parsedRows = csvLines.slice(1).map(splitCsv);
const FEATURES = columns.filter((c) => ![ID, LABEL, TIMESTAMP, ...SCORES].includes(c));
const MODELS = [
  { file: path.join(ADULT, 'model_logreg.onnx'), name: 'model_logreg.onnx' },
  { file: path.join(ADULT, 'model_gbt.onnx'), name: 'model_gbt.onnx' },
];

/** The `i`-th generated row: source row `i mod n` under the id `lt-<prefix>-<i>`. */
const rowId = (prefix, i) => `lt${prefix}-${String(i).padStart(7, '0')}`;

/** Writes a CSV of `rows` rows to `file`, in blocks. */
function writeBigCsv(file, rows, prefix) {
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, header + '\n');
    const block = 20_000;
    for (let start = 0; start < rows; start += block) {
      const parts = [];
      for (let i = start; i < Math.min(rows, start + block); i++) parts.push(rowId(prefix, i), tails[i % tails.length], '\n');
      fs.writeSync(fd, parts.join(''));
    }
  } finally {
    fs.closeSync(fd);
  }
  return fs.statSync(file).size;
}

/** A small CSV in memory: `rows` rows starting at a random source row. */
function smallCsv(rows, prefix, r) {
  const start = Math.floor(r() * tails.length);
  const parts = [header, '\n'];
  for (let i = 0; i < rows; i++) parts.push(rowId(prefix, i), tails[(start + i) % tails.length], '\n');
  return Buffer.from(parts.join(''));
}

/** An example to score: the feature columns of source row `i` (blank = missing, left out). */
function exampleOf(i) {
  const row = parsedRows[i % parsedRows.length];
  const e = {};
  for (const f of FEATURES) {
    const v = row[columns.indexOf(f)];
    if (v !== '') e[f] = v;
  }
  return e;
}

// ---------------------------------------------------------------------------------------------
// Uploads: multipart/form-data streamed with node:http (fetch's default 300 s header timeout is
// too short for a large upload on a slow machine, and it cannot be changed without undici).

function multipartUpload(spec, file, models, timeoutMs) {
  const boundary = `----strata-load-${Math.random().toString(16).slice(2)}`;
  const parts = [];
  const text = (s) => Buffer.from(s, 'utf8');
  parts.push(text(`--${boundary}\r\nContent-Disposition: form-data; name="spec"\r\nContent-Type: application/json\r\n\r\n${JSON.stringify(spec)}\r\n`));
  parts.push(text(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${file.name}"\r\nContent-Type: text/csv\r\n\r\n`));
  parts.push(file.content ?? { path: file.path, size: fs.statSync(file.path).size });
  parts.push(text('\r\n'));
  for (const m of models) {
    parts.push(text(`--${boundary}\r\nContent-Disposition: form-data; name="model"; filename="${m.name}"\r\nContent-Type: application/onnx\r\n\r\n`));
    parts.push(fs.readFileSync(m.file));
    parts.push(text('\r\n'));
  }
  parts.push(text(`--${boundary}--\r\n`));
  const length = parts.reduce((n, p) => n + (Buffer.isBuffer(p) ? p.length : p.size), 0);
  const url = new URL(`${opt.base}/api/v1/runs`);
  return new Promise((resolve) => {
    let settled = false;
    const done = (v) => { if (!settled) { settled = true; clearTimeout(timer); resolve(v); } };
    const req = http.request(
      { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent: false, headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': length } },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => done({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8'), retryAfter: res.headers['retry-after'] ?? null }));
        res.on('error', (e) => done({ status: 0, error: e.message }));
      },
    );
    const timer = setTimeout(() => { req.destroy(new Error(`timeout after ${timeoutMs / 1000} s`)); }, timeoutMs);
    req.on('error', (e) => done({ status: 0, error: e.message }));
    (async () => {
      for (const p of parts) {
        if (Buffer.isBuffer(p)) {
          if (!req.write(p)) await new Promise((r) => req.once('drain', r));
        } else {
          for await (const chunk of fs.createReadStream(p.path, { highWaterMark: 1 << 20 })) {
            if (req.destroyed) return;
            if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
          }
        }
      }
      req.end();
    })().catch((e) => { req.destroy(e); });
  });
}

// ---------------------------------------------------------------------------------------------
// Measurements

const stats = new Map(); // class -> { lat: number[], status: Map, errors, net, errorSamples }
const completed = new Map(); // "METHOD URL" -> true once an identical request answered 2xx
const slow = []; // the slowest requests: { ms, label, url, status }
const errorLog = []; // the first errors, in full
let inFlight = 0;
let loadStart = 0;

function bucket(label) {
  let s = stats.get(label);
  if (!s) stats.set(label, (s = { lat: [], status: new Map(), nonOk: 0, net: 0 }));
  return s;
}

/** What an error answer says, short: a JSON body as it is, an HTML page as its title and text. */
function errorText(body) {
  const b = body || '';
  if (!/^\s*<(!doctype|html)/i.test(b)) return b.slice(0, 300).replace(/\s+/g, ' ');
  const title = (b.match(/<title[^>]*>([\s\S]*?)<\/title>/i) || [])[1] || '';
  const main = (b.match(/<body[^>]*>([\s\S]*)/i) || [])[1] || b;
  const text = main.replace(/<(script|style)[\s\S]*?<\/\1>/gi, ' ').replace(/<[^>]+>/g, ' ').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&').replace(/\s+/g, ' ').trim();
  return `[HTML] ${title.trim()} — ${text}`.slice(0, 300);
}

function record(label, ms, status, url, error, body, method = 'GET', retryAfter = null) {
  const t1 = Date.now();
  trace({ t0: Math.round(t1 - ms), t1, label, method, url, status: status || 0, ms: Math.round(ms), ...(retryAfter != null ? { retryAfter } : {}), ...(error ? { error } : (status < 200 || status > 299) && body ? { error: errorText(body) } : {}) });
  const s = bucket(label);
  s.lat.push(ms);
  const key = status ? String(status) : 'net';
  s.status.set(key, (s.status.get(key) || 0) + 1);
  if (!status) s.net++;
  else if (status < 200 || status > 299) s.nonOk++;
  if (!status || status < 200 || status > 299) {
    const text = error || errorText(body);
    if (errorLog.length < 200) errorLog.push({ t: ((performance.now() - loadStart) / 1000).toFixed(1), label, status: status || 'network', url, text });
  }
  slow.push({ ms, label, url, status: status || 'net' });
  if (slow.length > 400) { slow.sort((a, b) => b.ms - a.ms); slow.length = 40; }
}

/**
 * One timed request. `cacheable`: label it `label (first)` or `label (cached)` by `cacheKey` (the
 * URL unless given: a page's own keys that change no computation are left out of it). The body is
 * read in full (the time includes it).
 */
async function timed(label, method, url, { body, headers, cacheable = false, cacheKey = url } = {}) {
  const key = `${method} ${cacheKey}`;
  const full = cacheable ? `${label} (${completed.has(key) ? 'cached' : 'first'})` : label;
  const t0 = performance.now();
  inFlight++;
  try {
    const res = await fetch(opt.base + url, { method, body, headers, signal: AbortSignal.timeout(opt.timeout * 1000) });
    const text = await res.text();
    const ms = performance.now() - t0;
    record(full, ms, res.status, url, null, text, method, res.ok ? null : res.headers.get('retry-after'));
    if (res.ok && cacheable) completed.set(key, true);
    return { status: res.status, text };
  } catch (e) {
    const ms = performance.now() - t0;
    const msg = e.name === 'TimeoutError' ? `timeout after ${opt.timeout} s` : `${e.name}: ${e.message}${e.cause ? ` (${e.cause.code || e.cause.message})` : ''}`;
    record(full, ms, 0, url, msg, null, method);
    return { status: 0, text: '' };
  } finally {
    inFlight--;
  }
}

// The server's memory and CPU, from /proc.
const mem = { hwmKb: 0, rssPeakKb: 0, rssPeakLoadKb: 0, hwmAfterUploadKb: 0, samples: 0, cpuTicks0: null, cpuTicks1: null, gone: false };
function readProc() {
  if (!opt.pid) return null;
  try {
    const st = fs.readFileSync(`/proc/${opt.pid}/status`, 'utf8');
    const kb = (k) => Number((st.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm')) || [])[1] || 0);
    const stat = fs.readFileSync(`/proc/${opt.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { hwm: kb('VmHWM'), rss: kb('VmRSS'), threads: kb('Threads') || Number((st.match(/^Threads:\s+(\d+)/m) || [])[1] || 0), ticks: Number(f[11]) + Number(f[12]) };
  } catch {
    mem.gone = true;
    return null;
  }
}
function sampleMem(inLoad) {
  const p = readProc();
  if (!p) return null;
  mem.samples++;
  mem.hwmKb = Math.max(mem.hwmKb, p.hwm);
  mem.rssPeakKb = Math.max(mem.rssPeakKb, p.rss);
  if (inLoad) mem.rssPeakLoadKb = Math.max(mem.rssPeakLoadKb, p.rss);
  return p;
}
const CLK_TCK = 100; // Linux USER_HZ
/** The machine's busy CPU time in ticks (all processes), from /proc/stat. */
function machineTicks() {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, idle, iowait, irq, softirq, steal] = f;
    return user + nice + system + irq + softirq + (steal || 0);
  } catch {
    return null;
  }
}
const mib = (kb) => (kb / 1024).toFixed(0);

// ---------------------------------------------------------------------------------------------
// What a person does

const pick = (r, xs) => xs[Math.floor(r() * xs.length)];
const enc = encodeURIComponent;
const MODEL_NAMES = SCORES;
// Slicing specs of the metrics analyses: mostly the two the brief names, sometimes others.
const SLICE_SETS = [['sex', 'race'], ['sex', 'race'], ['sex', 'race'], ['sex'], ['race'], ['sex,race'], ['age:q5'], ['education'], ['sex', 'age:[18,30,45,65]']];
const FAIR_FEATURES = ['race', 'sex', 'race', 'sex', 'sex,race'];
const THRESHOLDS = [null, null, null, '0.3,0.5,0.7'];
const sliceQuery = (set) => set.map((s) => `slice=${enc(s)}`).join('&');

function metricsUrl(run, r, bootstrap) {
  const q = [`model=${pick(r, MODEL_NAMES)}`, sliceQuery(pick(r, SLICE_SETS))];
  const t = pick(r, THRESHOLDS);
  if (t) q.push(`thresholds=${enc(t)}`);
  if (!bootstrap) q.push('bootstrap=0');
  return `/api/v1/runs/${run}/metrics?${q.join('&')}`;
}

function fairnessQuery(r) {
  const q = [`model=${pick(r, MODEL_NAMES)}`, `feature=${enc(pick(r, FAIR_FEATURES))}`];
  return q.join('&');
}

/** The actions, with their weights (relative frequencies). */
function actions(ctx) {
  const { run, rows, r, prefix } = ctx;
  const exampleId = () => rowId(prefix, Math.floor(r() * rows));
  return [
    [6, 'page /', () => timed('page /', 'GET', '/')],
    [10, 'page /runs/{id}', () => timed('page /runs/{id}', 'GET', `/runs/${run}`)],
    [12, 'page /runs/{id}/slices', () => {
      // `metric` only picks the chart's metric: the same analysis for the server.
      const q = `/runs/${run}/slices?model=${pick(r, MODEL_NAMES)}&${sliceQuery(pick(r, SLICE_SETS))}`;
      return timed('page /runs/{id}/slices', 'GET', `${q}&metric=${pick(r, ['fpr', 'tpr', 'accuracy', 'auc_roc'])}`, { cacheable: true, cacheKey: q });
    }],
    [8, 'page /runs/{id}/fairness', () => timed('page /runs/{id}/fairness', 'GET', `/runs/${run}/fairness?${fairnessQuery(r)}`, { cacheable: true })],
    [4, 'page /runs/{id}/whatif', () => timed('page /runs/{id}/whatif', 'GET', `/runs/${run}/whatif${r() < 0.5 ? '' : `?filter=${pick(r, ['incorrect', 'positive'])}`}`, { cacheable: true })],
    [5, 'page /runs/{id}/whatif?example', () => timed('page /runs/{id}/whatif?example', 'GET', `/runs/${run}/whatif?example=${exampleId()}&set.age=${20 + Math.floor(r() * 50)}&set.hours_per_week=${pick(r, [20, 40, 60])}`)],
    [15, 'api metrics bootstrap=0', () => timed('api metrics bootstrap=0', 'GET', metricsUrl(run, r, false), { cacheable: true })],
    [10, 'api metrics bootstrap=200', () => timed('api metrics bootstrap=200', 'GET', metricsUrl(run, r, true), { cacheable: true })],
    [10, 'api fairness', () => timed('api fairness', 'GET', `/api/v1/runs/${run}/fairness?${fairnessQuery(r)}`, { cacheable: true })],
    [10, 'api predict', () => {
      const n = pick(r, [1, 1, 10, 100]);
      const examples = Array.from({ length: n }, () => exampleOf(Math.floor(r() * parsedRows.length)));
      return timed(`api predict (${n} example${n > 1 ? 's' : ''})`, 'POST', `/api/v1/runs/${run}/predict`, { body: JSON.stringify({ examples }), headers: { 'content-type': 'application/json' } });
    }],
    [1, 'upload small run', () => uploadSmall(ctx)],
  ];
}

let smallUploads = 0;
async function uploadSmall(ctx) {
  const n = ++smallUploads;
  const content = smallCsv(opt.smallRows, `s${n}`, ctx.r);
  const spec = { name: `load small ${n}`, label: LABEL, scores: SCORES, id: ID, timestamp: TIMESTAMP, tags: ['load'] };
  const t0 = performance.now();
  inFlight++;
  const res = await multipartUpload(spec, { name: `small-${n}.csv`, content }, MODELS, opt.timeout * 1000);
  inFlight--;
  record(`upload ${opt.smallRows} rows`, performance.now() - t0, res.status, '/api/v1/runs', res.error, res.body, 'POST', res.retryAfter);
  if (res.status === 201) {
    // A person looks at what they uploaded.
    const id = JSON.parse(res.body).id;
    await timed('page /runs/{id} (small run)', 'GET', `/runs/${id}`);
    await timed('api metrics (small run)', 'GET', `/api/v1/runs/${id}/metrics?slice=sex&slice=race`);
  }
}

async function user(ctx, deadline) {
  const list = actions(ctx).filter(([, name]) => !opt.exclude || !opt.exclude.test(name));
  if (!list.length) return;
  const total = list.reduce((n, [w]) => n + w, 0);
  // Users start spread over the first think time.
  await sleep(ctx.r() * opt.thinkMax);
  while (performance.now() < deadline) {
    let x = ctx.r() * total;
    const [, , act] = list.find(([w]) => (x -= w) < 0) || list[list.length - 1];
    await act();
    await sleep(opt.thinkMin + ctx.r() * (opt.thinkMax - opt.thinkMin));
  }
}

// ---------------------------------------------------------------------------------------------
// Report

function pct(sorted, p) {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}
const fmt = (x) => (Number.isFinite(x) ? (x >= 100 ? x.toFixed(0) : x.toFixed(1)) : '–');

function table(rows) {
  const out = ['| route | count | p50 | p95 | p99 | max | errors (non-2xx / network) | statuses |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |'];
  for (const [label, s] of rows) {
    const l = [...s.lat].sort((a, b) => a - b);
    const st = [...s.status.entries()].sort().map(([k, v]) => `${k}×${v}`).join(' ');
    out.push(`| ${label} | ${l.length} | ${fmt(pct(l, 50))} | ${fmt(pct(l, 95))} | ${fmt(pct(l, 99))} | ${fmt(l[l.length - 1])} | ${s.nonOk} / ${s.net} | ${st} |`);
  }
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Main

async function main() {
  const started = new Date();
  const r = rng(opt.seed);
  const prefix = `${Date.now().toString(36)}`;
  const ctxBase = { rows: opt.rows, prefix };

  // Health first.
  const h = await fetch(`${opt.base}/healthz`, { signal: AbortSignal.timeout(10_000) }).catch((e) => ({ ok: false, status: e.message }));
  if (!h.ok) { console.error(`load.mjs: ${opt.base}/healthz did not answer 200 (${h.status})`); process.exit(2); }

  const sampler = setInterval(() => sampleMem(loadStart > 0), 500);
  sampleMem(false);
  const before = readProc();

  // 1. The big run.
  const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-load-'));
  const csvPath = path.join(tmpDir, `load-${opt.rows}.csv`);
  let t0 = performance.now();
  const size = writeBigCsv(csvPath, opt.rows, prefix);
  log(`generated ${opt.rows} rows (${(size / 1e6).toFixed(1)} MB) in ${((performance.now() - t0) / 1000).toFixed(1)} s; uploading with ${MODELS.map((m) => m.name).join(', ')}`);
  const spec = { name: `load ${opt.rows} rows`, label: LABEL, scores: SCORES, id: ID, timestamp: TIMESTAMP, tags: ['load'] };
  t0 = performance.now();
  const cpuBeforeUpload = readProc()?.ticks;
  const up = await multipartUpload(spec, { name: path.basename(csvPath), path: csvPath }, MODELS, opt.uploadTimeout * 1000);
  const uploadS = (performance.now() - t0) / 1000;
  const afterUpload = sampleMem(false);
  fs.rmSync(tmpDir, { recursive: true, force: true });
  record(`upload ${opt.rows} rows (set-up)`, uploadS * 1000, up.status, '/api/v1/runs', up.error, up.body, 'POST');
  if (up.status !== 201) {
    console.error(`load.mjs: the upload of ${opt.rows} rows failed after ${uploadS.toFixed(1)} s: ${up.status || 'network'} ${up.error || up.body}`);
    clearInterval(sampler);
    process.exit(1);
  }
  const run = JSON.parse(up.body).id;
  mem.hwmAfterUploadKb = afterUpload?.hwm || 0;
  const uploadCpuS = afterUpload && cpuBeforeUpload != null ? (afterUpload.ticks - cpuBeforeUpload) / CLK_TCK : null;
  log(`run ${run}: ${opt.rows} rows uploaded in ${uploadS.toFixed(1)} s (${(size / 1e6 / uploadS).toFixed(1)} MB/s${uploadCpuS != null ? `, server CPU ${uploadCpuS.toFixed(1)} s` : ''}${afterUpload ? `, server VmHWM ${mib(afterUpload.hwm)} MiB, VmRSS ${mib(afterUpload.rss)} MiB` : ''})`);
  // Does what-if work on it (the models matched to their score columns)?
  const probe = await timed('api run detail (set-up)', 'GET', `/api/v1/runs/${run}`);
  if (probe.status === 200) {
    const d = JSON.parse(probe.text);
    log(`run detail: task ${d.task}, ${d.rows} rows, models ${JSON.stringify(d.models)}, attachments ${JSON.stringify((d.attachments || []).map((a) => `${a.name}→${a.model ?? '(by name)'}`))}`);
  }

  // 2. The users.
  const deadline = performance.now() + opt.duration * 1000;
  loadStart = performance.now();
  trace({ event: 'load-start', t: Date.now(), run });
  const cpu0 = readProc()?.ticks;
  const machine0 = machineTicks();
  const self0 = process.cpuUsage();
  log(`${opt.users} users for ${opt.duration} s (think ${opt.thinkMin}–${opt.thinkMax} ms, timeout ${opt.timeout} s per request)`);
  const progress = setInterval(() => {
    const n = [...stats.values()].reduce((a, s) => a + s.lat.length, 0);
    const p = readProc();
    log(`${((performance.now() - loadStart) / 1000).toFixed(0)} s: ${n} requests done, ${inFlight} in flight${p ? `, server RSS ${mib(p.rss)} MiB, threads ${p.threads}` : ''}`);
  }, 10_000);
  const users = Array.from({ length: opt.users }, (_, i) => user({ ...ctxBase, run, r: rng(opt.seed * 1000 + i + 1) }, deadline));
  await Promise.all(users);
  const loadS = (performance.now() - loadStart) / 1000;
  trace({ event: 'load-end', t: Date.now() });
  clearInterval(progress);
  clearInterval(sampler);
  const end = sampleMem(true);
  const cpuS = end && cpu0 != null ? (end.ticks - cpu0) / CLK_TCK : null;
  const machineS = machine0 != null ? (machineTicks() - machine0) / CLK_TCK : null;
  const selfUse = process.cpuUsage(self0);
  const selfS = (selfUse.user + selfUse.system) / 1e6;

  // 3. Report.
  const loadRows = [...stats.entries()].filter(([k]) => !k.endsWith('(set-up)')).sort(([a], [b]) => a.localeCompare(b));
  const setupRows = [...stats.entries()].filter(([k]) => k.endsWith('(set-up)'));
  const total = loadRows.reduce((n, [, s]) => n + s.lat.length, 0);
  const errors = [...stats.values()].reduce((n, s) => n + s.nonOk + s.net, 0);
  // Answers with an allowed status (--allow-status): errors in the table, not failures.
  const allowed = [...stats.values()].reduce((n, s) => n + [...s.status.entries()].filter(([k]) => opt.allowStatus.has(Number(k))).reduce((m, [, v]) => m + v, 0), 0);
  const cached = loadRows.filter(([k]) => k.endsWith('(cached)') && !k.startsWith('page'));
  const cachedLat = cached.flatMap(([, s]) => s.lat).sort((a, b) => a - b);

  const lines = [];
  lines.push(`## Strata load test — ${started.toISOString()}`);
  lines.push('');
  lines.push(`Server ${opt.base}${opt.pid ? ` (pid ${opt.pid})` : ''}; ${opt.users} users, ${opt.duration} s, think ${opt.thinkMin}–${opt.thinkMax} ms${opt.exclude ? `, actions matching /${opt.exclude.source}/ left out` : ''}; run of ${opt.rows.toLocaleString('en')} rows (${(size / 1e6).toFixed(1)} MB CSV + 2 ONNX models), id ${run}.`);
  lines.push('');
  lines.push(`Upload of ${opt.rows.toLocaleString('en')} rows: **${uploadS.toFixed(1)} s** (${(size / 1e6 / uploadS).toFixed(1)} MB/s${uploadCpuS != null ? `; server CPU ${uploadCpuS.toFixed(1)} s` : ''}).`);
  lines.push('');
  lines.push(table([...setupRows, ...loadRows]));
  lines.push('');
  lines.push(`Requests under load: ${total} in ${loadS.toFixed(1)} s = **${(total / loadS).toFixed(1)} req/s**; errors: **${errors}**${opt.allowStatus.size ? ` (${allowed} of them with an allowed status ${[...opt.allowStatus].join(', ')}; failures: **${errors - allowed}**)` : ''}.`);
  if (cachedLat.length) lines.push(`Cached analyses (API, identical request answered before): ${cachedLat.length} requests, p50 ${fmt(pct(cachedLat, 50))} ms, p95 ${fmt(pct(cachedLat, 95))} ms, **p99 ${fmt(pct(cachedLat, 99))} ms** (target ≤ 500 ms: ${pct(cachedLat, 99) <= 500 ? 'met' : 'NOT met'}).`);
  if (opt.pid) {
    if (mem.samples) {
      lines.push(`Server memory: VmHWM (peak RSS since start) ${mib(mem.hwmKb)} MiB; after the upload ${mib(mem.hwmAfterUploadKb)} MiB; peak VmRSS sampled under load ${mib(mem.rssPeakLoadKb)} MiB; at start ${before ? mib(before.rss) : '?'} MiB (${mem.samples} samples every 0.5 s).`);
      if (cpuS != null) lines.push(`Server CPU under load: ${cpuS.toFixed(1)} s in ${loadS.toFixed(1)} s = ${(cpuS / loadS).toFixed(2)} cores (of ${os.cpus().length}).`);
    }
    if (mem.gone) lines.push(`**The server process ${opt.pid} disappeared during the run.**`);
  }
  if (machineS != null) {
    const other = machineS - (cpuS ?? 0) - selfS;
    lines.push(`Machine CPU under load: ${(machineS / loadS).toFixed(2)} of ${os.cpus().length} cores busy${cpuS != null ? ` (server ${(cpuS / loadS).toFixed(2)}` : ' ('}, this load generator ${(selfS / loadS).toFixed(2)}, other processes ${(Math.max(0, other) / loadS).toFixed(2)}).`);
  }
  slow.sort((a, b) => b.ms - a.ms);
  lines.push('');
  lines.push('Slowest requests:');
  lines.push('');
  for (const s of slow.slice(0, 10)) lines.push(`- ${fmt(s.ms)} ms ${s.status} ${s.label}: \`${s.url}\``);
  if (errorLog.length) {
    lines.push('');
    lines.push(`Errors (first ${Math.min(errorLog.length, 30)} of ${errors}):`);
    lines.push('');
    for (const e of errorLog.slice(0, 30)) lines.push(`- t=${e.t} s ${e.status} ${e.label}: \`${e.url}\` — ${e.text}`);
  }
  console.log(lines.join('\n'));
  if (opt.json) {
    const summary = Object.fromEntries([...stats.entries()].map(([k, s]) => { const l = [...s.lat].sort((a, b) => a - b); return [k, { count: l.length, p50: pct(l, 50), p95: pct(l, 95), p99: pct(l, 99), max: l[l.length - 1], nonOk: s.nonOk, net: s.net, status: Object.fromEntries(s.status) }]; }));
    fs.writeFileSync(opt.json, JSON.stringify({ opt: { ...opt, allowStatus: [...opt.allowStatus] }, run, uploadS, loadS, total, errors, allowed, rate: total / loadS, mem, cpuS, machineS, selfS, routes: summary, errorLog, slow: slow.slice(0, 40) }, null, 2));
  }
  process.exit(errors - allowed > 0 ? 1 : 0);
}

main().catch((e) => { console.error(e); process.exit(2); });
