/// The page's files, compiled into the binary: no external asset, no build step. The script builds
/// the DOM with `textContent` only (no HTML from data), so names and messages cannot inject markup.
enum WebAssets {
    static let index = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>TiDB backups</title>
        <link rel="stylesheet" href="/ui/app.css">
        </head>
        <body>
        <header>
          <a href="#/" class="brand">TiDB backups</a>
          <span id="live" class="live" title="live updates">connecting…</span>
          <span id="updated" class="muted"></span>
          <form method="post" action="/ui/logout" class="logout"><button type="submit">Log out</button></form>
        </header>
        <main id="view"><p class="muted">Loading…</p></main>
        <script src="/ui/app.js"></script>
        </body>
        </html>
        """

    static func login(failed: Bool) -> String {
        """
        <!doctype html>
        <html lang="en">
        <head><meta charset="utf-8"><title>TiDB backups: log in</title><link rel="stylesheet" href="/ui/app.css"></head>
        <body>
        <main class="login">
          <h1>TiDB backups</h1>
          <form method="post" action="/ui/login" id="login">
            <label for="token">Token</label>
            <input type="password" id="token" name="token" autocomplete="current-password" autofocus>
            <p class="muted">The API server's token: the <code>token</code> file in the standalone data directory, or the kubeconfig's.</p>
            \(failed ? "<p class=\"error\" id=\"login-error\">That token is not accepted.</p>" : "")
            <button type="submit">Log in</button>
          </form>
        </main>
        </body>
        </html>
        """
    }

    static let css = """
        :root { --ok: #1a7f37; --late: #9a6700; --fail: #cf222e; --run: #0969da; --muted: #6e7781; --line: #d0d7de; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328; background: #f6f8fa; }
        header { display: flex; gap: 1em; align-items: center; padding: .6em 1.2em; background: #fff; border-bottom: 1px solid var(--line); }
        header .brand { font-weight: 600; font-size: 1.1em; color: inherit; text-decoration: none; }
        header .logout { margin-left: auto; }
        main { padding: 1em 1.2em; max-width: 1400px; }
        main.login { max-width: 26em; margin: 4em auto; background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 1.5em; }
        main.login input { width: 100%; padding: .5em; margin: .3em 0 .6em; }
        h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.6em; }
        a { color: var(--run); }
        table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); }
        th, td { text-align: left; padding: .35em .6em; border-bottom: 1px solid var(--line); vertical-align: top; }
        th { background: #f6f8fa; font-weight: 600; }
        .muted { color: var(--muted); }
        .badge { display: inline-block; padding: 0 .55em; border-radius: 1em; font-size: .85em; font-weight: 600; color: #fff; background: var(--muted); }
        .badge.healthy, .badge.Complete { background: var(--ok); }
        .badge.late { background: var(--late); }
        .badge.failing, .badge.Failed, .badge.Invalid, .badge.invalid { background: var(--fail); }
        .badge.Running, .badge.Scheduled, .badge.Prepare, .badge.pending { background: var(--run); }
        .badge.verified { background: var(--ok); } .badge.verifying { background: var(--run); } .badge.unverified { background: var(--fail); }
        .cards { display: flex; gap: .8em; flex-wrap: wrap; }
        .card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .5em .9em; min-width: 8em; }
        .card b { display: block; font-size: 1.4em; }
        .live.on::before { content: "● "; color: var(--ok); } .live.off::before { content: "● "; color: var(--fail); }
        svg { background: #fff; border: 1px solid var(--line); width: 100%; }
        svg .bar { cursor: pointer; } svg .bar.Complete { fill: var(--ok); } svg .bar.Failed, svg .bar.Invalid { fill: var(--fail); }
        svg .bar.running { fill: var(--run); } svg .axis { stroke: var(--line); } svg text { font-size: 11px; fill: var(--muted); }
        svg .line { fill: none; stroke: var(--run); stroke-width: 1.5; } svg .dot { fill: var(--run); }
        pre.error, p.error { color: var(--fail); white-space: pre-wrap; } pre { background: #fff; border: 1px solid var(--line); padding: .6em; }
        ol.timeline { list-style: none; padding-left: 0; } ol.timeline li { border-left: 3px solid var(--line); padding: .2em .8em; margin-left: .4em; }
        ol.timeline li.True { border-color: var(--run); } ol.timeline li.Failed { border-color: var(--fail); } ol.timeline li.Complete { border-color: var(--ok); }
        dl.fields { display: grid; grid-template-columns: max-content 1fr; gap: .2em 1em; background: #fff; border: 1px solid var(--line); padding: .8em; }
        dl.fields dt { color: var(--muted); } dl.fields dd { margin: 0; word-break: break-all; }
        """

    static let js = #"""
        "use strict";
        // Hash routes: #/ (overview), #/schedule/NS/NAME, #/backup/NS/NAME, #/restore/NS/NAME.
        const view = document.getElementById("view");
        function el(tag, attrs, ...children) {
          const e = document.createElement(tag);
          for (const [k, v] of Object.entries(attrs || {})) { if (v !== undefined && v !== null) e.setAttribute(k, v); }
          for (const c of children) { if (c === null || c === undefined) continue; e.append(c instanceof Node ? c : String(c)); }
          return e;
        }
        const svgNS = "http://www.w3.org/2000/svg";
        function sv(tag, attrs) { const e = document.createElementNS(svgNS, tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); return e; }
        function ago(iso) {
          if (!iso) return "never";
          const s = (Date.now() - Date.parse(iso)) / 1000;
          const a = Math.abs(s), unit = a < 120 ? [a, "s"] : a < 7200 ? [a / 60, "m"] : a < 172800 ? [a / 3600, "h"] : [a / 86400, "d"];
          return s >= 0 ? `${Math.floor(unit[0])}${unit[1]} ago` : `in ${Math.floor(unit[0])}${unit[1]}`;
        }
        function dur(s) { if (s === null || s === undefined) return ""; return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${(s / 3600).toFixed(1)}h`; }
        function badge(text, cls) { return el("span", { class: `badge ${cls || text}`, "data-badge": text }, text); }
        function verified(r) {
          if (!r.verification) return null;
          const word = { Verified: "verified", Running: "verifying", Failed: "unverified" }[r.verification] || r.verification;
          return el("span", { title: r.verificationFailure || `verification ${r.verification}` }, " ", badge(word));
        }
        function link(kind, ns, name) { return el("a", { href: `#/${kind}/${encodeURIComponent(ns)}/${encodeURIComponent(name)}` }, name); }
        async function get(path) {
          const r = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
          if (r.status === 401) { location.href = "/ui/login"; throw new Error("unauthorized"); }
          if (!r.ok) throw new Error((await r.json()).error || r.statusText);
          return r.json();
        }
        function show(...nodes) { view.replaceChildren(...nodes.filter(n => n !== null && n !== undefined)); }
        function table(headers, rows) {
          return el("table", {}, el("thead", {}, el("tr", {}, ...headers.map(h => el("th", {}, h)))), el("tbody", {}, ...rows));
        }

        async function overview() {
          const o = await get("/ui/api/overview");
          const cards = el("div", { class: "cards" }, ...Object.entries(o.phases).sort().map(([p, n]) => el("div", { class: "card", "data-phase": p }, el("b", {}, n), p)));
          const schedules = table(["Schedule", "Cluster", "Health", "Last success", "Every", "Next run", "Retention", "Restorable", "Backups"],
            o.schedules.map(s => el("tr", { "data-schedule": `${s.namespace}/${s.name}`, "data-health": s.health },
              el("td", {}, link("schedule", s.namespace, s.name), el("div", { class: "muted" }, s.namespace)),
              el("td", {}, s.cluster || ""),
              el("td", { title: s.healthReason }, badge(s.health), el("div", { class: "muted reason" }, s.healthReason)),
              el("td", { title: s.lastSuccess || "" }, ago(s.lastSuccess), s.lastSuccessBackup ? el("div", { class: "muted" }, s.lastSuccessBackup) : null),
              el("td", {}, s.cron, el("div", { class: "muted" }, s.intervalSeconds ? dur(s.intervalSeconds) : "")),
              el("td", { title: s.nextRun || "" }, s.nextRun ? ago(s.nextRun) : "—"),
              el("td", {}, s.retention),
              el("td", {}, s.earliestRestorable ? `${ago(s.earliestRestorable)} … ${ago(s.latestRestorable)}` : "—", s.pointInTime ? el("div", { class: "muted" }, "any point (PiTR)") : null),
              el("td", {}, `${s.backups} (${s.failed} failed, ${s.running} running)`))));
          const clusters = table(["Cluster", "Last success", "Last backup", "Backups"], o.clusters.map(c => el("tr", { "data-cluster": `${c.namespace}/${c.name}` },
            el("td", {}, c.name, el("div", { class: "muted" }, c.namespace)), el("td", { title: c.lastSuccess || "" }, ago(c.lastSuccess)),
            el("td", {}, c.lastBackup ? link("backup", c.namespace, c.lastBackup) : "", " ", c.lastPhase ? badge(c.lastPhase) : null), el("td", {}, c.backups))));
          const rowsOf = list => table(["Name", "Kind", "Phase", "Cluster", "Created", "Error"], list.map(r => el("tr", { "data-row": `${r.kind}/${r.namespace}/${r.name}` },
            el("td", {}, link(r.kind.toLowerCase(), r.namespace, r.name)), el("td", {}, r.kind), el("td", {}, badge(r.phase)), el("td", {}, r.cluster || ""),
            el("td", { title: r.created || "" }, ago(r.created)), el("td", { class: "error-text" }, r.error || ""))));
          show(el("h1", {}, "Overview"), cards, el("h2", {}, "Schedules"),
            o.schedules.length ? schedules : el("p", { class: "muted" }, "No BackupSchedules."), el("h2", {}, "Clusters"), clusters,
            el("h2", {}, "Running"), o.running.length ? rowsOf(o.running) : el("p", { class: "muted" }, "Nothing running."),
            el("h2", {}, "Recent failures"), o.recentFailures.length ? rowsOf(o.recentFailures) : el("p", { class: "muted" }, "No failures."));
        }

        function timeline(rows, ns) {
          const W = 1000, H = 40 + rows.length * 0, rowH = 18;
          const times = rows.flatMap(r => [r.started || r.created, r.completed].filter(Boolean).map(Date.parse));
          const now = Date.now(), t0 = Math.min(now, ...times), t1 = Math.max(now, ...times), span = Math.max(1, t1 - t0);
          const x = t => 10 + (W - 20) * (t - t0) / span;
          const svg = sv("svg", { viewBox: `0 0 ${W} ${rowH * 2 + 30}`, id: "timeline", role: "img", "aria-label": "backups over time" });
          svg.append(sv("line", { x1: 10, x2: W - 10, y1: rowH * 2 + 10, y2: rowH * 2 + 10, class: "axis" }));
          for (const r of rows) {
            const s = Date.parse(r.started || r.created), e = r.completed ? Date.parse(r.completed) : now;
            const done = ["Complete", "Failed", "Invalid"].includes(r.phase);
            const bar = sv("rect", { x: x(s), y: 10, width: Math.max(3, x(e) - x(s)), height: rowH * 2 - 4, class: `bar ${done ? r.phase : "running"}`, "data-backup": r.name, "data-phase": r.phase });
            const title = sv("title", {}); title.textContent = `${r.name}: ${r.phase}${r.durationSeconds != null ? ", " + dur(r.durationSeconds) : ""}`;
            bar.append(title);
            bar.addEventListener("click", () => { location.hash = `#/backup/${encodeURIComponent(ns)}/${encodeURIComponent(r.name)}`; });
            svg.append(bar);
          }
          const l = sv("text", { x: 10, y: rowH * 2 + 24 }); l.textContent = new Date(t0).toISOString().slice(0, 16).replace("T", " ");
          const r = sv("text", { x: W - 10, y: rowH * 2 + 24, "text-anchor": "end" }); r.textContent = "now";
          svg.append(l, r);
          return svg;
        }

        function chart(id, label, points, fmt) {
          const W = 480, H = 160;
          const svg = sv("svg", { viewBox: `0 0 ${W} ${H}`, id, role: "img", "aria-label": label });
          const t = sv("text", { x: 8, y: 14 }); t.textContent = label; svg.append(t);
          if (points.length === 0) { const n = sv("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }); n.textContent = "no data yet"; svg.append(n); return svg; }
          const xs = points.map(p => p[0]), ys = points.map(p => p[1]);
          const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1), y1 = Math.max(...ys, 1);
          const px = v => 40 + (W - 50) * (v - x0) / (x1 - x0), py = v => H - 20 - (H - 40) * v / y1;
          svg.append(sv("polyline", { class: "line", points: points.map(p => `${px(p[0])},${py(p[1])}`).join(" ") }));
          for (const p of points) svg.append(sv("circle", { class: "dot", cx: px(p[0]), cy: py(p[1]), r: 2.5 }));
          const m = sv("text", { x: 4, y: 30 }); m.textContent = fmt(y1); svg.append(m);
          return svg;
        }
        function bytes(n) { const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0; while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; } return `${n.toFixed(n < 10 && i ? 1 : 0)} ${u[i]}`; }

        async function schedule(ns, name) {
          const d = await get(`/ui/api/schedules/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`);
          const s = d.schedule, rows = d.backups.filter(r => r.mode !== "log");
          const done = rows.filter(r => r.phase === "Complete" && r.completed);
          show(
            el("h1", {}, `BackupSchedule ${s.namespace}/${s.name} `, badge(s.health)),
            el("p", { class: "reason", id: "health-reason" }, s.healthReason),
            el("dl", { class: "fields" }, el("dt", {}, "Schedule"), el("dd", {}, s.cron), el("dt", {}, "Cluster"), el("dd", {}, s.cluster || ""),
              el("dt", {}, "Last success"), el("dd", {}, ago(s.lastSuccess)), el("dt", {}, "Next run"), el("dd", {}, s.nextRun ? ago(s.nextRun) : "—"),
              el("dt", {}, "Retention"), el("dd", {}, s.retention), el("dt", {}, "Log backup"), el("dd", {}, s.logBackup || "—"),
              el("dt", {}, "Restorable"), el("dd", {}, s.earliestRestorable ? `${s.earliestRestorable} … ${s.latestRestorable}${s.pointInTime ? " (any point)" : " (snapshot points)"}` : "—"),
              el("dt", {}, "Proven restorable"), el("dd", { id: "proven" }, s.provenRestorable
                ? `up to ${s.provenRestorable}: ${s.lastVerifiedBackup} restored and checked ${ago(s.lastVerified)}` : "—")),
            el("h2", {}, "Timeline"), timeline(rows, s.namespace),
            el("div", { class: "cards" },
              chart("size-chart", "Size", done.filter(r => r.sizeBytes != null).map(r => [Date.parse(r.completed), r.sizeBytes]), bytes),
              chart("duration-chart", "Duration", done.filter(r => r.durationSeconds != null).map(r => [Date.parse(r.completed), r.durationSeconds]), dur)),
            el("h2", {}, "Backups"),
            table(["Name", "Phase", "Started", "Took", "Size", "Commit TS", "Error"], rows.slice().reverse().map(r => el("tr", { "data-row": `Backup/${r.namespace}/${r.name}` },
              el("td", {}, link("backup", r.namespace, r.name)), el("td", {}, badge(r.phase), verified(r)), el("td", { title: r.started || "" }, ago(r.started || r.created)),
              el("td", {}, dur(r.durationSeconds)), el("td", {}, r.size || ""), el("td", {}, r.commitTs || ""),
              el("td", { class: "error-text" }, r.error || r.retry || r.waiting || r.verificationFailure || "")))),
            el("h2", {}, "Conditions"), conditions(d.conditions));
        }

        function conditions(list) {
          return el("ol", { class: "timeline", id: "conditions" }, ...list.map(c => el("li", { class: `${c.status} ${c.type}`, "data-condition": c.type },
            el("b", {}, c.type), c.command ? ` (${c.command})` : "", c.status === "True" ? "" : ` = ${c.status}`, " ",
            el("span", { class: "muted", title: c.time || "" }, c.time ? `${c.time} (${ago(c.time)})` : ""),
            c.reason ? el("div", {}, c.reason) : null, c.message ? el("div", { class: "muted" }, c.message) : null)));
        }

        async function detail(kind, ns, name) {
          const d = await get(`/ui/api/${kind === "restore" ? "restores" : "backups"}/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`);
          const r = d.row;
          const progress = Object.entries(d.progress).map(([k, v]) => el("div", {}, `${k}: ${v}%`, el("progress", { max: 100, value: v })));
          show(
            el("h1", {}, `${r.kind} ${r.namespace}/${r.name} `, badge(r.phase), verified(r)),
            r.error ? el("pre", { class: "error", id: "error" }, r.error) : null,
            r.verificationFailure ? el("pre", { class: "error", id: "verification-failure" }, `Verification failed: ${r.verificationFailure}`) : null,
            r.waiting ? el("pre", { class: "error", id: "waiting" }, `Not started: ${r.waiting}`) : null,
            r.retry ? el("p", { class: "error", id: "retry" }, `Waiting: ${r.retry}`) : null,
            el("dl", { class: "fields" }, el("dt", {}, "Mode"), el("dd", {}, r.mode || ""), el("dt", {}, "Cluster"), el("dd", {}, r.cluster || ""),
              el("dt", {}, "Schedule"), el("dd", {}, r.schedule ? link("schedule", r.namespace, r.schedule) : "—"),
              el("dt", {}, "Started"), el("dd", {}, r.started || ""), el("dt", {}, "Completed"), el("dd", {}, r.completed || ""),
              el("dt", {}, "Took"), el("dd", {}, dur(r.durationSeconds)), el("dt", {}, "Size"), el("dd", {}, r.size || ""),
              el("dt", {}, "Commit TS"), el("dd", { id: "commit-ts" }, r.commitTs || ""), el("dt", {}, "Path"), el("dd", {}, d.backupPath || ""),
              d.logCheckpointTs ? el("dt", {}, "Log checkpoint") : null, d.logCheckpointTs ? el("dd", {}, d.logCheckpointTs) : null),
            progress.length ? el("h2", {}, "Progress") : null, ...progress,
            el("h2", {}, "Conditions"), conditions(d.conditions),
            el("h2", {}, d.log ? `Log of ${d.log.pod} (Job ${d.log.job}), last lines` : "Log"),
            d.log ? el("pre", { id: "log" }, d.log.text || "(empty)")
              : el("p", { class: "muted", id: "log-gone" }, d.logGone || "No Job has run yet."),
            el("h2", {}, "Events"),
            d.events.length ? table(["Type", "Reason", "Message", "Count", "Last"], d.events.map(e => el("tr", { class: e.type },
              el("td", {}, e.type), el("td", {}, e.reason), el("td", {}, e.message), el("td", {}, e.count), el("td", { title: e.last || "" }, ago(e.last)))))
              : el("p", { class: "muted" }, "No events."));
        }

        let rendering = false, again = false;
        async function render() {
          if (rendering) { again = true; return; }
          rendering = true;
          try {
            const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
            if (parts[0] === "schedule" && parts.length === 3) await schedule(parts[1], parts[2]);
            else if ((parts[0] === "backup" || parts[0] === "restore") && parts.length === 3) await detail(parts[0], parts[1], parts[2]);
            else await overview();
            document.getElementById("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
            document.body.dataset.rendered = String(Date.now());
          } catch (e) {
            show(el("p", { class: "error", id: "page-error" }, String(e.message || e)));
          } finally {
            rendering = false;
            if (again) { again = false; render(); }
          }
        }
        let timer = null;
        function soon() { clearTimeout(timer); timer = setTimeout(render, 250); }
        window.addEventListener("hashchange", render);
        const live = document.getElementById("live");
        function connect() {
          const es = new EventSource("/ui/api/stream");
          es.onopen = () => { live.textContent = "live"; live.className = "live on"; };
          es.addEventListener("change", soon);
          es.onerror = () => { live.textContent = "reconnecting"; live.className = "live off"; };
        }
        connect();
        render();
        setInterval(render, 30000);
        """#
}
