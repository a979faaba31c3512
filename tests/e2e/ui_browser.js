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
// the page's rendering of an ECR time (epoch seconds) in UTC
function utc(sec) {
  return new Date(sec * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
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

    // ---- the repository list's image count, size and last push: what `aws ecr describe-images` reports
    const rows = await page.$$eval('#repos tr.repo-row', (trs) => trs.map((r) => ({
      repo: r.dataset.repo, count: Number(r.dataset.images), bytes: Number(r.dataset.bytes), last: Number(r.dataset.pushed || 0),
      countText: r.querySelector('td.images').textContent.trim(), pushedText: r.querySelector('td.pushed').textContent.trim(),
    })));
    for (const [repo, st] of Object.entries(cfg.stats)) {
      const r = rows.find((x) => x.repo === repo);
      eq(repo + ': image count, size and last push as the ECR API reports them', st,
        r && { count: r.count, bytes: r.bytes, last: r.last });
      check(repo + ': the count is shown', r && r.countText === String(st.count), r && r.countText);
      check(repo + ': the last push is shown in UTC', r && r.pushedText === utc(st.last), r && r.pushedText);
    }
    await page.screenshot({ path: cfg.screenshot3, fullPage: true });
    const lifeRow = rows.find((x) => x.repo === cfg.life.repo);
    eq(cfg.life.repo + ': 3 images, size = the sum of their config and layer sizes',
      { count: 3, bytes: cfg.life.images.reduce((a, i) => a + i.bytes, 0) }, lifeRow && { count: lifeRow.count, bytes: lifeRow.bytes });

    // ---- one repository: its images with push and last pull times (l3 was pulled by skopeo, the others never)
    await go(page, '#/repo?n=' + encodeURIComponent(cfg.life.repo), 'repo');
    eq('repository summary: images', '3', await page.$eval('#r-count', (e) => e.dataset.count));
    eq('repository summary: size', String(lifeRow.bytes), await page.$eval('#r-size', (e) => e.dataset.bytes));
    eq('repository summary: last push', String(Math.max(...cfg.life.images.map((i) => i.pushed))),
      await page.$eval('#r-pushed', (e) => e.dataset.epoch));
    const imgs = await page.$$eval('#images tr.image', (trs) => trs.map((r) => ({
      digest: r.dataset.digest, bytes: Number(r.dataset.bytes), pushed: Number(r.dataset.pushed || 0),
      pulled: Number(r.dataset.pulled || 0), pushedText: r.querySelector('td.pushed').textContent.trim(),
      pulledText: r.querySelector('td.pulled').textContent.trim() })));
    const byDigest = (a) => a.slice().sort((x, y) => (x.digest < y.digest ? -1 : 1));
    eq('images: digest, size, push and last pull as the ECR API reports them', byDigest(cfg.life.images),
      byDigest(imgs.map((i) => ({ digest: i.digest, pushed: i.pushed, pulled: i.pulled, bytes: i.bytes }))));
    for (const i of imgs) {
      check('image ' + i.digest.slice(7, 19) + ' shows its push time', i.pushedText === utc(i.pushed), i.pushedText);
      check('image ' + i.digest.slice(7, 19) + ' shows its last pull (' + (i.pulled ? 'pulled' : 'never') + ')',
        i.pulledText === (i.pulled ? utc(i.pulled) : 'never'), i.pulledText);
    }
    eq('exactly one image was pulled', 1, imgs.filter((i) => i.pulled > 0).length);

    // ---- the lifecycle policy: an admin edits, previews (a bad policy, then a good one), saves
    await page.waitForSelector('#lifecycle[data-mode="edit"][data-policy="none"]');
    check('no policy yet: Save is disabled before a preview', await page.$eval('#lc-save', (b) => b.disabled));
    await page.fill('#lc-text', cfg.life.bad);
    await page.click('#lc-preview');
    await page.waitForSelector('#lifecycle[data-previewed="error"] #lc-error');
    check('a bad policy: the preview shows the API\'s error', /InvalidParameterException/.test(await page.textContent('#lc-error')),
      await page.textContent('#lc-error'));
    check('... and Save stays disabled', await page.$eval('#lc-save', (b) => b.disabled));
    await page.fill('#lc-text', cfg.life.policy);
    await page.click('#lc-preview');
    await page.waitForSelector('#lifecycle[data-previewed="1"] #lc-count');
    eq('the preview lists the images the policy would expire', cfg.life.expire,
      (await page.$$eval('#lc-results tr.expire', (trs) => trs.map((r) => r.dataset.digest))).sort());
    eq('... and counts them', String(cfg.life.expire.length), await page.$eval('#lc-count', (e) => e.dataset.count));
    check('after the preview, Save is enabled', !(await page.$eval('#lc-save', (b) => b.disabled)));
    await page.screenshot({ path: cfg.screenshot2, fullPage: true });
    await page.fill('#lc-text', cfg.life.policy + ' ');
    check('an edit after the preview disables Save again', await page.$eval('#lc-save', (b) => b.disabled));
    await page.fill('#lc-text', cfg.life.policy);
    check('back to the previewed text: Save is enabled', !(await page.$eval('#lc-save', (b) => b.disabled)));
    await unready(page);
    await page.click('#lc-save');
    await page.waitForSelector('#main[data-view="repo"][data-ready] #notice');
    check('saved', (await page.textContent('#notice')).includes('Saved the lifecycle policy of ' + cfg.life.repo));
    await page.waitForSelector('#lifecycle[data-mode="edit"][data-policy="set"]');
    eq('the editor now holds the saved policy', cfg.life.policy, await page.$eval('#lc-text', (t) => t.value));
    eq('saving expired nothing', '3', await page.$eval('#r-count', (e) => e.dataset.count));

    // ---- another repository: save a policy, then delete it through the dialog (cancel first)
    await go(page, '#/repo?n=' + encodeURIComponent(cfg.life.other), 'repo');
    await page.fill('#lc-text', cfg.life.policy);
    await page.click('#lc-preview');
    await page.waitForSelector('#lifecycle[data-previewed="1"]');
    await unready(page);
    await page.click('#lc-save');
    await page.waitForSelector('#main[data-view="repo"][data-ready] #lifecycle[data-policy="set"]');
    await page.click('#lc-delete');
    await page.waitForSelector('#confirm[open]');
    check('the dialog names the policy', (await page.textContent('#confirm-text')).includes('lifecycle policy of ' + cfg.life.other));
    await page.click('#confirm-cancel');
    await page.waitForSelector('#confirm:not([open])', { state: 'attached' });
    check('cancel keeps the policy', await page.$eval('#lifecycle', (l) => l.dataset.policy) === 'set');
    await page.click('#lc-delete');
    await page.waitForSelector('#confirm[open]');
    await unready(page);
    await page.click('#confirm-ok');
    await page.waitForSelector('#main[data-view="repo"][data-ready] #notice');
    check('deleted', (await page.textContent('#notice')).includes('Deleted the lifecycle policy of ' + cfg.life.other));
    await page.waitForSelector('#lifecycle[data-policy="none"]');

    // ---- the pulled image's own page: push time, and a last pull at least skopeo's
    const l3 = cfg.life.images.find((i) => i.pulled > 0);
    await go(page, '#/manifest?n=' + encodeURIComponent(cfg.life.repo) + '&r=' + l3.digest, 'manifest');
    eq('image page: pushed', String(l3.pushed), await page.$eval('#m-pushed', (e) => e.dataset.epoch));
    const pulledAt = Number(await page.$eval('#m-pulled', (e) => e.dataset.epoch));
    check('image page: last pull (this page\'s own GET may already count)', pulledAt >= l3.pulled, pulledAt);
    eq('image page: size as the ECR API reports it', String(l3.bytes), await page.$eval('#m-image-size', (e) => e.dataset.bytes));
    await go(page, '#/', 'repos');

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

    // ---- a non-admin with push rights: the lifecycle policy is read-only
    await page.click('#logout');
    await login(page, cfg.dev.user, cfg.dev.pass);
    await view(page, 'repos');
    eq('dev sees team/*', [cfg.repo, cfg.life.repo, cfg.index.repo], (await texts(page, '#repos a.repo')).sort());
    await go(page, '#/repo?n=' + encodeURIComponent(cfg.life.repo), 'repo');
    await page.waitForSelector('#lifecycle[data-mode="view"][data-policy="set"]');
    eq('dev sees the saved policy', cfg.life.policy, await page.textContent('#lc-view'));
    eq('... read-only: no editor, no save, no delete', 0, (await page.$$('#lc-text, #lc-save, #lc-delete, #lc-preview')).length);
    check('... and is told why', (await page.textContent('#lc-readonly')).includes('Only an admin'));
    eq('dev sees the same images', '3', await page.$eval('#r-count', (e) => e.dataset.count));

    // ---- a robot token (name and secret) logs in the same way and sees what its scope allows
    await page.click('#logout');
    await login(page, cfg.robot.user, cfg.robot.pass);
    await view(page, 'repos');
    eq('the robot token sees team/*', [cfg.repo, cfg.life.repo, cfg.index.repo], (await texts(page, '#repos a.repo')).sort());
    eq('shown as logged in', cfg.robot.user, (await page.textContent('#who')).trim());
  } finally {
    await ctx.close();
  }
  // the page's CSP blocks nothing the app needs, and it threw nothing (denials, missing things and the ECR API's
  // 400 answers, e.g. LifecyclePolicyNotFoundException, are answers the page expects)
  const real = problems.filter((p) => !/Failed to load resource: the server responded with a status of (400|401|403|404)/.test(p));
  eq('no page errors or CSP violations', [], real);
}

main().then(() => {
  console.log(failed ? failed + ' browser checks failed' : 'all browser checks passed');
  process.exit(failed ? 1 : 0);
}, (e) => {
  console.log('FAIL browser flow aborted: ' + (e && e.stack ? e.stack : e));
  process.exit(1);
});
