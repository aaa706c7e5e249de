// invitrack's dashboard: one page, routed by the URL fragment, reading the API either with the
// key the viewer signed in with (kept in this tab's sessionStorage, never in a URL sent to the
// server) or with the session cookie of "Login with Discord" (then every write carries the
// session's CSRF token). No framework and no build step: the file is served as it is.

const KEY = "invitrack.key";
const main = document.getElementById("main");
const nav = document.getElementById("nav");
const signout = document.getElementById("signout");

// ---- small helpers ---------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value == null) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "text") el.textContent = value;
    else el.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const svgNs = "http://www.w3.org/2000/svg";
function s(tag, attrs = {}, text) {
  const el = document.createElementNS(svgNs, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, value);
  if (text != null) el.textContent = text;
  return el;
}

const number = new Intl.NumberFormat();
const when = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const fmtTime = (iso) => (iso ? when.format(new Date(iso)) : "—");
const pct = (part, whole) => (whole > 0 ? `${Math.round((100 * part) / whole)}%` : "—");

function show(...children) {
  main.replaceChildren(...children.flat());
  main.focus({ preventScroll: true });
}

function failure(error) {
  return h("p", { class: "error", role: "alert", text: error.message || String(error) });
}

function key() {
  return sessionStorage.getItem(KEY);
}

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, { method = "GET", body, file, type } = {}) {
  const headers = {};
  if (key()) headers.Authorization = `Bearer ${key()}`;
  else if (me?.csrf_token) headers["X-CSRF-Token"] = me.csrf_token;
  if (body !== undefined || file !== undefined) headers["Content-Type"] = type || "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: file !== undefined ? file : body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    if (response.status === 401 && key()) {
      sessionStorage.removeItem(KEY);
      me = null;
      location.hash = "#/";
    }
    throw new ApiError(response.status, data?.error?.message || data?.message || response.statusText);
  }
  return data;
}

// The signed-in key's identity, read once per sign-in.
let me = null;
async function whoAmI() {
  if (!me) me = await api("/v1/me");
  return me;
}

const guildBase = (guild) => `/v1/bots/${me.bot_id}/guilds/${guild}`;

// ---- routing ---------------------------------------------------------------------------

const pages = {
  overview: overviewPage,
  leaderboard: leaderboardPage,
  inviter: inviterPage,
  member: memberPage,
  feed: feedPage,
  settings: settingsPage,
  admin: adminPage,
};

const tabs = [
  ["overview", "Overview"],
  ["leaderboard", "Leaderboard"],
  ["member", "Member lookup"],
  ["feed", "Live feed"],
  ["settings", "Settings"],
  ["admin", "Bonus & resets"],
];

let stopPage = () => {};

