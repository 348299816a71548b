// The dashboard in headless Chromium, as an analyst then an admin would use it, against a real
// `vigil demo`: paste a token, watch alerts arrive live, open one, open a case from it, close
// it as fraud, see it closed and, as admin, its audit entries. Screenshots go to ARTIFACTS.
//
//   node dashboard_test.mjs VIGIL ARTIFACTS_DIR DEMO_DIR
//
// DEMO_DIR is reused across runs so the demo trains its model once (DEMO_DIR/model.json).
import {spawn} from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const {chromium} = await import(path.join(here, 'node_modules/playwright-core/index.mjs'));

const [vigil, artifacts, demoDir] = process.argv.slice(2);
if (!vigil || !artifacts || !demoDir) {
  console.error('usage: node dashboard_test.mjs VIGIL ARTIFACTS_DIR DEMO_DIR');
  process.exit(2);
}
fs.mkdirSync(artifacts, {recursive: true});
const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;
const log = (msg) => console.log(`[${elapsed()}] ${msg}`);

const ANALYST = 'analyst-browser-test-0123456789';
const ADMIN = 'admin-browser-test-0123456789';

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const {port} = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Starts the demo and resolves once it announces the dashboard, with the stderr seen so far.
function startDemo(port) {
  const args = ['demo', '--out', demoDir, '--listen', `127.0.0.1:${port}`, '--events', '3000000',
    '--speed', '20000x', '--train-events', '20000', '--quiet'];
  log(`starting ${vigil} ${args.join(' ')}`);
  const proc = spawn(vigil, args, {
    env: {...process.env, VIGIL_API_TOKENS: `ann:analyst:${ANALYST},ops:admin:${ADMIN}`},
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  const ready = new Promise((resolve, reject) => {
    proc.stderr.on('data', (d) => {
      err += d;
      const m = /dashboard at (http:\/\/\S+)/.exec(err);
      if (m) resolve(m[1]);
    });
    proc.once('exit', (code) => reject(new Error(`vigil demo exited (${code}) early:\n${err}`)));
  });
  return {proc, ready, stderr: () => err};
}

function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
}

const shots = [];
async function shot(page, name) {
  const file = path.join(artifacts, `${name}.png`);
  await page.screenshot({path: file, fullPage: true});
  shots.push(file);
}

const port = await freePort();
const demo = startDemo(port);
let browser;
let page;
let failed = null;
const consoleLines = [];
// A hard bound: whatever hangs, the test ends (ctest's TIMEOUT is the last resort).
const deadline = setTimeout(() => {
  console.error(`dashboard test: still running after 80 s; giving up\n${demo.stderr()}`);
  demo.proc.kill('SIGKILL');
  process.exit(1);
}, 80000);

try {
  const base = await demo.ready;
  log(`demo serves the dashboard at ${base}`);
  check(base === `http://127.0.0.1:${port}/`, `announced ${base}`);
  browser = await chromium.launch({executablePath: '/usr/bin/chromium', args: ['--no-sandbox']});
  page = await browser.newPage({viewport: {width: 1280, height: 900}});
  page.setDefaultTimeout(30000);
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => consoleLines.push(`${elapsed()} ${m.type()}: ${m.text()}`));

  // Without a token the API answers 401 and the page says what to do.
  await page.goto(base);
  await page.waitForSelector('#notice:not([hidden])');
  const first = await page.textContent('#notice');
  check(/needs an API token/.test(first), `notice without a token: ${first}`);
  log('no token: the page asks for one');

  // An analyst's token: counters and alerts arrive from the stream.
  await page.fill('#token', ANALYST);
  await page.press('#token', 'Enter');
  await page.waitForSelector('#kpis dd');
  await page.waitForFunction(() => /live/.test(document.getElementById('conn').textContent));
  await page.waitForFunction(() => Number(document.getElementById('queue-meta').dataset.live) > 0);
  await page.waitForSelector('#queue tbody tr.new');
  // Pointing at the queue holds new rows back (counted on a button); leaving it shows them.
  await page.hover('#queue tbody tr:last-child');
  await page.waitForSelector('#show-new', {state: 'visible'});
  await page.hover('#queue-h');
  await page.waitForSelector('#show-new', {state: 'hidden'});
  log(`alerts arrive live: ${await page.textContent('#queue-meta')}`);
  // The rule chart redraws from /api/rules: wait for hits counted this run.
  await page.waitForFunction(() => [...document.querySelectorAll('#rule-svg rect')]
      .some((r) => Number(r.dataset.hits) > 1));
  check(await page.isHidden('#notice'), `a notice is shown: ${await page.textContent('#notice')}`);
  await shot(page, 'overview');

  // Filtering by outcome keeps only those.
  await page.selectOption('#f-outcome', 'block');
  await page.click('#filters button[type=submit]');
  await page.waitForFunction(() => {
    const tags = [...document.querySelectorAll('#queue tbody .outcome')].map((e) => e.textContent);
    return tags.length > 0 && tags.every((t) => t === 'block');
  });
  log('outcome filter: only blocks listed');

  // One alert: reasons and narrative; then a case from it.
  // Pointing at the queue holds new arrivals back, so the row clicked stays put.
  await page.hover('#queue tbody tr:first-child td:nth-child(2)');
  const eventId = (await page.locator('#queue tbody tr td a').first().textContent()).trim();
  await page.click(`#queue a[href="#/alert/${encodeURIComponent(eventId)}"]`);
  await page.waitForSelector('#reasons li');
  const narrative = await page.textContent('#narrative');
  check(narrative.length > 10, `narrative: ${narrative}`);
  log(`alert ${eventId}: ${narrative.slice(0, 80)}...`);
  await shot(page, 'alert');
  await page.click('#open-case button[type=submit]');
  await page.waitForURL(/#\/case\/\d+$/);
  const caseId = page.url().split('/').pop();
  await page.waitForSelector('#case-status');
  check((await page.textContent('#case-status')) === 'open', 'the new case is open');
  check((await page.textContent('main')).includes(eventId), 'the case lists its alert');
  log(`opened case ${caseId}`);

  // Close it as fraud.
  await page.selectOption('#disposition', 'fraud');
  await page.fill('#close-comment', 'customer confirmed the card was stolen');
  await page.click('#close-form button[type=submit]');
  await page.waitForFunction(
      () => document.getElementById('case-status')?.textContent === 'closed');
  check((await page.textContent('#case-disposition')) === 'fraud', 'disposition fraud');
  await page.waitForFunction(
      () => /needs an admin token/.test(document.getElementById('audit')?.textContent));
  log(`case ${caseId} closed as fraud; the analyst is told the audit log needs admin`);
  await shot(page, 'case-closed');

  // As admin: the audit entries of the case.
  await page.fill('#token', ADMIN);
  await page.press('#token', 'Enter');
  await page.waitForSelector('#audit-table');
  const entries = await page.textContent('#audit-table');
  check(entries.includes('case.close') && entries.includes('case.create') &&
      entries.includes('ann'), `audit entries: ${entries}`);
  log('admin sees case.create and case.close by ann in the audit log');
  await shot(page, 'case-audit');

  check(pageErrors.length === 0, `errors in the page: ${pageErrors.join('; ')}`);
} catch (e) {
  failed = e;
  if (page) {  // what the page showed when it failed
    try {
      await shot(page, 'failure');
      for (const id of ['conn', 'notice', 'queue-meta', 'main']) {
        console.error(`#${id}: ${await page.textContent(`#${id}`, {timeout: 1000}).catch(() => '-')}`);
      }
      console.error(`page console:\n${consoleLines.slice(-30).join('\n')}`);
    } catch (e2) {
      console.error(`(no page state: ${e2.message})`);
    }
  }
} finally {
  if (browser) await browser.close();
  demo.proc.kill('SIGINT');
  await new Promise((r) => (demo.proc.exitCode !== null ? r() : demo.proc.once('exit', r)));
  clearTimeout(deadline);
}
for (const s of shots) console.log(`screenshot: ${s}`);
if (failed) {
  console.error(`dashboard test FAILED after ${elapsed()}: ${failed.stack || failed}`);
  console.error(`vigil demo stderr:\n${demo.stderr()}`);
  process.exit(1);
}
log('dashboard test passed');
