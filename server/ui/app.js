// Berth web UI: a client of the registry API like any other (GET /token with Basic credentials, then
// /v2/... with the bearer token).  Everything the registry returns (names, tags, digests, media types,
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
    if (err instanceof ApiError && (err.status === 401 || err.status === 403))
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
        await token('registry:catalog:*');
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

  async function reposView(params) {
    crumbs();
    const last = params.get('last') || '';
    const size = pageSize(params);
    const g = gen;
    const tbody = el('tbody', { id: 'repos' });
    show('repos', el('h1', {}, 'Repositories'),
      el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'Name'))), tbody));
    try {
      const q = new URLSearchParams({ n: String(size) });
      if (last) q.set('last', last);
      const res = await api('/v2/_catalog?' + q, 'registry:catalog:*');
      const j = await res.json();
      if (g !== gen) return;
      const names = (Array.isArray(j.repositories) ? j.repositories : []).filter((n) => typeof n === 'string');
      for (const n of names)
        tbody.append(el('tr', {}, el('td', {}, NAME_RE.test(n) ? link(route('repo', { n }), n, 'repo') : n)));
      if (names.length === 0)
        tbody.append(el('tr', {}, el('td', { class: 'muted', id: 'no-repos' }, 'No repositories you can read.')));
      const next = nextLink(res);
      const pager = el('div', { class: 'pager' });
      if (last) pager.append(link(route('repos', withPage({}, size)), 'First page', 'first'));
      if (next) pager.append(link(route('repos', withPage({ last: next }, size)), 'Next page', 'next'));
      main().append(pager);
      ready();
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
    show('repo', el('h1', {}, name), el('p', { class: 'muted' },
      'Repository size, last push and last pull come from the ECR API and are not shown yet.'),
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
      // each tag's digest: HEAD of the manifest (what `docker pull` asks first)
      await Promise.all(cells.map(async ([t, cell]) => {
        try {
          const r = await api('/v2/' + name + '/manifests/' + t, pullScope(name),
            { method: 'HEAD', headers: { Accept: MANIFEST_TYPES.join(', ') } });
          cell.textContent = r.headers.get('Docker-Content-Digest') || '?';
        } catch (err) {
          cell.textContent = err instanceof ApiError ? 'error ' + err.status : 'error';
        }
      }));
      if (g === gen) ready();
    } catch (err) {
      fail(err, name, g);
    }
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

  // Asks for confirmation, then DELETE /v2/<name>/manifests/<ref> with a token for the delete action.
  function remove(name, ref, what) {
    const dlg = $('confirm');
    $('confirm-text').textContent = 'Delete ' + what + ' from ' + name + '? This cannot be undone.';
    dlg.returnValue = '';
    dlg.onclose = async () => {
      if (dlg.returnValue !== 'ok') return;
      try {
        await api('/v2/' + name + '/manifests/' + ref, 'repository:' + name + ':delete', { method: 'DELETE' });
        notice = 'Deleted ' + what + ' from ' + name + '.';
        location.hash = route('repo', { n: name });
      } catch (err) {
        main().prepend(errorBox(err.status === 401 || err.status === 403
          ? new Error('you may not delete in ' + name) : err));
      }
    };
    dlg.showModal();
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