async function route() {
  stopPage();
  stopPage = () => {};
  // A link from `invitrack demo` carries the key in the fragment: take it, then drop it.
  const fragment = new URLSearchParams(location.hash.replace(/^#\/?/, ""));
  if (fragment.get("key")) {
    sessionStorage.setItem(KEY, fragment.get("key"));
    me = null;
    history.replaceState(null, "", `${location.pathname}#/`);
  }
  try {
    // Without a key, a session cookie may sign the browser in.
    await whoAmI();
  } catch (error) {
    me = null;
    nav.replaceChildren();
    signout.hidden = true;
    if (key() || error.status !== 401) return show(failure(error));
    return signInPage();
  }
  signout.hidden = false;
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  if (parts[0] !== "g" || !parts[1]) {
    nav.replaceChildren();
    return guildsPage();
  }
  const [, guild, page = "overview", ...rest] = parts;
  nav.replaceChildren(
    ...tabs.map(([name, label]) =>
      h("a", { href: `#/g/${guild}/${name}`, "aria-current": name === page ? "page" : false, text: label }),
    ),
  );
  const render = pages[page];
  if (!render) return show(h("p", { class: "error", text: `No page “${page}”.` }));
  try {
    await render(guild, rest);
  } catch (error) {
    show(h("h1", { text: "Something went wrong" }), failure(error));
  }
}

addEventListener("hashchange", route);
signout.addEventListener("click", async () => {
  if (!key() && me?.kind === "session") {
    await api("/auth/logout", { method: "POST" }).catch(() => {});
  }
  sessionStorage.removeItem(KEY);
  me = null;
  location.hash = "#/";
  route();
});

// ---- sign-in and guilds -----------------------------------------------------------------

function signInPage() {
  const input = h("input", { type: "password", name: "key", required: true, autocomplete: "off", id: "key" });
  const status = h("p", { role: "status" });
  const form = h(
    "form",
    {
      class: "panel",
      onsubmit: async (event) => {
        event.preventDefault();
        sessionStorage.setItem(KEY, input.value.trim());
        me = null;
        try {
          await whoAmI();
          location.hash = "#/guilds";
          route();
        } catch (error) {
          sessionStorage.removeItem(KEY);
          status.replaceChildren(failure(error));
        }
      },
    },
    h("label", { for: "key" }, "API key", input),
    h("p", { class: "muted" }, "A key from ", h("code", { text: "invitrack keys create" }),
      ". It stays in this browser tab and is sent only to this server's API."),
    h("button", { type: "submit", text: "Sign in" }),
    status,
  );
  const reasons = {
    denied: "Discord did not grant the login.",
    state_mismatch: "That login was not started here: try again.",
    discord_error: "Discord did not confirm the login: try again later.",
    no_code: "Discord sent no code back: try again.",
  };
  const said = new URLSearchParams(location.hash.split("?")[1] || "").get("login");
  const discord = h("div", { id: "discord-login" });
  show(h("h1", { text: "Sign in" }), said ? h("p", { class: "error", role: "alert", text: reasons[said] || "The login failed." }) : "", discord, form);
  fetch("/auth/config").then((r) => r.json()).then((c) => {
    if (c.discord_login) {
      discord.replaceChildren(h("p", {}, h("a", { class: "button", id: "login-discord", href: "/auth/login", text: "Login with Discord" })),
        h("p", { class: "muted", text: "You will see the servers where you have Manage Server and the bot is present. Or sign in with an API key:" }));
    }
  }).catch(() => {});
  input.focus();
}

async function guildsPage() {
  if (me.guild_id) {
    location.hash = `#/g/${me.guild_id}/overview`;
    return;
  }
  if (me.kind === "session" && me.guild_ids.length === 0) {
    return show(h("h1", { text: `Hello, ${me.username}` }),
      h("p", { class: "empty", id: "no-guilds", text: "You have Manage Server in no server where the bot is present, so there is nothing to show you. Ask a server's owner for Manage Server, or add the bot to your server." }));
  }
  const guilds = await api(`/v1/bots/${me.bot_id}/guilds`);
  if (guilds.length === 1) {
    location.hash = `#/g/${guilds[0].guild_id}/overview`;
    return;
  }
  show(
    h("h1", { text: "Guilds" }),
    guilds.length === 0
      ? h("p", { class: "empty" }, "No guild is tracked yet. Invite the bot to a server, give it Manage Server, and its joins appear here.")
      : h("div", { class: "scroll" }, h("table", {},
          h("thead", {}, h("tr", {}, h("th", { text: "Guild" }), h("th", { text: "Tracking" }), h("th", { text: "Invites last read" }))),
          h("tbody", {}, guilds.map((g) => h("tr", {},
            h("td", {}, h("a", { href: `#/g/${g.guild_id}/overview`, text: g.guild_id })),
            h("td", { class: g.missing_permissions ? "warn" : "ok", text: g.missing_permissions ? "missing Manage Server" : "ok" }),
            h("td", { text: fmtTime(g.last_snapshot_at) }),
          ))),
        )),
  );
}

// ---- overview --------------------------------------------------------------------------

const sources = [
  ["invite", "by invite"],
  ["vanity", "vanity URL"],
  ["ambiguous", "ambiguous"],
  ["unknown", "unknown"],
];

function joinsChart(days) {
  const width = 720, height = 260, left = 40, bottom = 34, top = 10, right = 8;
  const max = Math.max(1, ...days.map((d) => d.invite + d.vanity + d.ambiguous + d.unknown));
  // Whole-number ticks of 1, 2 or 5 times a power of ten, about four of them.
  const rough = max / 4;
  const power = Math.pow(10, Math.floor(Math.log10(Math.max(1, rough))));
  const tick = Math.max(1, [1, 2, 5, 10].map((m) => m * power).find((t) => t >= rough));
  const ceiling = tick * Math.ceil(max / tick);
  const plotH = height - top - bottom, plotW = width - left - right;
  const slot = plotW / Math.max(1, days.length);
  const y = (v) => top + plotH - (v / ceiling) * plotH;
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `Joins per day over the last ${days.length} days, stacked by source` });
  for (let v = 0; v <= ceiling; v += tick) {
    svg.append(s("line", { class: "axis", x1: left, x2: width - right, y1: y(v), y2: y(v) }));
    svg.append(s("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end" }, number.format(v)));
  }
  svg.append(s("text", { x: 12, y: top + plotH / 2, transform: `rotate(-90 12 ${top + plotH / 2})`, "text-anchor": "middle" }, "joins per day"));
  days.forEach((day, i) => {
    let base = 0;
    const x = left + i * slot + slot * 0.15;
    for (const [source, label] of sources) {
      const v = day[source];
      if (v > 0) {
        const rect = s("rect", { x, width: slot * 0.7, y: y(base + v), height: y(base) - y(base + v),
          fill: `var(--${source})`, "data-source": source });
        rect.append(s("title", {}, `${day.date}: ${v} ${label}`));
        svg.append(rect);
      }
      base += v;
    }
    // About eight dates, counted back from the last day so that it is always labelled.
    if ((days.length - 1 - i) % Math.ceil(days.length / 8) === 0) {
      svg.append(s("text", { x: x + slot * 0.35, y: height - bottom + 16, "text-anchor": "middle" }, day.date.slice(5)));
    }
  });
  svg.append(s("text", { x: left + plotW / 2, y: height - 4, "text-anchor": "middle" }, "day (UTC, month-day)"));
  return svg;
}

