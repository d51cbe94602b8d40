// Drives Debian's chromium through the process explorer as a person would,
// and reports what it saw as one JSON line: {checks: [[name, ok, diag]], facts}.
// The test around it (t/integration/explorer.t) spawns the targets, checks
// the facts against /proc, gdb and the access log, and cleans up.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { open } from './session.mjs';

const { cfg, P, facts, check, browser, ctx, page, dialogs, pageErrors, finish } =
    await open({ viewport: { width: 1280, height: 860 }, acceptDownloads: true });
const origin = new URL(cfg.base).origin;
const requests = [];
ctx.on('request', r => requests.push(r.url()));

const byIdOf = rs => new Map(rs.map(r => [r.id, r]));
const row = pid => `#procs tr[data-pid="${pid}"]`;
// rows in order with their depth and their parent row (the nearest row above
// that is one level up), as the page shows them
const rows = () => page.$$eval('#procs tbody tr', trs => {
    const out = [], stack = [];
    for (const tr of trs) {
        const depth = +(tr.dataset.depth ?? 0);
        const id = tr.dataset.pid ? +tr.dataset.pid : 'ph' + tr.dataset.placeholder;
        stack[depth] = id;
        out.push({ id, depth, parent: depth ? stack[depth - 1] : null, cls: tr.className,
                   name: tr.children[1] ? tr.children[1].textContent : '',
                   state: tr.children[3] ? tr.children[3].textContent : '' });
    }
    return out;
});

