// The viewer: lazy page loading, zoom, page navigation, heartbeats. No external code.
// Drag, the context menu and printing are discouraged here and in viewer.css: deterrence only; the stamp
// and the invisible mark on every page are the control.
(function () {
  "use strict";
  var root = document.getElementById("viewer");
  var pages = document.getElementById("pages");
  if (!root || !pages) { return; }
  var figures = Array.prototype.slice.call(pages.querySelectorAll(".page"));
  var seen = {};
  var seenCount = 0;
  var zoom = 100;
  var widthBase = 900;

  function load(figure) {
    var img = figure.querySelector("img");
    if (img && img.dataset.src && !img.getAttribute("src")) { img.setAttribute("src", img.dataset.src); }
    var n = figure.dataset.number;
    if (!seen[n]) { seen[n] = true; seenCount += 1; }
  }
  var current = 1;
  var numberInput = document.getElementById("page-number");
  // A control that can do nothing (the previous page on the first, zoom at its bound) is disabled, so a click
  // on it is never a click that does nothing visible.
  function edges() {
    var bounds = { "page-prev": current <= 1, "page-next": current >= figures.length,
                   "zoom-out": zoom <= 50, "zoom-in": zoom >= 300 };
    Object.keys(bounds).forEach(function (id) {
      var el = document.getElementById(id);
      if (el) { el.disabled = bounds[id]; }
    });
  }
  // The page being read is the last one whose top has passed the upper third of the window (the last one when
  // the window is at the end). The observer below loads pages 200px ahead of sight, so the page it saw last
  // is not the one being read whenever short pages (a narrow window, landscape pages) enter together.
  function reading() {
    var line = window.innerHeight / 3;
    var n = 1;
    figures.forEach(function (f) { if (f.getBoundingClientRect().top <= line) { n = parseInt(f.dataset.number, 10); } });
    if (window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 2) { n = figures.length; }
    return n;
  }
  var pending = false;
  window.addEventListener("scroll", function () {
    if (pending) { return; }
    pending = true;
    window.requestAnimationFrame(function () {
      pending = false;
      current = reading();
      if (numberInput && document.activeElement !== numberInput) { numberInput.value = current; }
      edges();
    });
  }, { passive: true });
  if ("IntersectionObserver" in window) {
    var observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) { if (entry.isIntersecting) { load(entry.target); } });
    }, { rootMargin: "200px 0px" });
    figures.forEach(function (f) { observer.observe(f); });
  } else {
    figures.forEach(load);
  }
  function goTo(n) {
    n = Math.max(1, Math.min(figures.length, n));
    var f = document.getElementById("page-" + n);
    if (f) { load(f); f.scrollIntoView({ block: "start" }); current = n; if (numberInput) { numberInput.value = n; } }
    edges();
  }
  function setZoom(z) {
    zoom = Math.max(50, Math.min(300, z));
    figures.forEach(function (f) { f.style.maxWidth = (widthBase * zoom / 100) + "px"; });
    var label = document.getElementById("zoom-level");
    if (label) { label.textContent = zoom + "%"; }
    edges();
  }
  function on(id, fn) { var el = document.getElementById(id); if (el) { el.addEventListener("click", fn); } }
  on("zoom-in", function () { setZoom(zoom + 25); });
  on("zoom-out", function () { setZoom(zoom - 25); });
  on("page-prev", function () { goTo(current - 1); });
  on("page-next", function () { goTo(current + 1); });
  if (numberInput) { numberInput.addEventListener("change", function () { goTo(parseInt(numberInput.value, 10) || 1); }); }
  edges();
  pages.addEventListener("contextmenu", function (e) { e.preventDefault(); });
  pages.addEventListener("dragstart", function (e) { e.preventDefault(); });

  var url = root.dataset.heartbeatUrl;
  var csrf = root.dataset.csrf;
  var every = (parseInt(root.dataset.heartbeatSeconds, 10) || 15) * 1000;
  function beat(closing) {
    if (!url) { return; }
    try {
      fetch(url, {
        method: "POST", credentials: "same-origin", keepalive: !!closing,
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify({ pages_seen: seenCount, closing: !!closing })
      }).catch(function () {});
    } catch (e) { /* a lost heartbeat costs only its seconds */ }
  }
  setInterval(function () { if (document.visibilityState === "visible") { beat(false); } }, every);
  window.addEventListener("pagehide", function () { beat(true); });
}());