function healthPanel(health) {
  const items = [];
  if (!health.tracked) items.push(h("li", { class: "warn", text: "invitrack has not seen this guild's events yet: check that ingest runs and the bot is in the server." }));
  if (health.missing_permissions) items.push(h("li", { class: "error", text: "The bot cannot read the invites. Give its role Manage Server: until then every join is unknown." }));
  if (health.messages_refused) {
    const r = health.messages_refused;
    items.push(h("li", { class: "error" }, `Discord refused a join or leave message in channel ${r.channel_id} (${r.outcome.replaceAll("_", " ")}) ${fmtTime(r.at)}: let the bot's role view the channel, send messages and embed links there, or choose another channel in Settings.`));
  }
  if (items.length === 0) items.push(h("li", { class: "ok", text: "Tracking works: the bot reads the invites." }));
  items.push(h("li", { text: `Invites last read ${fmtTime(health.last_snapshot_at)}; ${health.pending_joins} joins waiting for evidence; ${health.unknown_joins} unknown joins in the window.` }));
  return h("section", { class: "panel", "aria-labelledby": "health" }, h("h2", { id: "health", text: "Tracking health" }), h("ul", {}, items));
}

async function overviewPage(guild) {
  const summary = await api(`${guildBase(guild)}/summary?days=30`);
  const t = summary.totals;
  const window = summary.days.reduce((acc, d) => {
    for (const k of ["invite", "vanity", "ambiguous", "unknown", "fake", "leaves"]) acc[k] = (acc[k] || 0) + d[k];
    return acc;
  }, {});
  const windowJoins = window.invite + window.vanity + window.ambiguous + window.unknown;
  const tile = (label, value, id) => h("div", { class: "stat", id }, h("b", { text: value }), label);
  show(
    h("h1", { text: `Guild ${guild}` }),
    h("div", { class: "grid" },
      tile("joins in 30 days", number.format(windowJoins), "stat-joins"),
      tile("fake rate (30 days)", pct(window.fake, windowJoins), "stat-fake"),
      tile("leave rate (30 days)", pct(window.leaves, windowJoins), "stat-leaves"),
      tile("inviters", number.format(summary.inviters), "stat-inviters"),
      tile("real invites, all time", number.format(t.real), "stat-real"),
    ),
    h("section", { class: "panel", "aria-labelledby": "chart-title" },
      h("h2", { id: "chart-title", text: "Joins per day, by source" }),
      h("div", { class: "legend" }, sources.map(([k, label]) => h("span", { class: `swatch-${k}`, text: label }))),
      windowJoins === 0
        ? h("p", { class: "empty", text: "No joins in the last 30 days. When members join, each day's joins show here by how they came." })
        : h("div", { class: "scroll" }, joinsChart(summary.days)),
    ),
    healthPanel(summary.health),
  );
  // When the overview is on screen: what "first load" measures (docs/dashboard.md).
  performance.mark("overview-drawn");
}

