// The web UI in headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core: called by
// tests/e2e/test_ui.sh with the path of a JSON file describing the registry's content (see there).
// Prints "ok NAME" / "FAIL NAME" lines; exits 1 on any failure.  Waits are on elements and states
// (the app sets main[data-ready] when a view has loaded), never on time.
'use strict';
const fs = require('fs');
const { chromium } = require('playwright-core');

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const WAIT = 60000; // generous: the machine may be busy; a wait only ends early, on success
let failed = 0;
function check(name, cond, detail) {
  if (cond) console.log('ok   ' + name);
  else {
    failed++;
    console.log('FAIL ' + name + (detail !== undefined ? '\n     ' + String(detail) : ''));
  }
}
function eq(name, want, got) {
  check(name, JSON.stringify(want) === JSON.stringify(got), 'expected ' + JSON.stringify(want) + ', got ' + JSON.stringify(got));
}

async function view(page, name) {
  await page.waitForSelector(`#main[data-view="${name}"][data-ready]`, { timeout: WAIT });
}
// The old view's data-ready is removed first, so that a wait for a view of the same kind cannot end on it.
async function unready(page) {
  await page.evaluate(() => { delete document.getElementById('main').dataset.ready; });
}
async function go(page, hash, name) {
  await unready(page);
  await page.evaluate((h) => { location.hash = h; }, hash);
  await view(page, name);
}
async function clickTo(page, sel, name) {
  await unready(page);
  await page.click(sel);
  await view(page, name);
}
async function texts(page, sel) {
  return page.$$eval(sel, (els) => els.map((e) => e.textContent.trim()));
}
async function login(page, user, pass) {
  await page.waitForSelector('#login-form', { timeout: WAIT });
  await page.fill('#user', user);
  await page.fill('#pass', pass);
  await page.click('#login');
}