try {
    // ---------------------------------------------------------------- list
    await page.goto(P);
    await page.waitForSelector(row(cfg.pids.small));
    check('a browser navigating to the list URL gets the explorer', await page.$('#procs'));
    facts.title = await page.title();
    let rs = await rows();
    const byId = new Map(rs.map(r => [r.id, r]));
    const tree = byId.get(cfg.pids.tree);
    check('the spawned tree root is listed', tree, JSON.stringify(rs.slice(0, 5)));
    for (const k of ['small', 'mid', 'big'])
        check(`child ${k} is nested under the tree root`, byId.get(cfg.pids[k])?.parent === cfg.pids.tree
              && byId.get(cfg.pids[k]).depth === tree.depth + 1, JSON.stringify(byId.get(cfg.pids[k])));
    if (cfg.hidden_parent) {
        const ph = byId.get('ph' + cfg.hidden_parent);
        check('orphans of a hidden parent sit under a placeholder row', ph && tree.parent === 'ph' + cfg.hidden_parent,
              JSON.stringify({ ph, tree }));
    }
    // the hostile name: literal text, no element made of it, no dialog
    const evil = byId.get(cfg.pids.evil);
    check('a process named like markup shows that literal text', evil && evil.name === cfg.evil_name,
          JSON.stringify(evil));
    check('…and no element is made of it', (await page.$$('img')).length === 0 && (await page.$$('script')).length === 1);
    // sort by working set: the children in that order, then reversed
    await page.click('th button[data-sort="ws"]');
    rs = await rows();
    let kids = rs.filter(r => r.parent === cfg.pids.tree).map(r => r.id);
    check('sorting by working set puts the biggest child first', JSON.stringify(kids)
          === JSON.stringify([cfg.pids.big, cfg.pids.mid, cfg.pids.small]), JSON.stringify(kids));
    facts.sort_attr = await page.getAttribute('th[aria-sort]', 'aria-sort');
    await page.click('th button[data-sort="ws"]');
    rs = await rows();
    kids = rs.filter(r => r.parent === cfg.pids.tree).map(r => r.id);
    check('…and clicking again reverses it', JSON.stringify(kids)
          === JSON.stringify([cfg.pids.small, cfg.pids.mid, cfg.pids.big]), JSON.stringify(kids));
    // collapse and expand with the keyboard
    const before = rs.length;
    await page.focus(`${row(cfg.pids.tree)} button[aria-expanded]`);
    await page.keyboard.press('Enter');
    rs = await rows();
    check('Enter on the focused toggle collapses the tree', byIdOf(rs).has(cfg.pids.tree)
          && ![cfg.pids.small, cfg.pids.mid, cfg.pids.big].some(p => byIdOf(rs).has(p)), `${before} -> ${rs.length}`);
    check('…and the toggle keeps the focus', await page.evaluate(() => document.activeElement?.getAttribute('aria-expanded') === 'false'));
    await page.keyboard.press('Space');
    check('Space expands it again', await page.$(row(cfg.pids.small)));
    // the filter
    await page.focus('#filter');
    await page.keyboard.type('dpx-');
    rs = await rows();
    const matched = rs.filter(r => !r.cls.includes('ctx') && typeof r.id === 'number');
    check('the filter narrows the list to matching processes (and their ancestors)',
          matched.length >= 6 && matched.every(r => r.name.includes('dpx-')) && rs.length < before
          && !rs.some(r => r.id === cfg.pids.evil), JSON.stringify(rs.map(r => [r.id, r.name, r.cls])));
    await page.fill('#filter', '');
    // live CPU %: the busy target climbs to the share of the cores it gets (as
    // /proc shows it over each second of the wait: about 200 on a quiet
    // machine of two cores, less where other work takes them), the idle one
    // stays near 0
    const ticks = pid => {
        const f = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
        const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
        return Number(rest[11]) + Number(rest[12]);     // utime + stime, in 1/100 s
    };
    let busy = null, idle = null, share = 0;
    const until = Date.now() + 25000;
    while (Date.now() < until) {
        const t0 = ticks(cfg.pids.busy), w0 = Date.now();
        await page.waitForTimeout(1000);
        share = (ticks(cfg.pids.busy) - t0) / ((Date.now() - w0) / 1000);
        const txt = async pid => parseFloat((await page.textContent(`${row(pid)} td.cpu`)) || '');
        busy = await txt(cfg.pids.busy);
        idle = await txt(cfg.pids.idle);
        if (share >= 20 && busy > share / 2 && idle < 5)
            break;
    }
    facts.cpu = { busy, idle, share: Math.round(share) };
    process.kill(cfg.pids.busy, 'SIGSTOP');     // measured: stop burning the shared CPUs
    check('CPU % of a busy-looping target climbs to its share of the cores within a few refreshes',
          share >= 20 && busy > share / 2, `${busy} shown, ${share.toFixed(0)} from /proc`);
    check('…while an idle one stays near 0', idle >= 0 && idle < 5, idle);
    await page.screenshot({ path: path.join(cfg.out_dir, 'list-desktop.png') });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(300);
    facts.phone_list_overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check('the list fits a phone-width window (no page-wide horizontal scroll)', facts.phone_list_overflow <= 1,
          facts.phone_list_overflow);
    await page.screenshot({ path: path.join(cfg.out_dir, 'list-phone.png') });
    await page.setViewportSize({ width: 1280, height: 860 });

    // -------------------------------------------------------------- detail
    await page.click(`${row(cfg.pids.idle)} td:nth-child(2) a`);
    await page.waitForSelector('#summary dd[data-field="state"]');
    check('the name links to the detail page', page.url() === `${P}/${cfg.pids.idle}`, page.url());
    facts.detail_h1 = await page.textContent('h1');
    facts.detail_ws = await page.textContent('#summary dd[data-field="working_set"]');
    check('the working set is in human units', /^\d+(\.\d+)? (KiB|MiB|GiB)$/.test(facts.detail_ws), facts.detail_ws);
    facts.detail_cpu_time = await page.textContent('#summary dd[data-field="total_cpu_time"]');
    check('a TimeSpan is shown in human form', /^\d+\.\d\d s$|min/.test(facts.detail_cpu_time), facts.detail_cpu_time);
    facts.detail_started = await page.textContent('#summary dd[data-field="start_time"]');
    check('the start time is local and relative', /^\d\d:\d\d:\d\d · \d+ (s|min) ago$/.test(facts.detail_started),
          facts.detail_started);
    await page.waitForFunction(() => {
        const trs = [...document.querySelectorAll('#threads tbody tr')];
        return trs.length && trs.every(tr => tr.children[3].textContent !== '');
    });
    facts.threads = await page.$$eval('#threads tbody tr', trs => trs.map(tr => [...tr.children].map(td => td.textContent)));
    check('the threads tab shows every thread with state, CPU and wait channel',
          facts.threads.length === cfg.idle_threads && facts.threads.every(t => t[2] && t[3] && t[4] !== undefined)
          && facts.threads.some(t => t[1].startsWith('worker-')), JSON.stringify(facts.threads));
    await page.screenshot({ path: path.join(cfg.out_dir, 'detail-desktop.png'), fullPage: true });
    // tabs by keyboard: ArrowRight moves to Modules
    await page.focus('#tab-threads');
    await page.keyboard.press('ArrowRight');
    check('ArrowRight on the tabs opens the next one', await page.getAttribute('#tab-modules', 'aria-selected') === 'true');
    await page.waitForFunction(() => [...document.querySelectorAll('#modules tbody tr')].some(tr => /^[0-9a-f]{40}$/.test(tr.children[3].textContent)));
    facts.modules = await page.$$eval('#modules tbody tr', trs => trs.map(tr => [...tr.children].map(td => td.textContent)));
    check('the modules tab shows paths, build ids and the deleted flag',
          facts.modules.some(m => m[0] === cfg.target_exe && m[4] === 'no') && facts.modules.some(m => /libc\.so/.test(m[0])),
          JSON.stringify(facts.modules));
    await page.click('#tab-files');
    facts.files = await page.$$eval('#files li', lis => lis.map(li => li.textContent));
    check('the open files tab lists the handles', facts.files.length > 0, JSON.stringify(facts.files));
    await page.click('#tab-environment');
    facts.env = await page.$$eval('#environment tr', trs => trs.map(tr => [tr.children[0].textContent, tr.children[1].textContent]));
    check('the environment tab (allowed here) shows the variables', facts.env.some(([k, v]) => k === 'DP_EXPLORER_MARK' && v === '<b>mark</b>'),
          JSON.stringify(facts.env));
    await page.click('#tab-stacks');
    await page.waitForSelector('#stacks table.frames', { timeout: 30000 });
    facts.stack_text = await page.textContent('#stacks');
    check('the stacks tab (allowed here) shows symbolized frames', /idle_thread|main/.test(facts.stack_text), facts.stack_text.slice(0, 500));
    await page.setViewportSize({ width: 390, height: 844 });
    await page.click('#tab-threads');
    await page.waitForTimeout(300);
    facts.phone_detail_overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check('the detail fits a phone-width window', facts.phone_detail_overflow <= 1, facts.phone_detail_overflow);
    await page.screenshot({ path: path.join(cfg.out_dir, 'detail-phone.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 860 });
    // the dump button: a download under the server's file name
    const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 60000 }), page.click('a[data-dump="0-raw"]')]);
    facts.dump_name = dl.suggestedFilename();
    facts.dump_path = path.join(cfg.tmp_dir, facts.dump_name);
    await dl.saveAs(facts.dump_path);
    facts.dump_failure = await dl.failure();
    check('the minimal-dump button downloads a core with the server\'s file name',
          new RegExp(`^dpx-idle-${cfg.pids.idle}-\\d{8}-\\d{6}\\.core$`).test(facts.dump_name) && !facts.dump_failure,
          facts.dump_name + ' ' + facts.dump_failure);
    facts.dump_buttons = await page.$$eval('a[data-dump]', as => as.map(a => a.dataset.dump));

    // ---------------------------------------------------------------- kill
    await page.goto(`${P}/${cfg.pids.tree}`);
    await page.waitForSelector('#kill');
    await page.click('#kill');
    await page.waitForSelector('#confirm-kill[open]');
    facts.kill_title = await page.textContent('#kill-title');
    facts.kill_list = await page.$$eval('#kill-tree li', lis => lis.map(li => +li.dataset.pid));
    const want = [cfg.pids.tree, cfg.pids.small, cfg.pids.mid, cfg.pids.big];
    check('the confirmation names the whole tree that will die',
          want.every(p => facts.kill_list.includes(p)) && facts.kill_list.length === 4 && /and its 3 descendants/.test(facts.kill_title),
          facts.kill_title + ' ' + JSON.stringify(facts.kill_list));
    check('…with the focus on Cancel', await page.evaluate(() => document.activeElement?.id === 'kill-cancel'));
    // Escape cancels: nothing is sent
    await page.keyboard.press('Escape');
    await page.waitForSelector('#confirm-kill', { state: 'detached' });
    facts.alive_after_cancel = await page.evaluate(async u => (await fetch(u, { headers: { Accept: 'application/json' } })).status,
                                                   `${P}/${cfg.pids.tree}`);
    check('Escape cancels the kill: the root still answers 200', facts.alive_after_cancel === 200, facts.alive_after_cancel);
    await page.click('#kill');
    await page.waitForSelector('#confirm-kill[open]');
    const del = page.waitForResponse(r => r.request().method() === 'DELETE');
    await page.click('#kill-confirm');
    const delResp = await del;
    facts.kill_status = delResp.status();
    facts.kill_url = delResp.url();
    await page.waitForURL(P, { timeout: 10000 });
    // the list refreshes by itself: the tree leaves it (a killed process
    // whose parent died too waits as a zombie until init reaps it)
    const alive = async () => (await rows()).filter(r => want.includes(r.id) && r.state !== 'zombie');
    await page.waitForSelector(row(cfg.pids.idle));
    for (let i = 0; i < 20 && (await alive()).length; i++)
        await page.waitForTimeout(1000);
    facts.rows_after_kill = (await rows()).filter(r => want.includes(r.id));
    check('after the kill the page returns to the list, which the tree leaves',
          (await alive()).length === 0, JSON.stringify(facts.rows_after_kill));

    // ------------------------------------------------ a read-only Location
    await page.goto(`${cfg.base}${cfg.ro_prefix}/${cfg.pids.idle}`);
    await page.waitForSelector('#summary dd[data-field="state"]');
    facts.ro = await page.evaluate(() => ({
        kill: !!document.getElementById('kill'), dumps: document.querySelectorAll('a[data-dump]').length,
        tabs: [...document.querySelectorAll('[role=tab]')].map(t => t.dataset.tab),
    }));
    check('where the Location allows nothing, no kill or dump button, no environment or stacks tab',
          !facts.ro.kill && facts.ro.dumps === 0 && !facts.ro.tabs.includes('stacks') && !facts.ro.tabs.includes('environment'),
          JSON.stringify(facts.ro));

    // ------------------------------------------- PHP frames in the stacks tab
    await page.goto(`${P}/${cfg.pids.php}`);
    await page.click('#tab-stacks');
    let lang = [];
    for (let i = 0; i < 20 && !lang.some(l => l.includes('Lock::wait_for_lock')); i++) {
        if (i) { await page.click('#stacks button'); }
        await page.waitForSelector('#stacks table.frames', { timeout: 30000 });
        lang = await page.$$eval('#stacks tr.lang td', tds => tds.map(td => td.textContent));
        if (!lang.some(l => l.includes('Lock::wait_for_lock'))) await page.waitForTimeout(300);
    }
    facts.php_lang = lang;
    facts.php_above = await page.evaluate(() => {
        const tr = [...document.querySelectorAll('#stacks tr.lang')].find(t => t.textContent.includes('Lock::wait_for_lock'));
        let p = tr && tr.previousElementSibling;
        while (p && p.classList.contains('lang')) p = p.previousElementSibling;
        return p ? p.textContent : null;
    });
    check('the stacks tab shows a PHP process\'s language frames with file and line',
          lang.some(l => /Lock::wait_for_lock\s+\S*stuck\.php:\d+/.test(l)) && lang.some(l => /handle\s/.test(l)), JSON.stringify(lang));
    check('…under the native frame that runs them', /execute_ex/.test(facts.php_above || ''), facts.php_above);

    // ------------------------------- a worker: the requests it is serving
    await page.goto(`${P}/${cfg.pids.worker}`);
    await page.waitForSelector('#tab-httpd_threads');
    facts.worker_role = await page.textContent('#summary dd[data-field="httpd_role"]');
    await page.click('#tab-httpd_threads');
    facts.worker_threads = await page.$$eval('#panel table tr', trs => trs.map(tr => tr.textContent));
    check('a worker\'s detail has its role and a "Requests being served" tab with its threads',
          facts.worker_role === 'worker' && facts.worker_threads.length > 1 &&
          await page.textContent('#tab-httpd_threads') === 'Requests being served', JSON.stringify([facts.worker_role, facts.worker_threads.slice(0, 3)]));
    await page.goto(P);
    await page.waitForSelector(row(cfg.pids.worker));
    facts.worker_role_cell = await page.textContent(`${row(cfg.pids.worker)} td.col-role`);
    check('the list shows the worker\'s role', /^worker · slot \d+/.test(facts.worker_role_cell), facts.worker_role_cell);
    check('no "all users" switch where the Location sees only the workers\' user', !(await page.$('#all-users')));

    // --------------------------------------------- the "all users" switch
    await page.goto(`${cfg.base}${cfg.all_prefix}`);
    await page.waitForSelector(row(cfg.pids.idle));
    const users = async () => new Set((await page.$$eval('#procs td.col-user', tds => tds.map(td => td.textContent))));
    facts.users_before = [...await users()];
    await page.check('#all-users');
    for (let i = 0; i < 20 && (await users()).size < 2; i++)
        await page.waitForTimeout(500);
    facts.users_after = [...await users()];
    check('where DiagProcUsers reaches further, the "all users" switch lists other users\' processes',
          facts.users_before.length === 1 && facts.users_after.length > 1, JSON.stringify([facts.users_before, facts.users_after]));

    check('no dialog was opened by any page of the explorer', dialogs.length === 0, JSON.stringify(dialogs));
    check('no script error on any page (CSP violations included)', pageErrors.length === 0, JSON.stringify(pageErrors));
    const foreign = requests.filter(u => new URL(u).origin !== origin);
    facts.requests = requests.length;
    check(`every request of the explorer went to its own origin (${requests.length} requests)`,
          requests.length > 10 && foreign.length === 0, JSON.stringify(foreign));
    await ctx.close();

    // ------------------------------------- a page of another origin attacks
    const evilPage = `<!DOCTYPE html><meta charset=utf-8><title>evil</title><script>
        window.results = {};
        const go = async (name, url, opts) => {
            try { const r = await fetch(url, opts); results[name] = 'status ' + r.status + ' ' + r.type; }
            catch (e) { results[name] = 'refused: ' + e.name; }
        };
        window.done = (async () => {
            await go('delete', ${JSON.stringify(`${P}/${cfg.pids.victim}`)}, { method: 'DELETE' });
            await go('post', ${JSON.stringify(`${P}/${cfg.pids.victim}/stop`)}, { method: 'POST', mode: 'no-cors' });
            await go('delete_cred', ${JSON.stringify(`${P}/${cfg.pids.victim}`)}, { method: 'DELETE', credentials: 'include' });
        })();
        </script>`;
    const srv = http.createServer((req, res) => { res.setHeader('Content-Type', 'text/html'); res.end(evilPage); });
    await new Promise(ok => srv.listen(0, '127.0.0.1', ok));
    const ectx = await browser.newContext();
    const epage = await ectx.newPage();
    await epage.goto(`http://localhost:${srv.address().port}/`);
    await epage.evaluate(() => window.done);
    facts.cross = await epage.evaluate(() => window.results);
    facts.cross_origin = `http://localhost:${srv.address().port}`;
    await ectx.close();
    srv.close();
} catch (e) {
    check('the browser script ran to its end', false, e.stack);
}
await finish();