// ---- leaderboard and inviter ----------------------------------------------------------

async function leaderboardPage(guild) {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  const range = params.get("range") || "all";
  const order = params.get("order") || "real";
  const page = Math.max(1, Number(params.get("page")) || 1);
  const data = await api(`${guildBase(guild)}/leaderboard?range=${range}&order=${order}&page=${page}&per_page=25`);
  const go = (changes) => {
    const next = new URLSearchParams({ range, order, page: String(page), ...changes });
    location.hash = `#/g/${guild}/leaderboard?${next}`;
  };
  const select = (name, value, options) =>
    h("select", { name, id: name, onchange: (e) => go({ [name]: e.target.value, page: "1" }) },
      options.map(([v, label]) => h("option", { value: v, selected: v === value, text: label })));
  const search = h("input", { name: "inviter", id: "search", inputmode: "numeric", placeholder: "user id", pattern: "[0-9]{15,20}" });
  const pages = Math.max(1, Math.ceil(data.total_inviters / data.per_page));
  show(
    h("h1", { text: "Leaderboard" }),
    h("form", { class: "inline", onsubmit: (e) => { e.preventDefault(); if (search.value) location.hash = `#/g/${guild}/inviter/${search.value.trim()}`; } },
      h("label", { for: "range" }, "Range", select("range", range, [["all", "all time"], ["7d", "last 7 days"], ["30d", "last 30 days"]])),
      h("label", { for: "order" }, "Order by", select("order", order, [["real", "real"], ["total", "total"], ["fake", "fake"], ["leaves", "left"], ["bonus", "bonus"]])),
      h("label", { for: "search" }, "Find an inviter", search),
      h("button", { type: "submit", class: "secondary", text: "Open" }),
    ),
    data.entries.length === 0
      ? h("p", { class: "empty", text: "Nobody has invited anyone in this range yet." })
      : h("div", { class: "scroll" }, h("table", { id: "leaderboard" },
          h("thead", {}, h("tr", {}, ["#", "Inviter", "Real", "Total", "Fake", "Left", "Bonus"].map((c, i) => h("th", { class: i > 1 ? "num" : false, text: c })))),
          h("tbody", {}, data.entries.map((e) => h("tr", { "data-inviter": e.inviter_id },
            h("td", { text: e.rank }),
            h("td", {}, h("a", { href: `#/g/${guild}/inviter/${e.inviter_id}`, text: e.inviter_id })),
            ...["real", "total", "fake", "leaves", "bonus"].map((k) => h("td", { class: "num", "data-count": k, text: number.format(e[k]) })),
          ))),
        )),
    h("div", { class: "pager" },
      h("button", { type: "button", class: "secondary", disabled: page <= 1, onclick: () => go({ page: String(page - 1) }), text: "Previous" }),
      h("span", { text: `page ${page} of ${pages} (${number.format(data.total_inviters)} inviters)` }),
      h("button", { type: "button", class: "secondary", disabled: page >= pages, onclick: () => go({ page: String(page + 1) }), text: "Next" }),
    ),
  );
}

function joinRow(j) {
  const how = j.source === "invite" ? `invite ${j.invite_code}` : j.source === "ambiguous"
    ? `ambiguous (${j.candidates.join(", ")})` : j.source === "unknown" ? `unknown: ${(j.unknown_reason || "").replaceAll("_", " ")}` : j.source;
  return h("tr", {},
    h("td", { text: fmtTime(j.created_at) }),
    h("td", { text: j.member_id || "" }),
    h("td", { text: how }),
    h("td", { class: j.fake ? "warn" : false, text: j.fake ? `fake (${j.fake_reasons.join(", ")})` : "real" }),
    h("td", { text: j.left ? `left ${fmtTime(j.left_at)}` : "" }),
  );
}

