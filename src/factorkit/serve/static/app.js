// factorkit web page: search, rate or like, and watch the recommendations change.
// Plain browser JavaScript, no build step; talks to the service's JSON endpoints.
"use strict";

const state = { explicit: false, ratings: new Map(), titles: new Map(), lastRecs: [] };
const $ = (id) => document.getElementById(id);
const key = (id) => JSON.stringify(id);  // ids stay JSON numbers or strings, never coerced

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  const data = await response.json();
  if (!response.ok) throw new Error(data.detail || response.statusText);
  return data;
}

function status(message) { $("status").textContent = message || ""; }

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function label(item, title) {
  if (title) state.titles.set(key(item), title);
  return state.titles.get(key(item)) || String(item);
}

function rateButtons(item) {
  const box = el("span", "rate");
  const current = state.ratings.get(key(item));
  const values = state.explicit ? [1, 2, 3, 4, 5] : [1];
  for (const v of values) {
    const b = el("button", current && current.rating === v ? "on" : "",
                 state.explicit ? v + "★" : (current ? "♥ liked" : "♡ like"));
    b.dataset.rating = v;
    b.addEventListener("click", () => rate(item, v));
    box.appendChild(b);
  }
  return box;
}

function itemRow(item, title, extra) {
  const li = el("li");
  li.dataset.item = key(item);
  const t = el("span", "title", label(item, title));
  t.addEventListener("click", () => showSimilar(item));
  li.appendChild(t);
  if (extra) li.appendChild(extra);
  return li;
}

function renderResults(items) {
  const list = $("results");
  list.replaceChildren(...items.map((x) => itemRow(x.item, x.title, rateButtons(x.item))));
}

function renderRated() {
  const list = $("rated");
  $("rated-count").textContent = state.ratings.size;
  if (state.ratings.size === 0) {
    list.replaceChildren(el("li", "hint", "Nothing yet."));
    return;
  }
  const rows = [];
  for (const { item, rating } of state.ratings.values()) {
    const remove = el("button", "", "×");
    remove.title = "remove";
    remove.addEventListener("click", () => unrate(item));
    const box = el("span", "rate");
    if (state.explicit) box.appendChild(el("span", "score", rating + "★"));
    box.appendChild(remove);
    rows.push(itemRow(item, null, box));
  }
  list.replaceChildren(...rows);
}

function renderRecs(items) {
  const before = new Set(state.lastRecs.map((x) => key(x.item)));
  const rows = items.map((x) => {
    const info = el("span", "score", x.score.toFixed(3));
    const li = itemRow(x.item, x.title, rateButtons(x.item));
    li.insertBefore(info, li.children[1]);
    if (x.because && x.because.length) {
      const names = x.because.slice(0, 2).map((b) => label(b.item, b.title)).join(" and ");
      li.querySelector(".title").appendChild(
        el("span", "because", (state.explicit ? "because you rated " : "because you liked ") + names));
    }
    if (!before.has(key(x.item))) li.classList.add("changed");
    return li;
  });
  state.lastRecs = items;
  $("recs").replaceChildren(...rows);
  $("recs-hint").hidden = items.length > 0;
}

async function refresh() {
  if (state.ratings.size === 0) { renderRecs([]); $("recs-hint").hidden = false; return; }
  const rated = [...state.ratings.values()];
  const body = { items: rated.map((r) => r.item), k: 10, explain: true };
  if (state.explicit) body.ratings = rated.map((r) => r.rating);
  try {
    const data = await api("/recommend/new-user", body);
    renderRecs(data.items);
    status("");
  } catch (err) { status(err.message); }
}

async function rate(item, rating) {
  const current = state.ratings.get(key(item));
  if (!state.explicit && current) { return unrate(item); }  // like toggles
  state.ratings.set(key(item), { item, rating });
  renderRated();
  rerenderButtons();
  await refresh();
}

async function unrate(item) {
  state.ratings.delete(key(item));
  renderRated();
  rerenderButtons();
  await refresh();
}

function rerenderButtons() {
  for (const li of document.querySelectorAll("#results li, #recs li, #similar li")) {
    const old = li.querySelector(".rate");
    if (old) old.replaceWith(rateButtons(JSON.parse(li.dataset.item)));
  }
}

async function showSimilar(item) {
  try {
    const data = await api(`/items/${encodeURIComponent(item)}/similar?k=10`);
    $("similar-title").textContent = label(item, data.title);
    $("similar").replaceChildren(...data.items.map((x) => itemRow(x.item, x.title, rateButtons(x.item))));
    $("similar-panel").hidden = false;
    status("");
  } catch (err) { status(err.message); }
}

let searchTimer = null;
async function search() {
  const q = $("search").value.trim();
  try {
    if (!q) {
      const data = await api("/onboarding?n=20");
      $("results-label").textContent = "Start with these: they tell the model most about you.";
      renderResults(data.items);
      return;
    }
    const data = await api(`/items?q=${encodeURIComponent(q)}&limit=20`);
    $("results-label").textContent = data.items.length ? `Titles containing “${q}”` : `No title contains “${q}”.`;
    renderResults(data.items);
    status("");
  } catch (err) { status(err.message); }
}

async function start() {
  try {
    const info = await api("/model");
    state.explicit = info.explicit;
    $("model-line").textContent =
      `${info.model_class}: ${info.users.toLocaleString()} users, ${info.items.toLocaleString()} items` +
      (info.explicit ? " — rate items 1 to 5 stars" : " — like the items you enjoyed");
  } catch (err) { status(err.message); }
  $("search").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(search, 150);
  });
  await search();
  document.body.dataset.ready = "1";
}

start();