async function main() {
  // a fresh profile directory (--user-data-dir) per run: playwright takes it as launchPersistentContext's argument
  const ctx = await chromium.launchPersistentContext(cfg.profile, {
    executablePath: cfg.chromium,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
    timeout: WAIT,
  });
  const problems = [];
  try {
    const page = await ctx.newPage();
    page.setDefaultTimeout(WAIT);
    page.on('pageerror', (e) => problems.push('page error: ' + e.message));
    page.on('console', (m) => { if (m.type() === 'error') problems.push('console: ' + m.text()); });
    page.on('dialog', (d) => { problems.push('unexpected JS dialog: ' + d.message()); d.dismiss(); });

    // ---- a browser at / lands on the UI; the login screen
    await page.goto(cfg.base + '/');
    check('GET / in a browser ends at /ui/', new URL(page.url()).pathname === '/ui/', page.url());
    await login(page, cfg.admin.user, 'not-the-password');
    await page.waitForSelector('#login-error:not([hidden])');
    check('a wrong password is refused', /wrong name or password/i.test(await page.textContent('#login-error')));
    eq('no cookie is set', [], (await ctx.cookies()).map((c) => c.name));

    // ---- admin: catalog
    await login(page, cfg.admin.user, cfg.admin.pass);
    await view(page, 'repos');
    const repos = await texts(page, '#repos a.repo');
    for (const r of [cfg.repo, cfg.index.repo, cfg.private.repo]) check('admin sees ' + r, repos.includes(r), repos);
    eq('no cookie after login (the token stays in memory)', [], (await ctx.cookies()).map((c) => c.name));

    // pagination (n and last, following Link), with a page size of 2 given in the address
    await go(page, '#/repos?page=2', 'repos');
    const first = await texts(page, '#repos a.repo');
    eq('catalog page 1 of 2', 2, first.length);
    await clickTo(page, 'a.next', 'repos');
    const second = await texts(page, '#repos a.repo');
    eq('catalog pages 1 and 2 are the whole catalog', repos, first.concat(second));
    check('page 2 links back to page 1 and has no next page', (await page.$$('a.first')).length === 1 &&
      (await page.$$('a.next')).length === 0);
    await go(page, '#/repo?page=1&n=' + encodeURIComponent(cfg.repo), 'repo');
    const t1 = await texts(page, '#tags a.tag-link');
    await clickTo(page, 'a.next', 'repo');
    eq('tags one per page', [cfg.keep, cfg.del], t1.concat(await texts(page, '#tags a.tag-link')));
    await go(page, '#/', 'repos');

    // ---- tags of the image's repository (clicking through)
    await clickTo(page, `#repos a.repo >> text="${cfg.repo}"`, 'repo');
    eq('tags of ' + cfg.repo, [cfg.keep, cfg.del], (await texts(page, '#tags a.tag-link')).sort());
    eq('digest column', [cfg.digest, cfg.digest], await texts(page, '#tags td.digest'));

    // ---- the manifest: digest, layers, sizes, total, referrer
    await clickTo(page, `#tags a.tag-link >> text="${cfg.keep}"`, 'manifest');
    eq('manifest digest', cfg.digest, (await page.textContent('#m-digest')).trim());
    eq('manifest media type', 'application/vnd.oci.image.manifest.v1+json', (await page.textContent('#m-type')).trim());
    const layers = await page.$$eval('#layers tr.layer', (rows) =>
      rows.map((r) => ({ digest: r.dataset.digest, size: Number(r.dataset.bytes), text: r.textContent })));
    eq('layer digests and sizes', cfg.layers, layers.map((l) => ({ digest: l.digest, size: l.size })));
    for (const l of cfg.layers)
      check('layer ' + l.digest.slice(7, 19) + ' shows its size in bytes',
        layers.some((x) => x.text.includes(l.digest) && x.text.includes('(' + l.size + ' bytes)')));
    const total = await page.$eval('#total-size', (e) => ({ bytes: Number(e.dataset.bytes), text: e.textContent }));
    eq('total size', cfg.total, total.bytes);
    check('total size shown in bytes', total.text.includes('(' + cfg.total + ' bytes)'), total.text);
    const refRows = await page.$$eval('#referrers tr.referrer', (rows) => rows.map((r) => r.textContent));
    check('the referrer is listed', refRows.length === 1 && refRows[0].includes(cfg.referrer) &&
      refRows[0].includes('application/vnd.berth.test.sig'), refRows);
    check('its markup annotation is shown as text', refRows.length === 1 && refRows[0].includes(cfg.xss), refRows);
    eq('the markup did not become elements', 0, await page.$$eval('#referrers img, #referrers b', (e) => e.length));
    await page.screenshot({ path: cfg.screenshot, fullPage: true });
    check('screenshot written', fs.existsSync(cfg.screenshot));

    // the referrer's own page: its subject links back
    await clickTo(page, '#referrers tr.referrer a', 'manifest');
    eq('referrer page digest', cfg.referrer, (await page.textContent('#m-digest')).trim());
    check('referrer annotations shown as text', (await page.textContent('#main')).includes(cfg.xss));
    check('no script ran from an annotation', (await page.evaluate(() => document.body.dataset.xss)) === undefined);

    // ---- the index: platforms, then one platform's image
    await go(page, '#/manifest?n=' + encodeURIComponent(cfg.index.repo) + '&r=' + cfg.index.tag, 'manifest');
    eq('index digest', cfg.index.digest, (await page.textContent('#m-digest')).trim());
    eq('index media type', 'application/vnd.oci.image.index.v1+json', (await page.textContent('#m-type')).trim());
    const plats = await page.$$eval('#platforms tr.platform', (rows) =>
      rows.map((r) => ({ digest: r.querySelector('a.child').textContent.trim(), platform: r.cells[0].textContent.trim() })));
    eq('platforms of the index', cfg.index.platforms, plats);
    const arm = cfg.index.platforms[1];
    await clickTo(page, `#platforms a.child >> text="${arm.digest}"`, 'manifest');
    eq('click-through to ' + arm.platform, arm.digest, (await page.textContent('#m-digest')).trim());
    check('the platform image shows its layers', (await page.$$('#layers tr.layer')).length > 0);

    // ---- delete a tag: cancel first, then confirm
    await go(page, '#/manifest?n=' + encodeURIComponent(cfg.repo) + '&r=' + cfg.del, 'manifest');
    await page.click('#delete-tag');
    await page.waitForSelector('#confirm[open]');
    check('the dialog names the tag', (await page.textContent('#confirm-text')).includes('tag ' + cfg.del));
    await page.click('#confirm-cancel');
    await page.waitForSelector('#confirm:not([open])', { state: 'attached' });
    check('cancel keeps the page', await page.$eval('#main', (m) => m.dataset.view) === 'manifest');
    await page.click('#delete-tag');
    await page.waitForSelector('#confirm[open]');
    await page.click('#confirm-ok');
    await page.waitForSelector('#main[data-view="repo"][data-ready] #notice');
    check('deletion is confirmed', (await page.textContent('#notice')).includes('Deleted tag ' + cfg.del));
    eq('tags after the delete', [cfg.keep], await texts(page, '#tags a.tag-link'));

    // ---- the restricted user
    await page.click('#logout');
    await login(page, cfg.viewer.user, cfg.viewer.pass);
    await view(page, 'repos');
    const seen = await texts(page, '#repos a.repo');
    eq('the viewer sees only ' + cfg.repo, [cfg.repo], seen);
    check('the private repository is not named anywhere', !(await page.textContent('body')).includes(cfg.private.repo));
    await go(page, '#/repo?n=' + encodeURIComponent(cfg.private.repo), 'repo');
    check('direct navigation to the private repository: access error',
      /access denied/i.test((await page.textContent('#error')) || ''), await page.textContent('#main'));
    eq('no tags of it shown', 0, (await page.$$('#tags tr.tag')).length);
    await go(page, '#/manifest?n=' + encodeURIComponent(cfg.private.repo) + '&r=' + cfg.private.tag, 'manifest');
    check('direct navigation to its manifest: access error', /access denied/i.test((await page.textContent('#error')) || ''));
    check('nothing of it is shown', (await page.$$('#m-digest, #layers')).length === 0);
    // a fresh page load of the same address asks for the login first, then shows the same error
    await page.goto('about:blank');
    await page.goto(cfg.base + '/ui/#/repo?n=' + encodeURIComponent(cfg.private.repo));
    await login(page, cfg.viewer.user, cfg.viewer.pass);
    await view(page, 'repo');
    check('after a reload and login: access error', /access denied/i.test((await page.textContent('#error')) || ''));
    // the viewer can read its repository but not delete in it
    await go(page, '#/manifest?n=' + encodeURIComponent(cfg.repo) + '&r=' + cfg.keep, 'manifest');
    eq('the viewer reads ' + cfg.repo, cfg.digest, (await page.textContent('#m-digest')).trim());
    await page.click('#delete-tag');
    await page.waitForSelector('#confirm[open]');
    await page.click('#confirm-ok');
    await page.waitForSelector('#main #error');
    check('the viewer may not delete', /may not delete/i.test(await page.textContent('#error')));

    // ---- a robot token (name and secret) logs in the same way and sees what its scope allows
    await page.click('#logout');
    await login(page, cfg.robot.user, cfg.robot.pass);
    await view(page, 'repos');
    eq('the robot token sees team/*', [cfg.repo, cfg.index.repo], (await texts(page, '#repos a.repo')).sort());
    eq('shown as logged in', cfg.robot.user, (await page.textContent('#who')).trim());
  } finally {
    await ctx.close();
  }
  // the page's CSP blocks nothing the app needs, and it threw nothing
  const real = problems.filter((p) => !/Failed to load resource: the server responded with a status of (401|403|404)/.test(p));
  eq('no page errors or CSP violations', [], real);
}

main().then(() => {
  console.log(failed ? failed + ' browser checks failed' : 'all browser checks passed');
  process.exit(failed ? 1 : 0);
}, (e) => {
  console.log('FAIL browser flow aborted: ' + (e && e.stack ? e.stack : e));
  process.exit(1);
});