async function inviterPage(guild, [inviter]) {
  const [codes, joins, bonus] = await Promise.all([
    api(`${guildBase(guild)}/inviters/${inviter}/codes`),
    api(`${guildBase(guild)}/joins?inviter_id=${inviter}&limit=50`),
    api(`${guildBase(guild)}/inviters/${inviter}/bonus`).catch(() => ({ entries: [] })),
  ]);
  show(
    h("h1", { text: `Inviter ${inviter}` }),
    h("h2", { text: "Codes" }),
    codes.codes.length === 0 ? h("p", { class: "empty", text: "No code of theirs is known." }) :
      h("div", { class: "scroll" }, h("table", {},
        h("thead", {}, h("tr", {}, ["Code", "Joins", "Uses", "Max uses", "Expires"].map((c) => h("th", { text: c })))),
        h("tbody", {}, codes.codes.map((c) => h("tr", {},
          h("td", {}, h("code", { text: c.code }), c.live ? "" : h("span", { class: "muted", text: " (gone)" })),
          h("td", { class: "num", text: c.counted }),
          h("td", { class: "num", text: c.uses ?? "—" }),
          h("td", { class: "num", text: c.max_uses === 0 ? "∞" : c.max_uses ?? "—" }),
          h("td", { text: c.live ? (c.expires_at ? fmtTime(c.expires_at) : "never") : "—" }),
        ))))),
    h("h2", { text: "Members they brought" }),
    joins.joins.length === 0 ? h("p", { class: "empty", text: "No join is credited to them." }) :
      h("div", { class: "scroll" }, h("table", {},
        h("thead", {}, h("tr", {}, ["Joined", "Member", "How", "Counted as", "Left"].map((c) => h("th", { text: c })))),
        h("tbody", {}, joins.joins.map(joinRow)))),
    h("h2", { text: "Bonus history" }),
    bonus.entries.length === 0 ? h("p", { class: "empty", text: "No bonus given or taken." }) :
      h("ul", {}, bonus.entries.map((b) => h("li", { text: `${b.amount > 0 ? "+" : ""}${b.amount} by ${b.author} ${fmtTime(b.created_at)}${b.reason ? `: ${b.reason}` : ""}${b.cleared ? " (cleared)" : ""}` }))),
  );
}

// ---- member lookup and feed -------------------------------------------------------------

async function memberPage(guild, [member]) {
  const input = h("input", { id: "member", name: "member", inputmode: "numeric", required: true, value: member || "", placeholder: "user id" });
  const result = h("div", { "aria-live": "polite" });
  show(
    h("h1", { text: "Who invited this member?" }),
    h("form", { class: "inline", onsubmit: (e) => { e.preventDefault(); location.hash = `#/g/${guild}/member/${input.value.trim()}`; } },
      h("label", { for: "member" }, "Member's user id", input), h("button", { type: "submit", text: "Look up" })),
    result,
  );
  if (!member) return;
  try {
    const m = await api(`${guildBase(guild)}/members/${member}`);
    const latest = m.joins[0];
    const said = !latest ? "No decided join of theirs."
      : latest.source === "invite" ? `Invited by ${latest.inviter_id ?? "an unknown inviter"} with the code ${latest.invite_code}.`
      : latest.source === "vanity" ? "Joined through the server's vanity URL."
      : latest.source === "ambiguous" ? `Ambiguous: one of ${latest.candidates.join(", ")}${latest.inviter_id ? `, all of inviter ${latest.inviter_id}` : ""}.`
      : `Unknown: ${(latest.unknown_reason || "").replaceAll("_", " ")}.`;
    result.replaceChildren(h("p", { class: "panel", id: "member-answer", text: said }),
      h("div", { class: "scroll" }, h("table", {}, h("tbody", {}, m.joins.map(joinRow)))));
  } catch (error) {
    result.replaceChildren(error.status === 404 ? h("p", { class: "empty", text: "invitrack has never seen this member join." }) : failure(error));
  }
}

