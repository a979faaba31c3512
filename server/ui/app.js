// Berth web UI: a client of the registry API like any other (GET /token with Basic credentials, then
// /v2/... with the bearer token) and of the ECR API (POST / with X-Amz-Target, the same bearer token for the scope
// registry:ecr:*: what Berth's ECR endpoint accepts instead of SigV4, with the user's own grants; docs/ECR.md).
// Repository size, image counts, push and pull times and lifecycle policies come from the ECR API.  Everything the registry returns (names, tags, digests, media types,
// annotations) is attacker-controlled: it is rendered only with textContent / createElement, never as HTML.
//
// Credentials are kept in memory only (a reload asks again); tokens are cached in memory per scope until
// they expire.  Nothing is stored in a cookie.
'use strict';

(function () {
  const NAME_RE = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
  const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
  const DIGEST_RE = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
  const PAGE = 50; // entries per page of the catalog and tag lists (#/...?page=N overrides, 1..1000)
  const PAGE_MAX = 1000;
  const MANIFEST_TYPES = [
    'application/vnd.oci.image.index.v1+json',
    'application/vnd.oci.image.manifest.v1+json',
    'application/vnd.docker.distribution.manifest.list.v2+json',
    'application/vnd.docker.distribution.manifest.v2+json',
  ];
  const INDEX_TYPES = new Set([MANIFEST_TYPES[0], MANIFEST_TYPES[2]]);
  // config media types of plain images (ECR's artifactMediaType); anything else is shown as an artifact's type
  const IMAGE_CONFIG_TYPES = new Set(['application/vnd.oci.image.config.v1+json',
    'application/vnd.docker.container.image.v1+json']);
  const ECR_SCOPE = 'registry:ecr:*';
  const ECR_TARGET = 'AmazonEC2ContainerRegistry_V20150921.';
  const ECR_PAGE = 1000; // DescribeImages page size (ECR's maximum)
  const IMAGES_SHOWN = 200; // image rows in a repository's table (the most recently pushed)
  const PREVIEW_POLLS = 20; // GetLifecyclePolicyPreview calls while it answers IN_PROGRESS (Berth: at once)
  const PREVIEW_POLL_MS = 500;
  const POLICY_TEMPLATE = JSON.stringify({
    rules: [{
      rulePriority: 1, description: 'keep the 10 most recent images',
      selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 10 },
      action: { type: 'expire' },
    }],
  }, null, 2);

  // ---- state (memory only) ----
  const auth = { mode: 'unknown', user: '', pass: '', tokens: new Map() };
  let notice = '';
  let gen = 0; // bumped by every render: a view still loading for an older one stops touching the page

  // ---- DOM helpers: text only ----
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = String(v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const kid of kids.flat()) {
      if (kid === undefined || kid === null || kid === false) continue;
      e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return e;
  }
  const $ = (id) => document.getElementById(id);
  function link(hash, text, cls) {
    return el('a', { href: hash, class: cls }, text);
  }
  function route(view, params) {
    return '#/' + view + (params ? '?' + new URLSearchParams(params).toString() : '');
  }
  function humanSize(n) {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let v = n, u = 0;
    while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
    return (u === 0 ? String(v) : v.toFixed(v < 10 ? 2 : 1)) + ' ' + units[u];
  }
  function sizeText(n) {
    return Number.isSafeInteger(n) && n >= 0 ? humanSize(n) + ' (' + n + ' bytes)' : 'unknown';
  }
  // ECR times are seconds since the epoch (AWS's JSON); shown in UTC, to the second
  function timeText(sec) {
    const n = Number(sec);
    if (!Number.isFinite(n) || n <= 0) return 'never';
    return new Date(n * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  }
  function epochAttr(sec) {
    const n = Number(sec);
    return Number.isFinite(n) && n > 0 ? String(Math.floor(n)) : '';
  }

  // ---- the registry API ----
  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }
  async function apiError(res) {
    let code = '', msg = '';
    try {
      const j = await res.json();
      const e = j && Array.isArray(j.errors) && j.errors[0];
      if (e) { code = String(e.code || ''); msg = String(e.message || ''); }
    } catch (_) { /* not JSON */ }
    return new ApiError(res.status, code, msg || res.statusText || 'HTTP ' + res.status);
  }
  function basic() {
    const bytes = new TextEncoder().encode(auth.user + ':' + auth.pass);
    let s = '';
    for (const b of bytes) s += String.fromCharCode(b);
    return 'Basic ' + btoa(s);
  }
  // A bearer token for `scope` from /token (the same endpoint docker uses), cached until shortly before expiry.
  async function token(scope) {
    const now = Date.now();
    const c = auth.tokens.get(scope);
    if (c && c.until > now) return c.token;
    const res = await fetch('/token?scope=' + encodeURIComponent(scope), {
      headers: { Authorization: basic() }, cache: 'no-store', credentials: 'omit',
    });
    if (!res.ok) throw await apiError(res);
    const j = await res.json();
    const t = String(j.token || j.access_token || '');
    const ttl = Number.isFinite(j.expires_in) ? j.expires_in : 60;
    auth.tokens.set(scope, { token: t, until: now + Math.max(ttl - 10, 5) * 1000 });
    return t;
  }
  // fetch() of a registry path with a token for `scope`; one retry with a fresh token after a 401.
  async function api(path, scope, opts) {
    for (let attempt = 0; ; attempt++) {
      const headers = Object.assign({}, (opts && opts.headers) || {});
      if (auth.mode === 'token') headers.Authorization = 'Bearer ' + (await token(scope));
      const res = await fetch(path, Object.assign({}, opts, { headers, cache: 'no-store', credentials: 'omit' }));
      if (res.status === 401 && auth.mode === 'token' && attempt === 0) {
        auth.tokens.delete(scope);
        continue;
      }
      if (!res.ok) throw await apiError(res);
      return res;
    }
  }
  const pullScope = (name) => 'repository:' + name + ':pull';

  // One ECR operation (POST / with X-Amz-Target) with a bearer token for registry:ecr:*; errors carry the ECR
  // exception name (`__type`) as their code.  One retry with a fresh token when the token is refused.
  async function ecr(op, body) {
    for (let attempt = 0; ; attempt++) {
      const headers = { 'X-Amz-Target': ECR_TARGET + op, 'Content-Type': 'application/x-amz-json-1.1' };
      if (auth.mode === 'token') headers.Authorization = 'Bearer ' + (await token(ECR_SCOPE));
      const res = await fetch('/', {
        method: 'POST', headers, body: JSON.stringify(body || {}), cache: 'no-store', credentials: 'omit',
      });
      let j = null;
      try { j = await res.json(); } catch (_) { /* not JSON */ }
      if (res.ok && j && typeof j === 'object') return j;
      const type = String((j && j.__type) || '').replace(/^.*#/, '');
      if (type === 'UnrecognizedClientException' && auth.mode === 'token' && attempt === 0) {
        auth.tokens.delete(ECR_SCOPE);
        continue;
      }
      throw new ApiError(res.status, type, String((j && (j.message || j.Message)) || res.statusText || 'HTTP ' + res.status));
    }
  }
  // Every image of a repository (DescribeImages, all pages).
  async function allImages(name) {
    const out = [];
    let next = null;
    do {
      const req = { repositoryName: name, maxResults: ECR_PAGE };
      if (next) req.nextToken = next;
      const j = await ecr('DescribeImages', req);
      for (const d of Array.isArray(j.imageDetails) ? j.imageDetails : []) if (d && typeof d === 'object') out.push(d);
      next = typeof j.nextToken === 'string' && j.nextToken ? j.nextToken : null;
    } while (next);
    return out;
  }
  // count, size (sum of imageSizeInBytes) and last push of a list of imageDetails
  function imageStats(list) {
    let bytes = 0, last = 0;
    for (const d of list) {
      const n = Number(d.imageSizeInBytes);
      if (Number.isSafeInteger(n) && n > 0) bytes += n;
      const t = Number(d.imagePushedAt);
      if (Number.isFinite(t) && t > last) last = t;
    }
    return { count: list.length, bytes, last };
  }
  // Whether the user is an admin of repository `name`: /token tells, in the token's access list, when asked for the
  // action "admin".  Only decides which controls to show: the ECR API checks every call itself.
  async function mayAdmin(name) {
    if (auth.mode !== 'token') return true; // auth off: everything is allowed
    try {
      const t = await token('repository:' + name + ':pull,admin');
      const part = t.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      const claims = JSON.parse(atob(part + '='.repeat((4 - (part.length % 4)) % 4)));
      return (Array.isArray(claims.access) ? claims.access : []).some((a) => a && a.type === 'repository' &&
        a.name === name && Array.isArray(a.actions) && a.actions.includes('admin'));
    } catch (_) {
      return false;
    }
  }
  // The next page of a paginated list, from the Link header (same origin, /v2/ only).
  function nextLink(res) {
    const l = res.headers.get('Link') || '';
    const m = /<([^>]*)>\s*;\s*rel="?next"?/.exec(l);
    if (!m) return null;
    const u = new URL(m[1], location.origin);
    if (u.origin !== location.origin || !u.pathname.startsWith('/v2/')) return null;
    return u.searchParams.get('last');
  }

  // The page size asked for in the address, else PAGE; and the page's parameters to carry on in links.
  function pageSize(params) {
    const n = Number(params.get('page'));
    return Number.isInteger(n) && n >= 1 && n <= PAGE_MAX ? n : PAGE;
  }
  function withPage(obj, size) {
    return size === PAGE ? obj : Object.assign({ page: String(size) }, obj);
  }

  // ---- views ----
  const main = () => $('main');
  function show(view, ...kids) {
    const m = main();
    m.replaceChildren();
    m.dataset.view = view;
    delete m.dataset.ready;
    if (notice) { m.append(el('div', { class: 'notice', id: 'notice' }, notice)); notice = ''; }
    m.append(...kids);
  }
  function ready() {
    main().dataset.ready = '1';
  }
  function crumbs(name, ref) {
    const c = $('crumbs');
    c.replaceChildren(link('#/', 'Repositories'));
    if (name) c.append(el('span', { class: 'sep' }, '/'), link(route('repo', { n: name }), name));
    if (ref) c.append(el('span', { class: 'sep' }, '/'), el('span', {}, ref.length > 30 ? ref.slice(0, 30) + '…' : ref));
  }
  function errorBox(err, name) {
    let text;
    if (err instanceof ApiError && (err.status === 401 || err.status === 403 || err.code === 'AccessDeniedException'))
      text = name ? 'Access denied: you may not read repository ' + name + ' (or it does not exist).'
        : 'Access denied (' + err.status + ' ' + (err.code || '') + ').';
    else if (err instanceof ApiError && err.status === 404)
      text = 'Not found: ' + (err.code ? err.code + ' — ' : '') + err.message;
    else if (err instanceof ApiError)
      text = 'Error ' + err.status + (err.code ? ' ' + err.code : '') + ': ' + err.message;
    else
      text = 'Error: ' + (err && err.message ? err.message : String(err));
    return el('div', { class: 'error', id: 'error', role: 'alert' }, text);
  }
  function fail(err, name, g) {
    if (g !== undefined && g !== gen) return;
    main().append(errorBox(err, name));
    ready();
  }

  function loginView() {
    crumbs();
    const user = el('input', { id: 'user', name: 'user', autocomplete: 'username', required: true });
    const pass = el('input', { id: 'pass', name: 'pass', type: 'password', autocomplete: 'current-password', required: true });
    const msg = el('div', { id: 'login-error', class: 'error', role: 'alert', hidden: true });
    const form = el('form', { class: 'card login', id: 'login-form' },
      el('h1', {}, 'Log in to Berth'), msg,
      el('label', { for: 'user' }, 'User or robot token name'), user,
      el('label', { for: 'pass' }, 'Password or token secret'), pass,
      el('button', { type: 'submit', id: 'login' }, 'Log in'));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      auth.user = user.value;
      auth.pass = pass.value;
      auth.tokens.clear();
      auth.mode = 'token';
      try {
        await token(ECR_SCOPE);
        pass.value = '';
        loggedIn();
        render();
      } catch (err) {
        auth.mode = 'login';
        auth.user = auth.pass = '';
        msg.hidden = false;
        msg.textContent = err instanceof ApiError && err.status === 401 ? 'Wrong name or password.'
          : err instanceof ApiError && err.status === 429 ? 'Too many attempts: wait a minute and try again.'
            : 'Login failed: ' + err.message;
      }
    });
    show('login', form);
    ready();
    user.focus();
  }
  function loggedIn() {
    $('who').textContent = auth.mode === 'token' ? auth.user : 'no authentication';
    $('logout').hidden = auth.mode !== 'token';
  }

  // Repositories the user can pull (ECR DescribeRepositories filters by the user's grants), each with its image
  // count, size (the sum of its images' imageSizeInBytes) and last push, from DescribeImages.
  async function reposView(params) {
    crumbs();
    const after = params.get('t') || '';
    const size = pageSize(params);
    const g = gen;
    const tbody = el('tbody', { id: 'repos' });
    show('repos', el('h1', {}, 'Repositories'),
      el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'Name'), el('th', { class: 'num' }, 'Images'),
        el('th', { class: 'num' }, 'Size'), el('th', {}, 'Last push'))), tbody),
      el('p', { class: 'muted' }, 'Size: the sum of the sizes of the repository\'s images (config and layers, as ' +
        'pulled); a layer shared by two images counts twice.'));
    try {
      const req = { maxResults: size };
      if (after) req.nextToken = after;
      const j = await ecr('DescribeRepositories', req);
      if (g !== gen) return;
      const names = (Array.isArray(j.repositories) ? j.repositories : []).map((r) => r && r.repositoryName)
        .filter((n) => typeof n === 'string');
      const rows = [];
      for (const n of names) {
        const cells = [el('td', { class: 'num images' }, '…'), el('td', { class: 'num size' }, '…'), el('td', { class: 'pushed' }, '…')];
        const tr = el('tr', { class: 'repo-row', 'data-repo': n },
          el('td', {}, NAME_RE.test(n) ? link(route('repo', { n }), n, 'repo') : n), cells);
        tbody.append(tr);
        if (NAME_RE.test(n)) rows.push([n, tr, cells]);
      }
      if (names.length === 0)
        tbody.append(el('tr', {}, el('td', { class: 'muted', id: 'no-repos', colspan: 4 }, 'No repositories you can read.')));
      const next = typeof j.nextToken === 'string' && j.nextToken ? j.nextToken : null;
      const pager = el('div', { class: 'pager' });
      if (after) pager.append(link(route('repos', withPage({}, size)), 'First page', 'first'));
      if (next) pager.append(link(route('repos', withPage({ t: next }, size)), 'Next page', 'next'));
      main().append(pager);
      await Promise.all(rows.map(async ([n, tr, [count, bytes, pushed]]) => {
        try {
          const st = imageStats(await allImages(n));
          tr.dataset.images = String(st.count);
          tr.dataset.bytes = String(st.bytes);
          tr.dataset.pushed = epochAttr(st.last);
          count.textContent = String(st.count);
          bytes.textContent = humanSize(st.bytes);
          bytes.title = st.bytes + ' bytes';
          pushed.textContent = st.count ? timeText(st.last) : '—';
        } catch (err) {
          count.textContent = bytes.textContent = pushed.textContent = '';
          count.append(el('span', { class: 'muted' }, 'error: ' + (err.code || err.message)));
        }
      }));
      if (g === gen) ready();
    } catch (err) {
      fail(err, undefined, g);
    }
  }

  async function repoView(params) {
    const name = params.get('n') || '';
    const last = params.get('last') || '';
    const size = pageSize(params);
    const g = gen;
    crumbs(name);
    if (!NAME_RE.test(name)) return show('repo', errorBox(new Error('invalid repository name'))), ready();
    const tbody = el('tbody', { id: 'tags' });
    const summary = el('dl', { class: 'facts', id: 'repo-facts' });
    show('repo', el('h1', {}, name), el('section', { class: 'card' }, summary),
      el('h2', {}, 'Tags'),
      el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'Tag'), el('th', {}, 'Digest'))), tbody));
    try {
      const q = new URLSearchParams({ n: String(size) });
      if (last) q.set('last', last);
      const res = await api('/v2/' + name + '/tags/list?' + q, pullScope(name));
      const j = await res.json();
      if (g !== gen) return;
      const tags = (Array.isArray(j.tags) ? j.tags : []).filter((t) => typeof t === 'string' && TAG_RE.test(t));
      const cells = [];
      for (const t of tags) {
        const d = el('td', { class: 'mono digest' }, '…');
        cells.push([t, d]);
        tbody.append(el('tr', { class: 'tag', 'data-tag': t },
          el('td', {}, link(route('manifest', { n: name, r: t }), t, 'tag-link')), d));
      }
      if (tags.length === 0) tbody.append(el('tr', {}, el('td', { class: 'muted', colspan: 2 }, 'No tags.')));
      const next = nextLink(res);
      if (next || last) {
        const pager = el('div', { class: 'pager' });
        if (last) pager.append(link(route('repo', withPage({ n: name }, size)), 'First page', 'first'));
        if (next) pager.append(link(route('repo', withPage({ n: name, last: next }, size)), 'Next page', 'next'));
        main().append(pager);
      }
      // each tag's digest: HEAD of the manifest (what `docker pull` asks first; a HEAD is not recorded as a pull)
      const digests = Promise.all(cells.map(async ([t, cell]) => {
        try {
          const r = await api('/v2/' + name + '/manifests/' + t, pullScope(name),
            { method: 'HEAD', headers: { Accept: MANIFEST_TYPES.join(', ') } });
          cell.textContent = r.headers.get('Docker-Content-Digest') || '?';
        } catch (err) {
          cell.textContent = err instanceof ApiError ? 'error ' + err.status : 'error';
        }
      }));
      const images = el('section', { id: 'images-section' });
      const lifecycle = el('section', { id: 'lifecycle', class: 'card' });
      main().append(images, el('h2', {}, 'Lifecycle policy'), lifecycle);
      await Promise.all([digests, imagesPanel(name, summary, images, g), lifecyclePanel(name, lifecycle, g)]);
      if (g === gen) ready();
    } catch (err) {
      fail(err, name, g);
    }
  }

  // The repository's images from DescribeImages: the summary (count, size, last push) and a table with each
  // image's tags, size, push and last pull time.
  async function imagesPanel(name, summary, box, g) {
    let list;
    try {
      list = await allImages(name);
    } catch (err) {
      if (g === gen) box.append(errorBox(err, name));
      return;
    }
    if (g !== gen) return;
    const st = imageStats(list);
    summary.append(
      el('dt', {}, 'Images'), el('dd', { id: 'r-count', 'data-count': st.count }, String(st.count)),
      el('dt', {}, 'Size'), el('dd', { id: 'r-size', 'data-bytes': st.bytes }, sizeText(st.bytes)),
      el('dt', {}, 'Last push'), el('dd', { id: 'r-pushed', 'data-epoch': epochAttr(st.last) }, st.count ? timeText(st.last) : '—'));
    list.sort((x, y) => Number(y.imagePushedAt) - Number(x.imagePushedAt));
    const tbody = el('tbody', { id: 'images' });
    for (const d of list.slice(0, IMAGES_SHOWN)) {
      const dg = typeof d.imageDigest === 'string' ? d.imageDigest : '';
      const tags = (Array.isArray(d.imageTags) ? d.imageTags : []).filter((t) => typeof t === 'string');
      const bytes = Number(d.imageSizeInBytes);
      tbody.append(el('tr', { class: 'image', 'data-digest': dg, 'data-bytes': bytes,
        'data-pushed': epochAttr(d.imagePushedAt), 'data-pulled': epochAttr(d.lastRecordedPullTime) },
      el('td', { class: 'mono' }, DIGEST_RE.test(dg) ? link(route('manifest', { n: name, r: dg }), dg, 'image-link') : dg),
      el('td', { class: 'tags' }, tags.length ? tags.map((t) => el('span', { class: 'badge' }, t)) : el('span', { class: 'muted' }, 'untagged')),
      el('td', { class: 'mono' }, String(d.imageManifestMediaType || ''),
        IMAGE_CONFIG_TYPES.has(d.artifactMediaType) || typeof d.artifactMediaType !== 'string' ? null
          : el('div', { class: 'muted' }, 'artifact ' + d.artifactMediaType)),
      el('td', { class: 'num size' }, sizeText(bytes)),
      el('td', { class: 'pushed' }, timeText(d.imagePushedAt)),
      el('td', { class: 'pulled' }, timeText(d.lastRecordedPullTime))));
    }
    if (list.length === 0) tbody.append(el('tr', {}, el('td', { colspan: 6, class: 'muted' }, 'No images.')));
    box.append(el('h2', {}, 'Images'), el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'Digest'),
      el('th', {}, 'Tags'), el('th', {}, 'Type'), el('th', { class: 'num' }, 'Size'), el('th', {}, 'Pushed'),
      el('th', {}, 'Last pull'))), tbody));
    if (list.length > IMAGES_SHOWN)
      box.append(el('p', { class: 'muted' }, 'The ' + IMAGES_SHOWN + ' most recently pushed of ' + list.length + ' images.'));
  }

  // The lifecycle policy (ECR Get/Put/DeleteLifecyclePolicy, Start/GetLifecyclePolicyPreview): read-only for a user
  // who may pull; an admin of the repository edits it, previews what it would expire now, then saves or deletes it.
  async function lifecyclePanel(name, box, g) {
    let text = null, evaluated = 0, admin = false;
    try {
      const [p, a] = await Promise.all([
        ecr('GetLifecyclePolicy', { repositoryName: name }).catch((err) => {
          if (err.code === 'LifecyclePolicyNotFoundException') return null;
          throw err;
        }),
        mayAdmin(name)]);
      if (p && typeof p.lifecyclePolicyText === 'string') {
        text = p.lifecyclePolicyText;
        evaluated = Number(p.lastEvaluatedAt) || 0;
      }
      admin = a;
    } catch (err) {
      if (g === gen) box.append(errorBox(err, name));
      return;
    }
    if (g !== gen) return;
    box.dataset.mode = admin ? 'edit' : 'view';
    box.dataset.policy = text === null ? 'none' : 'set';
    if (!admin) {
      if (text === null) box.append(el('p', { id: 'lc-none' }, 'No lifecycle policy: images are kept until deleted.'));
      else box.append(el('pre', { id: 'lc-view', class: 'mono policy' }, text),
        el('p', { class: 'muted' }, 'Set ' + timeText(evaluated) + '.'));
      box.append(el('p', { class: 'muted', id: 'lc-readonly' }, 'Only an admin of ' + name + ' may change it.'));
      return;
    }
    const area = el('textarea', { id: 'lc-text', rows: 14, spellcheck: 'false', 'aria-label': 'lifecycle policy (JSON)' });
    area.value = text === null ? POLICY_TEMPLATE : text;
    const result = el('div', { id: 'lc-result' });
    const save = el('button', { type: 'button', id: 'lc-save', class: 'primary', disabled: true }, 'Save policy');
    const preview = el('button', { type: 'button', id: 'lc-preview' }, 'Preview');
    let previewed = null; // the text whose preview is shown
    area.addEventListener('input', () => {
      save.disabled = area.value !== previewed;
      result.classList.toggle('stale', area.value !== previewed);
    });
    preview.addEventListener('click', async () => {
      const t = area.value;
      preview.disabled = save.disabled = true;
      result.replaceChildren(el('p', { class: 'muted' }, 'Previewing…'));
      delete box.dataset.previewed;
      try {
        const out = await runPreview(name, t);
        result.replaceChildren(previewTable(out));
        result.classList.remove('stale');
        previewed = t;
        save.disabled = area.value !== previewed;
        box.dataset.previewed = '1';
      } catch (err) {
        result.replaceChildren(el('div', { class: 'error', id: 'lc-error', role: 'alert' },
          (err.code ? err.code + ': ' : '') + err.message));
        box.dataset.previewed = 'error';
      }
      preview.disabled = false;
    });
    save.addEventListener('click', async () => {
      if (area.value !== previewed) return;
      save.disabled = true;
      try {
        await ecr('PutLifecyclePolicy', { repositoryName: name, lifecyclePolicyText: area.value });
        notice = 'Saved the lifecycle policy of ' + name + '.';
        render();
      } catch (err) {
        result.prepend(el('div', { class: 'error', id: 'lc-error', role: 'alert' }, (err.code ? err.code + ': ' : '') + err.message));
        save.disabled = false;
      }
    });
    const actions = el('div', { class: 'actions' }, preview, save);
    if (text !== null)
      actions.append(el('button', { type: 'button', id: 'lc-delete', class: 'danger', onclick: () => confirmThen(
        'Delete the lifecycle policy of ' + name + '? Its images are then kept until deleted.', async () => {
          try {
            await ecr('DeleteLifecyclePolicy', { repositoryName: name });
            notice = 'Deleted the lifecycle policy of ' + name + '.';
            render();
          } catch (err) {
            main().prepend(errorBox(err, name));
          }
        }) }, 'Delete policy'));
    box.append(el('p', { class: 'muted' }, text === null
      ? 'No lifecycle policy yet: edit the example below, preview it, then save.'
      : 'Set ' + timeText(evaluated) + '. Edit, preview what it would expire now, then save.'),
    area, actions, result);
  }

  // StartLifecyclePolicyPreview of `text`, then GetLifecyclePolicyPreview until it is COMPLETE.
  async function runPreview(name, text) {
    await ecr('StartLifecyclePolicyPreview', { repositoryName: name, lifecyclePolicyText: text });
    for (let i = 0; i < PREVIEW_POLLS; i++) {
      const out = await ecr('GetLifecyclePolicyPreview', { repositoryName: name });
      if (out.lifecyclePolicyText !== text)
        throw new Error('another preview of this repository started meanwhile: preview again');
      if (out.status === 'COMPLETE') return out;
      if (out.status === 'FAILED') throw new Error('the preview failed');
      await new Promise((r) => setTimeout(r, PREVIEW_POLL_MS));
    }
    throw new Error('the preview did not complete');
  }
  function previewTable(out) {
    const rows = (Array.isArray(out.previewResults) ? out.previewResults : []).filter((r) => r && typeof r === 'object');
    const tbody = el('tbody', { id: 'lc-results' });
    for (const r of rows) {
      const tags = (Array.isArray(r.imageTags) ? r.imageTags : []).filter((t) => typeof t === 'string');
      tbody.append(el('tr', { class: 'expire', 'data-digest': String(r.imageDigest || '') },
        el('td', { class: 'mono' }, String(r.imageDigest || '')),
        el('td', {}, tags.length ? tags.map((t) => el('span', { class: 'badge' }, t)) : el('span', { class: 'muted' }, 'untagged')),
        el('td', {}, timeText(r.imagePushedAt)),
        el('td', { class: 'num' }, String(r.appliedRulePriority ?? ''))));
    }
    const n = rows.length;
    return el('div', {}, el('p', { id: 'lc-count', 'data-count': n },
      n === 0 ? 'Saved now, this policy would expire no image.' : 'Saved now, this policy would expire ' + n +
        (n === 1 ? ' image:' : ' images:')),
    n ? el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'Digest'), el('th', {}, 'Tags'), el('th', {}, 'Pushed'),
      el('th', { class: 'num' }, 'Rule'))), tbody) : null);
  }

  function descriptorRows(list, name, kind) {
    const rows = [];
    for (const d of Array.isArray(list) ? list : []) {
      if (!d || typeof d !== 'object') continue;
      const dg = typeof d.digest === 'string' ? d.digest : '';
      const size = Number(d.size);
      rows.push({ d, dg, size, valid: DIGEST_RE.test(dg), kind });
    }
    return rows;
  }
  function platformText(p) {
    if (!p || typeof p !== 'object') return 'unknown';
    return [p.os, p.architecture, p.variant].filter((x) => typeof x === 'string' && x).join('/') +
      (typeof p['os.version'] === 'string' ? ' ' + p['os.version'] : '');
  }
  function annotationsList(a) {
    if (!a || typeof a !== 'object') return null;
    const dl = el('dl', { class: 'facts annotations' });
    for (const [k, v] of Object.entries(a)) dl.append(el('dt', { class: 'mono' }, k), el('dd', { class: 'mono' }, String(v)));
    return dl.childElementCount ? dl : null;
  }

  async function manifestView(params) {
    const name = params.get('n') || '';
    const ref = params.get('r') || '';
    const g = gen;
    crumbs(name, ref);
    if (!NAME_RE.test(name) || !(TAG_RE.test(ref) || DIGEST_RE.test(ref)))
      return show('manifest', errorBox(new Error('invalid repository name or reference'))), ready();
    show('manifest', el('h1', {}, name + (DIGEST_RE.test(ref) ? '@' : ':') + ref));
    let res, body, m;
    try {
      res = await api('/v2/' + name + '/manifests/' + ref, pullScope(name),
        { headers: { Accept: MANIFEST_TYPES.join(', ') } });
      body = await res.text();
      m = JSON.parse(body);
    } catch (err) {
      return fail(err, name, g);
    }
    if (g !== gen) return;
    const digest = res.headers.get('Docker-Content-Digest') || (DIGEST_RE.test(ref) ? ref : '');
    const type = (res.headers.get('Content-Type') || '').split(';')[0].trim() || String(m.mediaType || '');
    const isIndex = INDEX_TYPES.has(type) || Array.isArray(m.manifests);
    const facts = el('dl', { class: 'facts' },
      el('dt', {}, 'Digest'), el('dd', { class: 'mono', id: 'm-digest' }, digest),
      el('dt', {}, 'Media type'), el('dd', { class: 'mono', id: 'm-type' }, type),
      el('dt', {}, 'Manifest size'), el('dd', { id: 'm-size' }, sizeText(new TextEncoder().encode(body).length)));
    if (typeof m.artifactType === 'string')
      facts.append(el('dt', {}, 'Artifact type'), el('dd', { class: 'mono' }, m.artifactType));
    if (m.subject && typeof m.subject.digest === 'string' && DIGEST_RE.test(m.subject.digest))
      facts.append(el('dt', {}, 'Subject'), el('dd', {},
        link(route('manifest', { n: name, r: m.subject.digest }), m.subject.digest, 'mono')));
    main().append(el('section', { class: 'card' }, facts));
    // push and pull times and the image's size, from ECR's DescribeImages (the GET above is itself a pull: it is
    // recorded within seconds, so the time shown is the pull before this page's)
    if (DIGEST_RE.test(digest)) {
      try {
        const j = await ecr('DescribeImages', { repositoryName: name, imageIds: [{ imageDigest: digest }] });
        const d = Array.isArray(j.imageDetails) && j.imageDetails[0];
        if (d && typeof d === 'object')
          facts.append(el('dt', {}, 'Image size'), el('dd', { id: 'm-image-size', 'data-bytes': Number(d.imageSizeInBytes) },
            sizeText(Number(d.imageSizeInBytes)) + ' (config and layers)'),
          el('dt', {}, 'Pushed'), el('dd', { id: 'm-pushed', 'data-epoch': epochAttr(d.imagePushedAt) }, timeText(d.imagePushedAt)),
          el('dt', {}, 'Last pull'), el('dd', { id: 'm-pulled', 'data-epoch': epochAttr(d.lastRecordedPullTime) },
            timeText(d.lastRecordedPullTime),
            el('span', { class: 'muted' }, ' (this page fetched the manifest: that counts as a pull, recorded within seconds)')));
      } catch (err) {
        facts.append(el('dt', {}, 'Push and pull'), el('dd', { class: 'muted' }, 'unavailable: ' + (err.code || err.message)));
      }
      if (g !== gen) return;
    }
    const ann = annotationsList(m.annotations);
    if (ann) main().append(el('h2', {}, 'Annotations'), el('section', { class: 'card' }, ann));

    if (isIndex) {
      const tbody = el('tbody', { id: 'platforms' });
      for (const r of descriptorRows(m.manifests, name)) {
        tbody.append(el('tr', { class: 'platform' },
          el('td', {}, platformText(r.d.platform)),
          el('td', { class: 'mono' }, r.valid ? link(route('manifest', { n: name, r: r.dg }), r.dg, 'child') : r.dg),
          el('td', { class: 'mono' }, String(r.d.mediaType || '')),
          el('td', { class: 'num' }, sizeText(r.size))));
      }
      main().append(el('h2', {}, 'Platforms'), el('table', {},
        el('thead', {}, el('tr', {}, el('th', {}, 'Platform'), el('th', {}, 'Digest'), el('th', {}, 'Media type'),
          el('th', { class: 'num' }, 'Size'))), tbody));
    } else {
      const layers = descriptorRows(m.layers, name);
      const tbody = el('tbody', { id: 'layers' });
      let total = 0;
      layers.forEach((r, i) => {
        total += Number.isSafeInteger(r.size) ? r.size : 0;
        tbody.append(el('tr', { class: 'layer', 'data-digest': r.dg, 'data-bytes': r.size },
          el('td', { class: 'num' }, String(i + 1)), el('td', { class: 'mono' }, r.dg),
          el('td', { class: 'mono' }, String(r.d.mediaType || '')), el('td', { class: 'num' }, sizeText(r.size))));
      });
      const cfg = m.config && typeof m.config === 'object' ? m.config : null;
      main().append(el('h2', {}, 'Layers'), el('table', {},
        el('thead', {}, el('tr', {}, el('th', { class: 'num' }, '#'), el('th', {}, 'Digest'),
          el('th', {}, 'Media type'), el('th', { class: 'num' }, 'Size'))), tbody),
      el('p', {}, 'Total size of the layers (compressed, as pulled): ',
        el('strong', { id: 'total-size', 'data-bytes': total }, sizeText(total))));
      if (cfg)
        main().append(el('p', { class: 'muted' }, 'Config ', el('span', { class: 'mono', id: 'm-config' }, String(cfg.digest || '')),
          ', ' + sizeText(Number(cfg.size))));
    }

    // deletion (OCI DELETE): a tag, or the image by digest
    const actions = el('div', { class: 'actions' });
    if (TAG_RE.test(ref))
      actions.append(el('button', { type: 'button', id: 'delete-tag', class: 'danger',
        onclick: () => remove(name, ref, 'tag ' + ref) }, 'Delete tag'));
    if (DIGEST_RE.test(digest))
      actions.append(el('button', { type: 'button', id: 'delete-digest', class: 'danger',
        onclick: () => remove(name, digest, 'the image ' + digest + ' (every tag that points at it)') }, 'Delete image'));
    main().append(actions);

    // referrers (signatures, SBOMs, attestations)
    const refs = el('tbody', { id: 'referrers' });
    main().append(el('h2', {}, 'Referrers'), el('table', {}, el('thead', {}, el('tr', {},
      el('th', {}, 'Artifact type'), el('th', {}, 'Digest'), el('th', { class: 'num' }, 'Size'), el('th', {}, 'Annotations'))), refs));
    if (DIGEST_RE.test(digest)) {
      try {
        const r = await api('/v2/' + name + '/referrers/' + digest, pullScope(name));
        const j = await r.json();
        for (const x of descriptorRows(j.manifests, name))
          refs.append(el('tr', { class: 'referrer' }, el('td', { class: 'mono' }, String(x.d.artifactType || x.d.mediaType || '')),
            el('td', { class: 'mono' }, x.valid ? link(route('manifest', { n: name, r: x.dg }), x.dg) : x.dg),
            el('td', { class: 'num' }, sizeText(x.size)), el('td', {}, annotationsList(x.d.annotations))));
      } catch (err) {
        refs.append(el('tr', {}, el('td', { colspan: 4, class: 'muted' }, 'Referrers unavailable: ' + err.message)));
      }
      if (g !== gen) return;
    }
    if (!refs.childElementCount) refs.append(el('tr', {}, el('td', { colspan: 4, class: 'muted', id: 'no-referrers' }, 'None.')));
    ready();
  }

  // Shows the confirmation dialog with `text`; runs `action` only after "Delete" was pressed.
  function confirmThen(text, action) {
    const dlg = $('confirm');
    $('confirm-text').textContent = text;
    dlg.returnValue = '';
    dlg.onclose = () => {
      if (dlg.returnValue === 'ok') action();
    };
    dlg.showModal();
  }

  // Asks for confirmation, then DELETE /v2/<name>/manifests/<ref> with a token for the delete action.
  function remove(name, ref, what) {
    confirmThen('Delete ' + what + ' from ' + name + '? This cannot be undone.', async () => {
      try {
        await api('/v2/' + name + '/manifests/' + ref, 'repository:' + name + ':delete', { method: 'DELETE' });
        notice = 'Deleted ' + what + ' from ' + name + '.';
        location.hash = route('repo', { n: name });
      } catch (err) {
        main().prepend(errorBox(err.status === 401 || err.status === 403
          ? new Error('you may not delete in ' + name) : err));
      }
    });
  }

  // ---- routing ----
  async function render() {
    const g = ++gen;
    if (auth.mode === 'unknown') {
      // auth off (berth serve --no-auth): /v2/ answers without credentials
      try {
        const r = await fetch('/v2/', { cache: 'no-store', credentials: 'omit' });
        auth.mode = r.ok ? 'none' : 'login';
      } catch (_) {
        auth.mode = 'login';
      }
      if (auth.mode === 'none') loggedIn();
      if (g !== gen) return;
    }
    if (auth.mode === 'login') return loginView();
    const h = location.hash.replace(/^#\/?/, '');
    const qi = h.indexOf('?');
    const view = qi < 0 ? h : h.slice(0, qi);
    const params = new URLSearchParams(qi < 0 ? '' : h.slice(qi + 1));
    if (view === 'repo') return repoView(params);
    if (view === 'manifest') return manifestView(params);
    return reposView(params);
  }

  window.addEventListener('hashchange', render);
  window.addEventListener('DOMContentLoaded', () => {
    $('logout').addEventListener('click', () => {
      auth.mode = 'login';
      auth.user = auth.pass = '';
      auth.tokens.clear();
      loggedIn();
      $('who').textContent = '';
      if (location.hash === '#/' || location.hash === '') render();
      else location.hash = '#/'; // hashchange renders
    });
    render();
  });
})();
