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
  if ("IntersectionObserver" in window) {
    var observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (entry.isIntersecting) {
          load(entry.target);
          current = parseInt(entry.target.dataset.number, 10);
          if (numberInput && document.activeElement !== numberInput) { numberInput.value = current; }
        }
      });
    }, { rootMargin: "200px 0px" });
    figures.forEach(function (f) { observer.observe(f); });
  } else {
    figures.forEach(load);
  }
  function goTo(n) {
    n = Math.max(1, Math.min(figures.length, n));
    var f = document.getElementById("page-" + n);
    if (f) { load(f); f.scrollIntoView({ block: "start" }); current = n; if (numberInput) { numberInput.value = n; } }
  }
  function setZoom(z) {
    zoom = Math.max(50, Math.min(300, z));
    figures.forEach(function (f) { f.style.maxWidth = (widthBase * zoom / 100) + "px"; });
    var label = document.getElementById("zoom-level");
    if (label) { label.textContent = zoom + "%"; }
  }
  function on(id, fn) { var el = document.getElementById(id); if (el) { el.addEventListener("click", fn); } }
  on("zoom-in", function () { setZoom(zoom + 25); });
  on("zoom-out", function () { setZoom(zoom - 25); });
  on("page-prev", function () { goTo(current - 1); });
  on("page-next", function () { goTo(current + 1); });
  if (numberInput) { numberInput.addEventListener("change", function () { goTo(parseInt(numberInput.value, 10) || 1); }); }
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