async function feedPage(guild) {
  const list = h("ul", { class: "feed", id: "feed", "aria-live": "polite" });
  show(h("h1", { text: "Live feed" }), h("p", { class: "muted", text: "Joins as invitrack decides them, newest first (updated every 5 s)." }), list);
  let newest = 0;
  const load = async () => {
    const page = await api(`${guildBase(guild)}/joins?limit=50`);
    const fresh = page.joins.filter((j) => j.id > newest).reverse();
    for (const j of fresh) {
      const how = j.source === "invite" ? `invited by ${j.inviter_id} (${j.invite_code})` : j.source;
      list.prepend(h("li", {}, h("b", { text: j.member_id }), ` joined ${fmtTime(j.created_at)}: ${how}${j.fake ? " — fake" : ""}`));
      newest = Math.max(newest, j.id);
    }
    if (!list.firstChild) list.append(h("li", { class: "empty", text: "No join decided yet. They appear here as members join." }));
    else list.querySelector(".empty")?.remove();
  };
  await load();
  const timer = setInterval(() => load().catch(() => {}), 5000);
  stopPage = () => clearInterval(timer);
}

// ---- settings and admin -----------------------------------------------------------------

const fakeRules = [
  ["young_account", "Accounts younger than the threshold"],
  ["self_invite", "Members who used their own invite"],
  ["no_avatar", "Accounts without an avatar"],
  ["already_joined", "Members who had joined before"],
];
const kinds = ["invite", "vanity", "ambiguous_inviter", "ambiguous", "unknown", "fake", "leave"];

function author() {
  return `dashboard:${me.label}`.slice(0, 100);
}

