/* The process explorer: reads the JSON API of the page's own URL with fetch()
 * from the same origin and renders it. Every string that comes from a
 * process is inserted as text (textContent / text nodes), never as markup.
 * It polls only while the page is visible; the server does nothing for it
 * otherwise. */
'use strict';
(function () {
    const body = document.body;
    const BASE = body.dataset.base || '';
    const ALLOW = new Set((body.dataset.allow || '').split(' ').filter(Boolean));
    const OTHER_USERS = body.dataset.allUsers === '1';
    const LIST_EVERY_MS = 3000, DETAIL_EVERY_MS = 5000;
    const JSON_HDRS = { Accept: 'application/json' };

    /* ------------------------------------------------------------ DOM */

    /* el('td', {class: 'n'}, 'text', node): children are text or nodes */
    function el(tag, props, ...kids) {
        const e = document.createElement(tag);
        for (const [k, v] of Object.entries(props || {})) {
            if (v == null || v === false)
                continue;
            if (k === 'class')
                e.className = v;
            else if (k.startsWith('on'))
                e.addEventListener(k.slice(2), v);
            else
                e.setAttribute(k, v === true ? '' : String(v));
        }
        for (const kid of kids.flat(4))
            if (kid != null)
                e.append(kid instanceof Node ? kid : String(kid));
        return e;
    }

    /* A link only to a page of this explorer: hrefs come from the server,
     * but nothing that is not ours becomes a link. */
    function pageLink(href, text) {
        let u;
        try { u = new URL(href, location.href); } catch (e) { return text; }
        if (u.origin !== location.origin || !u.pathname.startsWith(BASE))
            return text;
        return el('a', { href: u.pathname + (/^#[a-z_]+$/.test(u.hash) ? u.hash : '') }, text);
    }

    async function getJSON(url) {
        const r = await fetch(url, { headers: JSON_HDRS, cache: 'no-store', credentials: 'same-origin' });
        let data = null;
        try { data = await r.json(); } catch (e) { /* not JSON */ }
        if (!r.ok)
            throw new Error((data && data.Message) || `${r.status} ${r.statusText}`);
        return data;
    }

    /* ------------------------------------------------------- formatting */

    const BYTES = /(^|_)(memory|working_set|rss|vms|shared|text|data|swap|size)$|_bytes$/;

    function fmtBytes(n) {
        if (typeof n !== 'number' || n < 0)
            return '—';
        const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
        let i = 0;
        while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
        return (i === 0 ? String(n) : n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)) + ' ' + u[i];
    }

    /* .NET TimeSpan "[d.]hh:mm:ss.fffffff" -> seconds */
    const TIMESPAN = /^(?:(\d+)\.)?(\d\d):(\d\d):(\d\d)(?:\.(\d+))?$/;
    function spanSeconds(s) {
        const m = TIMESPAN.exec(s || '');
        if (!m)
            return null;
        return (+(m[1] || 0)) * 86400 + (+m[2]) * 3600 + (+m[3]) * 60 + (+m[4])
            + (m[5] ? +('0.' + m[5]) : 0);
    }
    function fmtSeconds(x) {
        if (x == null)
            return '—';
        if (x < 60)
            return x.toFixed(2) + ' s';
        const d = Math.floor(x / 86400), h = Math.floor(x / 3600) % 24, m = Math.floor(x / 60) % 60;
        const s = Math.floor(x % 60);
        return (d ? d + ' d ' : '') + (d || h ? h + ' h ' : '') + m + ' min ' + s + ' s';
    }

    /* ISO-8601 UTC with up to 7 fraction digits -> ms since the epoch */
    const ISO = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?Z$/;
    function isoMs(s) {
        const m = ISO.exec(s || '');
        if (!m)
            return null;
        return Date.UTC(+m[1], m[2] - 1, +m[3], +m[4], +m[5], +m[6]) + (m[7] ? +('0.' + m[7]) * 1000 : 0);
    }
    function pad(n) { return String(n).padStart(2, '0'); }
    function fmtLocal(ms) {
        const d = new Date(ms), now = new Date();
        const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
        return d.toDateString() === now.toDateString() ? time
            : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
    }
    function fmtAgo(ms) {
        const s = Math.max(0, (Date.now() - ms) / 1000);
        if (s < 90) return Math.round(s) + ' s ago';
        if (s < 5400) return Math.round(s / 60) + ' min ago';
        if (s < 172800) return Math.round(s / 3600) + ' h ago';
        return Math.round(s / 86400) + ' days ago';
    }
    function timeCell(s) {
        const ms = isoMs(s);
        return ms == null ? (s || '—') : el('span', { title: s }, fmtLocal(ms), ' · ', fmtAgo(ms));
    }
    function fmtPct(p) { return p == null ? '—' : p.toFixed(p < 10 ? 1 : 0) + ' %'; }
    function label(key) { return key.replace(/_/g, ' '); }

    /* Any JSON value in human form, as nodes: what later versions of the
     * server add shows up without changes here. */
    function human(key, v) {
        if (v == null)
            return '—';
        if (typeof v === 'boolean')
            return v ? 'yes' : 'no';
        if (typeof v === 'number')
            return BYTES.test(key) ? el('span', { title: v + ' bytes' }, fmtBytes(v))
                : Number.isInteger(v) ? v.toLocaleString('en-US') : String(Math.round(v * 1000) / 1000);
        if (typeof v === 'string') {
            if (ISO.test(v))
                return timeCell(v);
            if (TIMESPAN.test(v))
                return el('span', { title: v }, fmtSeconds(spanSeconds(v)));
            if (/^https?:\/\//.test(v))
                return pageLink(v, v);
            return v;
        }
        if (Array.isArray(v)) {
            if (!v.length)
                return el('span', { class: 'note' }, 'none');
            if (v.every(x => x && typeof x === 'object' && !Array.isArray(x)))
                return objectTable(v);
            return el('ul', { class: 'plain' }, v.map(x => el('li', null, human(key, x))));
        }
        return el('dl', null, Object.entries(v).map(([k, x]) => [el('dt', null, label(k)), el('dd', null, human(k, x))]));
    }

    /* An array of objects as a table whose columns are all keys present. */
    function objectTable(rows) {
        const cols = [];
        for (const r of rows)
            for (const k of Object.keys(r))
                if (!cols.includes(k))
                    cols.push(k);
        return el('div', { class: 'scroll' }, el('table', null,
            el('thead', null, el('tr', null, cols.map(c => el('th', null, label(c))))),
            el('tbody', null, rows.map(r => el('tr', null, cols.map(c => el('td', null, human(c, r[c]))))))));
    }

    /* ------------------------------------------------------- live CPU % */

    /* pid -> the previous sample; a reused pid has another start time */
    const samples = new Map();
    function cpuSeconds(p) {
        if (p.cpu_times && typeof p.cpu_times.user === 'number')
            return p.cpu_times.user + p.cpu_times.system;
        return spanSeconds(p.total_cpu_time);
    }
    function cpuPercent(p, fallbackMs) {
        const t = isoMs(p.time_stamp) ?? fallbackMs, cpu = cpuSeconds(p);
        const prev = samples.get(p.id);
        samples.set(p.id, { t, cpu, start: p.start_time });
        if (!prev || prev.start !== p.start_time || cpu == null || prev.cpu == null || t <= prev.t)
            return null;
        return Math.max(0, (cpu - prev.cpu) / ((t - prev.t) / 1000) * 100);
    }

    /* Polls fn while the page is visible, never two at once. */
    function poll(fn, every) {
        let timer = null, running = false;
        async function tick() {
            timer = null;
            if (document.visibilityState !== 'visible' || running)
                return;
            running = true;
            try { await fn(); } finally { running = false; }
            if (!timer)
                timer = setTimeout(tick, every);
        }
        document.addEventListener('visibilitychange', () => {
            if (document.visibilityState === 'visible' && !timer && !running)
                tick();
        });
        tick();
        return () => { if (!timer && !running) timer = setTimeout(tick, 0); };
    }

    /* ------------------------------------------------------------- list */

    const COLUMNS = [
        { key: 'id', title: 'pid', cls: 'n', get: p => p.id },
        { key: 'name', title: 'name', get: p => (p.name || '').toLowerCase() },
        { key: 'user', title: 'user', cls: 'col-user', get: p => p.user_name || '' },
        { key: 'state', title: 'state', get: p => p.state || '' },
        { key: 'cpu', title: 'CPU %', cls: 'n cpu', get: p => p.cpu ?? -1 },
        { key: 'ws', title: 'working set', cls: 'n', get: p => p.working_set ?? -1 },
        { key: 'threads', title: 'threads', cls: 'n col-threads', get: p => p.thread_count ?? -1 },
        { key: 'start', title: 'started', cls: 'col-start', get: p => p.start_time || '' },
        { key: 'role', title: 'role', cls: 'col-role', get: p => roleText(p) },
    ];
    const DEFAULT_DESC = new Set(['cpu', 'ws', 'threads']);

    function roleText(p) {
        if (p.httpd_role == null)
            return '';
        return [p.httpd_role, p.httpd_slot != null ? 'slot ' + p.httpd_slot : null,
            p.httpd_generation != null ? 'gen ' + p.httpd_generation : null].filter(x => x != null).join(' · ');
    }

    function listView() {
        const params = new URLSearchParams(location.search);
        const st = {
            all: OTHER_USERS && params.get('allUsers') === 'true',
            filter: params.get('filter') || '', sort: 'name', desc: false,
            procs: [], collapsed: new Set(), error: null, updated: null,
        };
        const h1 = el('h1', null, 'Processes');
        const filter = el('input', {
            type: 'search', id: 'filter', placeholder: 'Filter: name, pid, user, state', 'aria-label': 'Filter processes',
            value: st.filter, oninput: () => { st.filter = filter.value; render(); },
        });
        const status = el('span', { class: 'note', id: 'status', 'aria-live': 'polite' });
        const bar = el('div', { class: 'bar' }, filter);
        if (OTHER_USERS)
            bar.append(el('label', null, el('input', {
                type: 'checkbox', id: 'all-users', checked: st.all,
                onchange: e => { st.all = e.target.checked; samples.clear(); refreshNow(); },
            }), ' all users'));
        bar.append(status);
        const thead = el('thead');
        const tbody = el('tbody');
        body.append(h1, bar, el('div', { class: 'scroll' }, el('table', { id: 'procs' }, thead, tbody)));

        function header() {
            thead.replaceChildren(el('tr', null, COLUMNS.map(c => el('th', {
                class: c.cls, scope: 'col',
                'aria-sort': st.sort === c.key ? (st.desc ? 'descending' : 'ascending') : null,
            }, el('button', {
                type: 'button', 'data-sort': c.key,
                onclick: () => {
                    if (st.sort === c.key) st.desc = !st.desc;
                    else { st.sort = c.key; st.desc = DEFAULT_DESC.has(c.key); }
                    header(); render();
                },
            }, c.title)))));
        }

        function matches(p, q) {
            return [String(p.id), p.name, p.user_name, p.state, roleText(p)]
                .some(s => s && s.toLowerCase().includes(q));
        }

        /* Children under their parent; a process whose parent is not in the
         * answer (another user's, or outside the Location's scope) goes under
         * one placeholder per such parent. */
        function tree() {
            const byPid = new Map(st.procs.map(p => [p.id, p]));
            const kids = new Map(), hidden = new Map(), roots = [];
            for (const p of st.procs) {
                if (byPid.has(p.parent_id) && p.parent_id !== p.id) {
                    if (!kids.has(p.parent_id)) kids.set(p.parent_id, []);
                    kids.get(p.parent_id).push(p);
                } else if (p.parent_id > 0) {
                    if (!hidden.has(p.parent_id))
                        hidden.set(p.parent_id, { placeholder: true, id: p.parent_id, kids: [] });
                    hidden.get(p.parent_id).kids.push(p);
                } else
                    roots.push(p);
            }
            return { kids, roots, hidden: [...hidden.values()].sort((a, b) => a.id - b.id) };
        }

        function sorted(list) {
            const col = COLUMNS.find(c => c.key === st.sort);
            return list.slice().sort((a, b) => {
                const x = col.get(a), y = col.get(b);
                const c = x < y ? -1 : x > y ? 1 : a.id - b.id;
                return st.desc ? -c : c;
            });
        }

        function toggle(key, what, n) {
            if (!n)
                return el('span', { class: 'leaf' });
            const open = !st.collapsed.has(key) || !!st.filter;
            return el('button', {
                type: 'button', 'aria-expanded': String(open), 'data-key': key,
                'aria-label': (open ? 'Collapse ' : 'Expand ') + what,
                title: `${n} ${n === 1 ? 'child' : 'children'}`,
                onclick: () => { st.collapsed.has(key) ? st.collapsed.delete(key) : st.collapsed.add(key); render(); },
            }, open ? '▾' : '▸');
        }

        function row(p, depth, t, keep) {
            const n = (t.kids.get(p.id) || []).length;
            const cells = COLUMNS.map(c => {
                let v;
                switch (c.key) {
                case 'id':
                    return el('td', { class: 'n tree' }, toggle('p' + p.id, `process ${p.id}`, n), p.id);
                case 'name': v = pageLink(`${BASE}/${p.id}`, p.name); break;
                case 'user': v = p.user_name; break;
                case 'state': v = p.state; break;
                case 'cpu': v = fmtPct(p.cpu); break;
                case 'ws': v = el('span', { title: p.working_set + ' bytes' }, fmtBytes(p.working_set)); break;
                case 'threads': v = p.thread_count; break;
                case 'start': v = timeCell(p.start_time); break;
                case 'role': v = roleText(p); break;
                }
                return el('td', { class: c.cls }, v);
            });
            const tr = el('tr', { 'data-pid': p.id, 'data-depth': depth, class: [keep === 'ctx' ? 'ctx' : '', p.cpu >= 50 ? 'hot' : ''].join(' ').trim() || null }, cells);
            tr.firstChild.style.paddingLeft = (0.6 + depth * 1.2) + 'em';
            return tr;
        }

        function render() {
            const q = st.filter.trim().toLowerCase();
            const t = tree();
            /* with a filter: the matches, and their ancestors for context */
            const keep = new Map();
            const parentOf = new Map();
            for (const [ppid, list] of t.kids) for (const c of list) parentOf.set(c.id, ppid);
            for (const h of t.hidden) for (const c of h.kids) parentOf.set(c.id, 'h' + h.id);
            for (const p of st.procs) {
                if (q && !matches(p, q))
                    continue;
                keep.set(p.id, 'match');
                for (let a = parentOf.get(p.id); a != null && !keep.has(a); a = parentOf.get(a))
                    keep.set(a, 'ctx');
            }
            const rows = [];
            const walk = (list, depth) => {
                for (const p of sorted(list)) {
                    if (!keep.has(p.id))
                        continue;
                    rows.push(row(p, depth, t, keep.get(p.id)));
                    if (!st.collapsed.has('p' + p.id) || q)
                        walk(t.kids.get(p.id) || [], depth + 1);
                }
            };
            walk(t.roots, 0);
            for (const h of t.hidden) {
                if (!keep.has('h' + h.id))
                    continue;
                const key = 'h' + h.id;
                rows.push(el('tr', { class: 'ph', 'data-placeholder': h.id },
                    el('td', { class: 'n tree' }, toggle(key, `the children of hidden process ${h.id}`, h.kids.length), h.id),
                    el('td', { colspan: COLUMNS.length - 1 }, 'parent not shown (another user’s, or outside this location’s scope)')));
                if (!st.collapsed.has(key) || q)
                    walk(h.kids, 1);
            }
            const focused = document.activeElement && document.activeElement.dataset
                ? document.activeElement.dataset.key : null;
            tbody.replaceChildren(...rows);
            if (focused) {
                const again = tbody.querySelector(`button[data-key="${CSS.escape(focused)}"]`);
                if (again) again.focus();
            }
            const shown = rows.filter(r => r.dataset.pid).length;
            status.replaceChildren(st.error ? el('span', { class: 'err' }, st.error) : '',
                ` ${shown} of ${st.procs.length} processes`,
                st.updated ? ` · updated ${fmtLocal(st.updated)}` : '');
        }

        async function refresh() {
            try {
                const list = await getJSON(BASE + (st.all ? '?allUsers=true' : ''));
                const now = Date.now();
                for (const p of list)
                    p.cpu = cpuPercent(p, now);
                st.procs = list;
                st.error = null;
                st.updated = now;
                const machine = list.length ? list[0].machineName : location.host;
                h1.textContent = `Processes on ${machine}`;
                document.title = `Processes — ${machine}`;
            } catch (e) {
                st.error = e.message;
            }
            render();
        }

        header();
        const refreshNow = poll(refresh, LIST_EVERY_MS);
    }

    /* --------------------------------------------------------- requests */

    /* "Class::function file:line" of a where object or a language frame */
    function frameText(f) {
        if (!f || f.function == null)
            return null;
        return (f.class ? f.class + '::' : '') + f.function
            + (f.file ? `  ${f.file}${f.line != null ? ':' + f.line : ''}` : '');
    }

    /* Where a request's code is: the backend it is proxied to and the frame
     * of whoever serves it, with links to that process and its stacks. */
    function whereCell(q) {
        const be = q.backend, w = q.where, out = [];
        if (be)
            out.push(el('div', { class: 'note' }, be.remote
                ? `remote ${be.transport || ''} ${be.address || ''}`
                : [`${be.transport || ''} ${be.address || ''} → `,
                    be.pid != null ? pageLink(be.process, `pid ${be.pid}`) : '?',
                    be.user ? ` (${be.user})` : '']));
        if (w) {
            if (w.error)
                out.push(el('div', { class: 'note' }, w.error));
            else {
                const top = frameText(w);
                out.push(el('div', null, el('code', null, top || 'no frames'),
                    w.runtime && w.runtime.name ? el('span', { class: 'note' }, `  ${w.runtime.name} ${w.runtime.version || ''}`) : null));
                if (w.request && w.request.method)
                    out.push(el('div', { class: 'note' },
                        `runtime's request: ${w.request.method} ${w.request.uri || ''}${w.request.query ? '?' + w.request.query : ''}`));
            }
            out.push(el('div', null, pageLink(w.process, `process ${w.pid}`), ' · ',
                pageLink(w.process + '#stacks', 'stacks')));
        }
        return out.length ? out : '—';
    }

    function requestsView() {
        const withStacks = ALLOW.has('stacks');
        const h1 = el('h1', null, 'Requests in flight');
        const status = el('span', { class: 'note', id: 'status', 'aria-live': 'polite' });
        const tbody = el('tbody');
        document.title = 'Requests in flight';
        body.append(h1, el('div', { class: 'bar' },
            el('a', { href: BASE || '/' }, 'all processes'),
            ALLOW.has('captures') ? [' · ', el('a', { href: `${BASE}/captures` }, 'captures')] : null, status),
            el('div', { class: 'scroll' }, el('table', { id: 'requests' },
                el('thead', null, el('tr', null, ['age', 'request', 'client', 'where', 'worker']
                    .map(t => el('th', { class: t === 'age' ? 'n' : null }, t)))), tbody)));

        async function refresh() {
            let d;
            try {
                d = await getJSON(`${BASE}/requests${withStacks ? '?stacks=1' : ''}`);
            } catch (e) {
                status.replaceChildren(el('span', { class: 'err' }, e.message));
                return;
            }
            tbody.replaceChildren(...(d.requests || []).map(q => el('tr', null,
                el('td', { class: 'n' }, fmtSeconds(q.seconds)),
                el('td', null, el('code', null, `${q.method || ''} ${q.uri || ''}`),
                    q.vhost ? el('div', { class: 'note' }, q.vhost) : null),
                el('td', null, q.client || '—'),
                el('td', null, whereCell(q)),
                el('td', { class: 'n' }, pageLink(q.process, String(q.pid)),
                    q.tid != null ? el('div', { class: 'note' }, `thread ${q.tid}`) : null))));
            if (!d.requests || !d.requests.length)
                tbody.replaceChildren(el('tr', { class: 'ph' }, el('td', { colspan: 5 }, 'No request in flight.')));
            status.textContent = `${(d.requests || []).length} requests, oldest first`
                + (d.extended_status ? '' : ' (ExtendedStatus is off: states only)')
                + ` · updated ${fmtLocal(Date.now())}`;
        }
        poll(refresh, withStacks ? DETAIL_EVERY_MS : LIST_EVERY_MS);
        if (ALLOW.has('profile'))
            body.append(el('h2', null, 'Where the time goes: the whole site'), ...profileView(`${BASE}/profile`));
    }

    /* --------------------------------------------------------- captures */

    /* What the capture rules took (P/captures), newest first: each with its
     * rule, trigger, process and request, its artifacts as downloads, and
     * a Remove button. */
    function capturesView() {
        const h1 = el('h1', null, 'Captures');
        const status = el('span', { class: 'note', id: 'status', 'aria-live': 'polite' });
        const tbody = el('tbody');
        document.title = 'Captures';
        body.append(h1, el('div', { class: 'bar' },
            el('a', { href: BASE || '/' }, 'all processes'), ' · ',
            el('a', { href: `${BASE}/requests` }, 'requests in flight'), status),
            el('div', { class: 'scroll' }, el('table', { id: 'captures' },
                el('thead', null, el('tr', null, ['time', 'rule', 'trigger', 'process', 'request', 'artifacts', '']
                    .map(t => el('th', null, t)))), tbody)));

        async function remove(c, button) {
            button.disabled = true;
            try {
                const r = await fetch(`${BASE}/captures/${encodeURIComponent(c.id)}`,
                    { method: 'DELETE', headers: JSON_HDRS, credentials: 'same-origin' });
                if (r.status !== 204) {
                    let m = `${r.status} ${r.statusText}`;
                    try { m = (await r.json()).Message || m; } catch (e) { /* keep the status */ }
                    throw new Error(m);
                }
                await refresh();
            } catch (e) {
                button.disabled = false;
                status.replaceChildren(el('span', { class: 'err' }, 'Remove failed: ' + e.message));
            }
        }

        function row(c) {
            const q = c.request;
            const button = el('button', { type: 'button' }, 'Remove');
            button.addEventListener('click', () => remove(c, button));
            return el('tr', null,
                el('td', null, isoMs(c.time) != null ? fmtLocal(isoMs(c.time)) : '—',
                    el('div', { class: 'note' }, c.id)),
                el('td', null, c.rule),
                el('td', null, el('code', null, c.trigger || ''),
                    c.detail ? el('div', { class: 'note' }, c.detail) : null),
                el('td', { class: 'n' }, c.pid != null ? pageLink(`${BASE}/${c.pid}`, String(c.pid)) : '—'),
                el('td', null, q ? [el('code', null, q.uri || q.request || ''),
                    q.vhost ? el('div', { class: 'note' }, q.vhost) : null,
                    q.backend && q.backend.pid != null
                        ? el('div', { class: 'note' }, `served by ${q.backend.name || ''} ${q.backend.pid} for worker ${q.pid}`)
                        : null] : '—'),
                el('td', null, (c.artifacts || []).map(a => el('div', null,
                    pageLink(a.href, a.name), el('span', { class: 'note' }, `  ${fmtBytes(a.size)}`)))),
                el('td', null, button));
        }

        async function refresh() {
            let d;
            try {
                d = await getJSON(`${BASE}/captures`);
            } catch (e) {
                status.replaceChildren(el('span', { class: 'err' }, e.message));
                return;
            }
            tbody.replaceChildren(...(d || []).map(row));
            if (!d || !d.length)
                tbody.replaceChildren(el('tr', { class: 'ph' }, el('td', { colspan: 7 }, 'No capture yet.')));
            status.textContent = `${(d || []).length} captures, newest first · updated ${fmtLocal(Date.now())}`;
        }
        poll(refresh, LIST_EVERY_MS);
    }

    /* A sampled profile (of url: a process's or the site's) as a flame graph
     * (root on top): folded stacks ("frame;frame count" a line) into a tree
     * of nested boxes whose widths are their share of the samples; a frame
     * is text, its title gives its share; a click zooms into it; the filter
     * keeps the stacks with a frame that contains its text, the URL list
     * those of one request (their root frame, "[url VHOST URI]"). */
    function profileView(url) {
        const secs = el('select', { id: 'prof-secs', 'aria-label': 'Seconds' },
            [5, 10, 30].map(n => el('option', { value: n }, `${n} s`)));
        const go = el('button', { type: 'button', id: 'prof-go', onclick: run }, 'Profile');
        const filter = el('input', { type: 'search', id: 'prof-filter', placeholder: 'Keep stacks with…',
            'aria-label': 'Keep the stacks with a frame containing', oninput: () => draw() });
        const urls = el('select', { id: 'prof-url', 'aria-label': 'Request', hidden: true, onchange: () => draw() });
        const note = el('p', { class: 'note' }, 'Samples the running threads (99 Hz) for the time chosen.');
        const graph = el('div', { id: 'flame', class: 'flame' });
        let stacks = [], zoom = [];
        async function run() {
            go.disabled = true;
            note.className = 'note';
            note.textContent = `Sampling for ${secs.value} s…`;
            try {
                const r = await fetch(`${url}?seconds=${secs.value}&format=folded`,
                    { cache: 'no-store', credentials: 'same-origin' });
                const t = await r.text();
                if (!r.ok) {
                    let m = `${r.status} ${r.statusText}`;
                    try { m = JSON.parse(t).Message || m; } catch (e) { /* not JSON */ }
                    throw new Error(m);
                }
                stacks = t.split('\n').map(l => /^(.*) (\d+)$/.exec(l)).filter(Boolean)
                    .map(m => [m[1].split(';'), +m[2]]);
                const by = new Map();
                for (const [fr, n] of stacks)
                    if (fr[0].startsWith('[url '))
                        by.set(fr[0], (by.get(fr[0]) || 0) + n);
                urls.replaceChildren(el('option', { value: '' }, 'every request'),
                    ...[...by].sort((a, b) => b[1] - a[1]).map(([u, n]) => el('option', { value: u }, `${u.slice(5, -1)} (${n})`)));
                urls.hidden = !by.size;
                zoom = [];
                note.textContent = (r.headers.get('X-DiagProc-Profile') || '').replace(/; /g, ', ');
                draw();
            } catch (e) {
                note.className = 'err';
                note.textContent = e.message;
            }
            go.disabled = false;
        }
        function draw() {
            const q = filter.value.trim().toLowerCase();
            const root = { name: 'all', n: 0, kids: new Map() };
            for (const [fr, n] of stacks) {
                if ((q && !fr.some(f => f.toLowerCase().includes(q))) || (urls.value && fr[0] !== urls.value))
                    continue;
                if (zoom.some((z, i) => fr[i] !== z))
                    continue;
                let t = root;
                t.n += n;
                for (const f of fr.slice(zoom.length)) {
                    if (!t.kids.has(f))
                        t.kids.set(f, { name: f, n: 0, kids: new Map() });
                    t = t.kids.get(f);
                    t.n += n;
                }
            }
            if (zoom.length)
                root.name = zoom[zoom.length - 1];
            const total = root.n;
            let left = 2000;
            const box = (t, path, share) => {
                const pct = (100 * t.n / total).toFixed(1) + ' %';
                const f = el('button', { type: 'button', class: 'fg-f', title: `${t.name}\n${pct} (${t.n} samples)`,
                    onclick: () => { zoom = path.length ? zoom.concat(path) : zoom.slice(0, -1); draw(); } },
                    t.name);
                const kids = el('div', { class: 'fg-k' }, [...t.kids.values()].sort((a, b) => b.n - a.n)
                    .filter(k => k.n / total >= 0.002 && left-- > 0)
                    .map(k => box(k, path.concat(k.name), k.n / t.n)));
                const n = el('div', { class: 'fg-n' }, f, kids);
                n.style.width = (100 * share) + '%';
                return n;
            };
            graph.replaceChildren(total ? box(root, [], 1) : el('p', { class: 'note' }, stacks.length ? 'No stack matches.' : ''));
        }
        return [el('div', { class: 'bar' }, secs, go, urls, filter), note, el('div', { class: 'scroll' }, graph)];
    }


    /* ----------------------------------------------------------- detail */

    /* fields shown in the summary, in this order, with their label */
    const SUMMARY = [
        ['state', 'state'], ['user_name', 'user'], ['parent', 'parent'], ['children', 'children'],
        ['command_line', 'command line'], ['file_name', 'executable'], ['cwd', 'working directory'],
        ['start_time', 'started'], ['cpu', 'CPU %'], ['total_cpu_time', 'CPU time'],
        ['user_cpu_time', 'user CPU time'], ['privileged_cpu_time', 'system CPU time'],
        ['working_set', 'working set'], ['peak_working_set', 'peak working set'],
        ['private_memory', 'private memory'], ['virtual_memory', 'virtual memory'],
        ['peak_virtual_memory', 'peak virtual memory'], ['paged_memory', 'swapped'],
        ['thread_count', 'threads'], ['handle_count', 'open files'], ['module_count', 'modules'],
        ['nice', 'nice'], ['uids', 'uids'], ['gids', 'gids'], ['memory_info', 'memory (psutil)'],
        ['io_counters', 'I/O'], ['num_ctx_switches', 'context switches'], ['cgroup', 'cgroup'],
        ['time_stamp', 'as of'],
    ];
    /* shown elsewhere, or the same value under another name */
    const NOT_SUMMARY = new Set(['id', 'name', 'machineName', 'href', 'minidump', 'threads',
        'open_file_handles', 'modules', 'environment_variables', 'ppid', 'num_fds', 'cpu_times',
        'create_time', 'cmdline', 'paged_system_memory', 'non_paged_system_memory', 'peak_paged_memory',
        'cpu_percent']);

    const TAB_TITLES = { httpd_threads: 'Requests being served' };

    /* Runs fn over items, a few at a time (the server has few workers). */
    async function each(items, n, fn) {
        let i = 0;
        const lanes = Array.from({ length: Math.min(n, items.length) }, async () => {
            while (i < items.length) { const k = i++; await fn(items[k], k); }
        });
        await Promise.all(lanes);
    }

    function detailView(pid) {
        let url = `${BASE}/${pid}`;     /* 0 (this httpd process) becomes its real pid */
        const h1 = el('h1', null, `Process ${pid}`);
        const back = el('p', null, el('a', { href: BASE, id: 'back' }, '← all processes'));
        const msg = el('p', { id: 'message', role: 'status' });
        const actions = el('div', { class: 'actions' });
        const summary = el('dl', { id: 'summary' });
        const tabs = el('div', { role: 'tablist', 'aria-label': 'Process details' });
        const panel = el('div', { role: 'tabpanel', id: 'panel', tabindex: '0' });
        body.append(back, h1, msg, actions, summary, tabs, panel);
        let proc = null, tabList = [], current = null;

        function renderSummary() {
            const rows = [];
            const shown = new Set();
            for (const [k, title] of SUMMARY) {
                shown.add(k);
                if (!(k in proc))
                    continue;
                let v = proc[k];
                if (k === 'cpu') v = fmtPct(v);
                else if (k === 'children') v = v.length ? v.map(h => [pageLink(h, h.replace(/.*\//, '')), ' ']) : 'none';
                else if (k === 'parent') v = /\/-1$/.test(v) ? `${proc.ppid} (not shown here)` : pageLink(v, String(proc.ppid));
                else v = human(k, v);
                rows.push(el('dt', null, title), el('dd', { 'data-field': k }, v));
            }
            /* anything else the server sends (httpd_role, slot, …) */
            for (const [k, v] of Object.entries(proc))
                if (!shown.has(k) && !NOT_SUMMARY.has(k) && !isTabField(k, v))
                    rows.push(el('dt', null, label(k)), el('dd', { 'data-field': k }, human(k, v)));
            summary.replaceChildren(...rows);
        }

        function isTabField(k, v) {
            return Array.isArray(v) && v.length > 0 && v.every(x => x && typeof x === 'object');
        }

        function dumpButtons() {
            if (!ALLOW.has('dump'))
                return null;
            const kinds = [['minimal', 0]];
            if (ALLOW.has('fulldump'))
                kinds.push(['with data', 1], ['full', 2]);
            /* a plain link: the browser saves it under the server's file name */
            return el('div', { class: 'dumps' }, el('table', null,
                el('caption', { class: 'note' }, 'Download a dump'),
                kinds.map(([name, type]) => el('tr', null, el('th', { scope: 'row' }, name),
                    ['raw', 'zip'].map(fmt => el('td', null, el('a', {
                        class: 'button', download: true, 'data-dump': `${type}-${fmt}`,
                        href: `${BASE}/${proc.id}/dump?dumpType=${type}&format=${fmt}`,
                    }, fmt === 'raw' ? 'core' : 'zip')))))));
        }

        function killButton() {
            if (!ALLOW.has('kill'))
                return null;
            return el('button', { type: 'button', class: 'danger', id: 'kill', onclick: confirmKill }, 'Kill…');
        }

        /* The tree that will die: this process and its descendants, as the
         * list shows them now. */
        async function descendants() {
            let list = [];
            try { list = await getJSON(BASE + (OTHER_USERS ? '?allUsers=true' : '')); } catch (e) { /* only the root */ }
            const kids = new Map();
            for (const p of list) {
                if (!kids.has(p.parent_id)) kids.set(p.parent_id, []);
                kids.get(p.parent_id).push(p);
            }
            const out = [{ id: proc.id, name: proc.name, depth: 0 }];
            const walk = (id, depth) => {
                for (const c of kids.get(id) || []) { out.push({ id: c.id, name: c.name, depth }); walk(c.id, depth + 1); }
            };
            walk(proc.id, 1);
            return out;
        }

        async function confirmKill() {
            const tree = await descendants();
            const n = tree.length;
            const dlg = el('dialog', { id: 'confirm-kill', 'aria-labelledby': 'kill-title' },
                el('h2', { id: 'kill-title' }, n === 1 ? `Kill process ${proc.id}?` : `Kill process ${proc.id} and its ${n - 1} descendants?`),
                el('p', null, 'These processes will be stopped, then killed (SIGKILL):'),
                el('ul', { id: 'kill-tree' }, tree.map(p => el('li', { 'data-pid': p.id }, '\u00a0'.repeat(p.depth * 3), `${p.name} (${p.id})`))),
                el('form', { method: 'dialog', class: 'bar' },
                    el('button', { value: 'cancel', id: 'kill-cancel', autofocus: true }, 'Cancel'),
                    el('button', { value: 'kill', class: 'danger', id: 'kill-confirm' }, n === 1 ? 'Kill 1 process' : `Kill ${n} processes`)));
            body.append(dlg);
            dlg.addEventListener('close', async () => {
                const go = dlg.returnValue === 'kill';
                dlg.remove();
                if (go)
                    await kill();
            });
            dlg.showModal();
        }

        async function kill() {
            msg.className = 'note';
            msg.textContent = `Killing ${proc.id}…`;
            try {
                const r = await fetch(`${BASE}/${proc.id}`, { method: 'DELETE', headers: JSON_HDRS, credentials: 'same-origin' });
                if (r.status !== 204) {
                    let m = `${r.status} ${r.statusText}`;
                    try { m = (await r.json()).Message || m; } catch (e) { /* keep the status */ }
                    throw new Error(m);
                }
                msg.textContent = `Process ${proc.id} and its descendants were killed.`;
                setTimeout(() => { location.href = BASE; }, 800);
            } catch (e) {
                msg.className = 'err';
                msg.textContent = 'Kill failed: ' + e.message;
            }
        }

        /* ---- tabs: each renders into the panel when chosen ---- */

        function threadsTab() {
            const rows = proc.threads || [];
            const table = el('tbody');
            const MAX = 256;
            const render = (list) => table.replaceChildren(...list.map(t => el('tr', { 'data-tid': t.id },
                el('td', { class: 'n' }, t.id), el('td', null, t.name ?? ''), el('td', null, t.state),
                el('td', { class: 'n' }, t.total_processor_time ? fmtSeconds(spanSeconds(t.total_processor_time)) : ''),
                el('td', { class: 'mono' }, t.wait_reason ?? ''), el('td', null, t.priority_level ?? ''))));
            const full = rows.map(t => Object.assign({}, t));
            render(full);
            each(full.slice(0, MAX), 4, async (t, i) => {
                try { Object.assign(full[i], await getJSON(t.href)); } catch (e) { /* exited meanwhile */ }
            }).then(() => { if (current === 'threads') render(full); });
            return [rows.length > MAX ? el('p', { class: 'note' }, `details of the first ${MAX} threads`) : null,
                el('div', { class: 'scroll' }, el('table', { id: 'threads' },
                    el('thead', null, el('tr', null, ['tid', 'name', 'state', 'CPU time', 'wait channel', 'priority']
                        .map((c, i) => el('th', { class: i === 0 || i === 3 ? 'n' : null }, c)))), table))];
        }

        function modulesTab() {
            const rows = (proc.modules || []).map(m => Object.assign({}, m));
            const table = el('tbody');
            const MAX = 300;
            const render = () => table.replaceChildren(...rows.map(m => el('tr', null,
                el('td', { class: 'mono' }, m.file_path || m.file_name), el('td', { class: 'mono' }, m.base_address),
                el('td', null, m.file_version), el('td', { class: 'mono' }, m.build_id ?? ''),
                el('td', null, m.deleted == null ? '' : m.deleted ? 'deleted' : 'no'),
                el('td', { class: 'n' }, m.module_memory_size != null ? fmtBytes(m.module_memory_size) : ''))));
            render();
            each(rows.slice(0, MAX), 4, async (m, i) => {
                try { Object.assign(rows[i], await getJSON(m.href)); } catch (e) { /* unmapped meanwhile */ }
            }).then(() => { if (current === 'modules') render(); });
            return el('div', { class: 'scroll' }, el('table', { id: 'modules' },
                el('thead', null, el('tr', null, ['path', 'base', 'version', 'build id', 'deleted', 'size']
                    .map(c => el('th', null, c)))), table));
        }

        function filesTab() {
            const f = proc.open_file_handles;
            if (f == null)
                return el('p', { class: 'note' }, 'The open files of this process may not be read.');
            return el('ol', { id: 'files', class: 'mono' }, f.map(x => el('li', null, x)));
        }

        function envTab() {
            const env = proc.environment_variables;
            if (env == null)
                return el('p', { class: 'note' }, 'The environment of this process may not be read.');
            return el('div', { class: 'scroll' }, el('table', { id: 'environment' }, el('tbody', null,
                Object.keys(env).sort().map(k => el('tr', null, el('th', { class: 'mono' }, k), el('td', { class: 'mono' }, env[k]))))));
        }

        /* Native frames as a table; a language's frames (PHP, Python…) as
         * indented rows under the native frame that runs them (nativeIndex),
         * or at the end when that is not known. */
        function framesTable(frames, lang) {
            const cols = [];
            for (const f of frames)
                for (const [k, v] of Object.entries(f))
                    if (!cols.includes(k) && (v == null || typeof v !== 'object')) cols.push(k);
            const langRow = (l) => el('tr', { class: 'lang' }, el('td', { class: 'sub mono', colspan: cols.length },
                [l.class ? l.class + '::' : '', l.function ?? '?', l.file ? `  ${l.file}${l.line != null ? ':' + l.line : ''}` : '']));
            const rows = [];
            frames.forEach((f, i) => {
                rows.push(el('tr', null, cols.map(c => el('td', { class: c === 'index' ? 'n' : 'mono' }, f[c] == null ? '' : String(f[c])))));
                for (const l of lang)
                    if (l.nativeIndex === (f.index ?? i))
                        rows.push(langRow(l));
            });
            for (const l of lang)
                if (l.nativeIndex == null || l.nativeIndex >= frames.length)
                    rows.push(langRow(l));
            return el('table', { class: 'frames' },
                el('thead', null, el('tr', null, cols.map(c => el('th', null, label(c))))), el('tbody', null, rows));
        }

        function stacksTab() {
            const out = el('div', { id: 'stacks' }, el('p', { class: 'note' }, 'Taking the stacks (the process pauses for a moment)…'));
            const known = ['id', 'name', 'href', 'frames', 'languageFrames'];
            getJSON(`${BASE}/${proc.id}/stacks`).then(s => {
                const top = Object.entries(s).filter(([k, v]) => !['id', 'href', 'threads'].includes(k) && v != null);
                out.replaceChildren(...[el('p', null, el('button', { type: 'button', onclick: () => show('stacks') }, 'Take them again')),
                    top.length ? el('dl', null, top.map(([k, v]) => [el('dt', null, label(k)), el('dd', null, human(k, v))])) : null,
                    ...(s.threads || []).map(t => [
                        el('h2', null, `thread ${t.id}`, t.name ? ` (${t.name})` : ''),
                        ...Object.entries(t).filter(([k, v]) => !known.includes(k) && v != null && v !== false && typeof v !== 'object')
                            .map(([k, v]) => el('p', { class: 'note' }, `${label(k)}: `, human(k, v))),
                        framesTable(t.frames || [], t.languageFrames || []),
                    ])].flat(4).filter(Boolean));
            }).catch(e => out.replaceChildren(el('p', { class: 'err' }, e.message)));
            return out;
        }

        function fieldTab(key) {
            return () => objectTable(proc[key]);
        }

        function buildTabs() {
            tabList = [['threads', 'Threads', threadsTab], ['modules', 'Modules', modulesTab], ['files', 'Open files', filesTab]];
            if ('environment_variables' in proc)
                tabList.push(['environment', 'Environment', envTab]);
            if (ALLOW.has('stacks'))
                tabList.push(['stacks', 'Stacks', stacksTab]);
            if (ALLOW.has('profile'))
                tabList.push(['profile', 'Profile', () => profileView(`${BASE}/${proc.id}/profile`)]);
            /* fields a later server adds, such as the requests a worker serves */
            for (const [k, v] of Object.entries(proc))
                if (isTabField(k, v) && !['threads', 'modules'].includes(k))
                    tabList.push([k, TAB_TITLES[k] || label(k).replace(/^./, c => c.toUpperCase()), fieldTab(k)]);
            tabs.replaceChildren(...tabList.map(([key, title], i) => el('button', {
                type: 'button', role: 'tab', id: 'tab-' + key, 'data-tab': key, 'aria-controls': 'panel',
                'aria-selected': 'false', tabindex: i ? '-1' : '0', onclick: () => show(key),
                onkeydown: (e) => {
                    const d = e.key === 'ArrowRight' ? 1 : e.key === 'ArrowLeft' ? -1 : 0;
                    if (!d) return;
                    const next = tabList[(i + d + tabList.length) % tabList.length][0];
                    show(next);
                    document.getElementById('tab-' + next).focus();
                },
            }, title)));
        }

        function show(key) {
            current = key;
            for (const b of tabs.children) {
                const on = b.dataset.tab === key;
                b.setAttribute('aria-selected', String(on));
                b.tabIndex = on ? 0 : -1;
            }
            panel.setAttribute('aria-labelledby', 'tab-' + key);
            panel.replaceChildren(...[tabList.find(t => t[0] === key)[2]()].flat().filter(Boolean));
        }

        async function refresh() {
            let p;
            try {
                p = await getJSON(url);
            } catch (e) {
                msg.className = 'err';
                msg.textContent = e.message;
                return;
            }
            p.cpu = cpuPercent(p, Date.now());
            const first = !proc;
            proc = p;
            url = `${BASE}/${p.id}`;
            h1.textContent = `${p.name} (${p.id})`;
            document.title = `${p.name} (${p.id}) — ${p.machineName}`;
            renderSummary();
            if (first) {
                actions.replaceChildren(...[dumpButtons(), killButton()].filter(Boolean));
                buildTabs();
                /* #stacks and the like open that tab (the Requests page links so) */
                const want = location.hash.slice(1);
                show(tabList.some(t => t[0] === want) ? want : tabList[0][0]);
            }
        }

        poll(refresh, DETAIL_EVERY_MS);
    }

    /* ------------------------------------------------------------ start */

    const rest = location.pathname.slice(BASE.length).replace(/\/+$/, '');
    const m = /^\/(\d+)$/.exec(rest);
    if (m)
        detailView(+m[1]);
    else if (rest === '/requests')
        requestsView();
    else if (rest === '/captures')
        capturesView();
    else
        listView();
})();
