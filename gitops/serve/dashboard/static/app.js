// The dashboard's only script: live pages through the event stream, streamed logs, the theme
// and keyboard shortcuts. Nothing from the server is ever put into the page as HTML here but
// whole pages the server rendered (and escaped); log text goes in as text.
"use strict";
(function () {
  const root = document.documentElement;
  const saved = localStorage.getItem("gitops-theme");
  if (saved) root.dataset.theme = saved;
  document.addEventListener("DOMContentLoaded", function () {
    const theme = document.getElementById("theme");
    if (theme) theme.addEventListener("click", function () {
      const dark = root.dataset.theme ? root.dataset.theme === "dark"
        : window.matchMedia("(prefers-color-scheme: dark)").matches;
      root.dataset.theme = dark ? "light" : "dark";
      localStorage.setItem("gitops-theme", root.dataset.theme);
    });
    live();
    logs();
    keys();
  });

  // A live page is rendered again when the stream says something changed: the server's page,
  // fetched whole, replaces the main element's content. Focus stays where it was. At once:
  // the server spaces its changes; one that comes while a fetch runs makes one more after it.
  function live() {
    const badge = document.getElementById("live");
    const main = document.querySelector("main[data-live]");
    if (!window.EventSource) return;
    const stream = new EventSource("/ui/stream");
    let busy = false, again = false;
    stream.onopen = function () { if (badge) { badge.textContent = "live"; badge.classList.add("on"); } };
    stream.onerror = function () { if (badge) { badge.textContent = "reconnecting…"; badge.classList.remove("on"); } };
    stream.addEventListener("change", function () {
      if (main) refresh();
    });
    async function refresh() {
      if (busy) { again = true; return; }
      busy = true;
      try {
        const answer = await fetch(location.href, { headers: { "X-Gitops-Live": "1" }, credentials: "same-origin" });
        if (!answer.ok) return;
        const doc = new DOMParser().parseFromString(await answer.text(), "text/html");
        const fresh = doc.querySelector("main");
        if (!fresh) return;
        const focused = document.activeElement && document.activeElement.closest("main") ? path(document.activeElement) : null;
        main.replaceChildren(...Array.from(fresh.childNodes).map(function (n) { return document.importNode(n, true); }));
        if (focused) { const el = main.querySelector(focused); if (el) el.focus(); }
        main.dispatchEvent(new CustomEvent("gitops:refreshed", { bubbles: true }));
      } catch (e) { /* the next change tries again */ }
      finally { busy = false; if (again) { again = false; refresh(); } }
    }
  }
  function path(el) {
    if (el.id) return "#" + CSS.escape(el.id);
    if (el.getAttribute("href")) return el.tagName.toLowerCase() + '[href="' + CSS.escape(el.getAttribute("href")) + '"]';
    return null;
  }

  // Streamed logs: each source is a followed log of one pod; its lines go in as text.
  function logs() {
    const pre = document.getElementById("logs");
    if (!pre) return;
    pre.querySelectorAll("span.src").forEach(function (src) { follow(pre, src.dataset.log, src.dataset.prefix); });
  }
  async function follow(pre, url, prefix) {
    try {
      const answer = await fetch(url, { credentials: "same-origin" });
      if (!answer.ok || !answer.body) { line(pre, prefix, (await answer.text()).trim() || ("HTTP " + answer.status), "gone"); return; }
      const reader = answer.body.getReader();
      const decoder = new TextDecoder();
      let rest = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        rest += decoder.decode(value, { stream: true });
        const parts = rest.split("\n");
        rest = parts.pop();
        parts.forEach(function (text) { line(pre, prefix, text); });
      }
      if (rest) line(pre, prefix, rest);
      line(pre, prefix, "(the log ended)", "gone");
    } catch (e) { line(pre, prefix, "(the stream broke: " + e + ")", "gone"); }
  }
  function line(pre, prefix, text, style) {
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    if (prefix) { const p = document.createElement("span"); p.className = "p"; p.textContent = "[" + prefix + "] "; pre.appendChild(p); }
    const t = document.createElement("span");
    if (style) t.className = style;
    t.textContent = text + "\n";
    pre.appendChild(t);
    while (pre.childNodes.length > 20000) pre.removeChild(pre.firstChild);
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  }

  // g o, g m, g e: go to a page; /: the first filter.
  function keys() {
    let pending = false;
    document.addEventListener("keydown", function (e) {
      const t = e.target;
      if (e.ctrlKey || e.metaKey || e.altKey || (t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA"))) return;
      if (e.key === "/") { const f = document.querySelector("[data-filter]"); if (f) { e.preventDefault(); f.focus(); } return; }
      if (pending) {
        pending = false;
        const link = document.querySelector('header nav a[data-key="' + e.key + '"]');
        if (link) { e.preventDefault(); location.href = link.href; }
        return;
      }
      if (e.key === "g") pending = true;
    });
  }
})();