async function settingsPage(guild) {
  const settings = await api(`${guildBase(guild)}/settings`);
  const admin = me.scope === "admin";
  const status = h("p", { role: "status", id: "settings-status" });
  const box = (name, label) => h("label", { class: "check" }, h("input", { type: "checkbox", name, checked: settings[name], disabled: !admin }), label);
  const channel = (name, label) => h("label", {}, label, h("input", { name, value: settings[name] ?? "", inputmode: "numeric", placeholder: "channel id (empty: off)", disabled: !admin }));
  const form = h("form", { class: "panel", id: "settings",
    onsubmit: async (e) => {
      e.preventDefault();
      const data = new FormData(form);
      const body = { author: author(), young_account_days: Number(data.get("young_account_days")) };
      for (const [name] of fakeRules) body[name] = data.get(name) === "on";
      for (const name of ["join_log_channel_id", "leave_log_channel_id", "invite_channel_id"]) body[name] = data.get(name) || null;
      try {
        await api(`${guildBase(guild)}/settings`, { method: "PUT", body });
        status.replaceChildren(h("span", { class: "ok", text: "Saved." }));
      } catch (error) {
        status.replaceChildren(failure(error));
      }
    } },
    h("h2", { text: "Fake joins" }),
    fakeRules.map(([name, label]) => box(name, label)),
    h("label", {}, "Young account threshold (days)", h("input", { type: "number", name: "young_account_days", min: 1, max: 3650, value: settings.young_account_days, disabled: !admin })),
    h("h2", { text: "Channels" }),
    channel("join_log_channel_id", "Join messages"),
    channel("leave_log_channel_id", "Leave messages"),
    channel("invite_channel_id", "Personal invites (/invite link)"),
    admin ? h("p", {}, h("button", { type: "submit", text: "Save settings" })) : h("p", { class: "muted", text: "This key reads only: changing settings needs an admin key." }),
    status,
  );
  // Templates with a live preview from the API's renderer.
  const kindSelect = h("select", { id: "template-kind" }, kinds.map((k) => h("option", { value: k, text: k.replaceAll("_", " ") })));
  const text = h("textarea", { id: "template-text", "aria-describedby": "template-help" });
  const preview = h("div", { class: "preview", id: "template-preview", "aria-live": "polite" });
  const templateStatus = h("p", { role: "status" });
  const current = () => settings.templates[kindSelect.value];
  const load = () => {
    const t = current();
    text.value = t.text ?? JSON.stringify(t, null, 2);
    refresh();
  };
  const template = () => (text.value.trim().startsWith("{") ? JSON.parse(text.value) : { text: text.value });
  let pending;
  const refresh = () => {
    clearTimeout(pending);
    pending = setTimeout(async () => {
      try {
        const shown = await api(`${guildBase(guild)}/templates/preview`, { method: "POST", body: { kind: kindSelect.value, template: template() } });
        preview.replaceChildren(shown.content ?? "", shown.embed ? h("div", {}, h("b", { text: shown.embed.title ?? "" }), h("div", { text: shown.embed.description ?? "" }), h("small", { text: shown.embed.footer ?? "" })) : "");
      } catch (error) {
        preview.replaceChildren(failure(error));
      }
    }, 250);
  };
  kindSelect.addEventListener("change", load);
  text.addEventListener("input", refresh);
  const templates = h("section", { class: "panel" },
    h("h2", { text: "Message templates" }),
    h("label", { for: "template-kind" }, "Message", kindSelect),
    h("label", { for: "template-text" }, "Wording (text, or an embed as JSON)", text),
    h("p", { id: "template-help", class: "muted" }, "Placeholders such as {member.mention}, {inviter.mention}, {invite.code}: see docs/messages.md."),
    h("h2", { text: "Preview (sample data)" }), preview,
    admin ? h("p", {}, h("button", { type: "button", onclick: async () => {
      try {
        await api(`${guildBase(guild)}/settings`, { method: "PUT", body: { author: author(), templates: { [kindSelect.value]: template() } } });
        templateStatus.replaceChildren(h("span", { class: "ok", text: "Template saved." }));
      } catch (error) {
        templateStatus.replaceChildren(failure(error));
      }
    }, text: "Save template" })) : "",
    templateStatus,
  );
  const base = guildBase(guild);
  const exportButton = (what, format) => h("button", {
    type: "button",
    class: "secondary",
    onclick: () => download(`${base}/export/${what}?format=${format}`, `invitrack-${guild}-${what}.${format}`),
    text: format.toUpperCase(),
  });
  const exportLine = (what, label) => h("li", {}, `${label}: `, exportButton(what, "csv"), " ", exportButton(what, "json"));
  const exports = h("section", { class: "panel" },
    h("h2", { text: "Export" }),
    h("ul", {}, exportLine("joins", "every join"), exportLine("inviters", "every inviter's counts")),
  );
  const importStatus = h("p", { role: "status", id: "import-status" });
  const upload = (what, type, accept, label) => {
    const input = h("input", { type: "file", accept, id: `import-${what}` });
    return h("form", { class: "inline", onsubmit: async (e) => {
      e.preventDefault();
      if (!input.files[0]) return;
      try {
        const done = await api(`${base}/import/${what}?author=${encodeURIComponent(author())}`, { method: "POST", file: input.files[0], type });
        importStatus.replaceChildren(h("span", { class: "ok", text: `Imported ${done.written} (${done.already_there} already there); ${done.inviters} inviters now.` }));
      } catch (error) {
        importStatus.replaceChildren(failure(error));
      }
    } }, h("label", { for: `import-${what}` }, label, input), h("button", { type: "submit", class: "secondary", text: "Import" }));
  };
  const imports = admin ? h("section", { class: "panel" }, h("h2", { text: "Import" }),
    upload("joins", "application/json", ".json,application/json", "Joins: an invitrack JSON export"),
    upload("bonus", "text/csv", ".csv,text/csv", "Bonus per inviter: CSV with inviter_id,amount[,reason]"),
    importStatus) : "";
  show(h("h1", { text: "Settings" }), form, templates, exports, imports);
  load();
}

async function download(path, name) {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${key()}` } });
  if (!response.ok) return;
  const url = URL.createObjectURL(await response.blob());
  h("a", { href: url, download: name }).click();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

async function adminPage(guild) {
  const base = guildBase(guild);
  const [resets, audit, keys] = await Promise.all([
    api(`${base}/resets`).catch((e) => e),
    api(`${base}/audit?limit=25`).catch((e) => e),
    api(`${base}/keys`).catch((e) => e),
  ]);
  const madeKey = h("p", { role: "status", id: "new-key" });
  const status = h("p", { role: "status", id: "admin-status" });
  const act = (fn) => async (e) => {
    e.preventDefault();
    try {
      await fn(e.target instanceof HTMLFormElement ? new FormData(e.target) : null);
      status.replaceChildren(h("span", { class: "ok", text: "Done." }));
      route();
    } catch (error) {
      status.replaceChildren(failure(error));
    }
  };
  const refused = (e) => (e instanceof Error
    ? h("p", { class: e.status === 403 ? "muted" : "error", text: e.status === 403 ? "Resets and the audit log need an admin key." : e.message })
    : null);
  show(
    h("h1", { text: "Bonus & resets" }),
    status,
    h("form", { class: "panel inline", onsubmit: act((d) => api(`${base}/inviters/${d.get("inviter")}/bonus`, { method: "POST", body: { amount: Number(d.get("amount")), reason: d.get("reason"), author: author() } })) },
      h("label", {}, "Inviter id", h("input", { name: "inviter", required: true, inputmode: "numeric" })),
      h("label", {}, "Amount (negative removes)", h("input", { name: "amount", type: "number", required: true })),
      h("label", {}, "Reason", h("input", { name: "reason" })),
      h("button", { type: "submit", text: "Give bonus" })),
    h("form", { class: "panel inline", onsubmit: act((d) => confirm("Clear these counts? A reset can be restored.") && api(`${base}/resets`, { method: "POST", body: { inviter_id: d.get("inviter") || undefined, reason: d.get("reason"), author: author() } })) },
      h("label", {}, "Inviter id (empty: everyone)", h("input", { name: "inviter", inputmode: "numeric" })),
      h("label", {}, "Reason", h("input", { name: "reason" })),
      h("button", { type: "submit", text: "Reset counts" })),
    h("h2", { text: "Resets" }),
    refused(resets) ?? (resets.resets.length === 0 ? h("p", { class: "empty", text: "No reset yet." }) :
      h("ul", {}, resets.resets.map((r) => h("li", {}, `#${r.id} ${r.inviter_id ? `inviter ${r.inviter_id}` : "everyone"}, ${r.joins_cleared} joins cleared ${fmtTime(r.created_at)} by ${r.author} `,
        r.restored_at ? h("span", { class: "muted", text: `(restored ${fmtTime(r.restored_at)})` })
          : h("button", { type: "button", class: "secondary", onclick: act(() => api(`${base}/resets/${r.id}/restore`, { method: "POST", body: { author: author() } })), text: "Restore" }))))),
    h("h2", { text: "API keys of this guild" }),
    refused(keys) ?? h("div", {},
      keys.length === 0 ? h("p", { class: "empty", text: "No key of this guild yet. Make one for a bot, a site or a script that reads its counts." }) :
        h("ul", { id: "keys" }, keys.map((k) => h("li", {}, `${k.label} (${k.scope}, made ${fmtTime(k.created_at)}) `,
          h("button", { type: "button", class: "secondary", onclick: act(() => confirm(`Revoke “${k.label}”? Whatever uses it stops working.`) && api(`${base}/keys/${k.id}?author=${encodeURIComponent(author())}`, { method: "DELETE" })), text: "Revoke" })))),
      h("form", { class: "inline", onsubmit: async (e) => {
        e.preventDefault();
        const d = new FormData(e.target);
        try {
          const made = await api(`${base}/keys`, { method: "POST", body: { label: d.get("label"), scope: d.get("scope"), author: author() } });
          madeKey.replaceChildren(h("span", { class: "ok" }, "Key made; copy it now, it is not shown again: "), h("code", { text: made.token }));
        } catch (error) {
          madeKey.replaceChildren(failure(error));
        }
      } },
        h("label", {}, "Label", h("input", { name: "label", required: true, maxlength: 100 })),
        h("label", {}, "Scope", h("select", { name: "scope" }, h("option", { value: "read", text: "read" }), h("option", { value: "admin", text: "admin" }))),
        h("button", { type: "submit", text: "Make a key" })),
      madeKey),
    h("h2", { text: "Audit log" }),
    refused(audit) ?? (audit.entries.length === 0 ? h("p", { class: "empty", text: "Nothing changed yet." }) :
      h("div", { class: "scroll" }, h("table", {}, h("tbody", {}, audit.entries.map((a) => h("tr", {},
        h("td", { text: fmtTime(a.created_at) }), h("td", { text: a.action }), h("td", { text: a.author }), h("td", { class: "hide-narrow", text: a.key_label }))))))),
  );
}

route();
