// Draws every element with a `data-plot` attribute (a Plotly figure as JSON) with the plotly.js
// that Strata serves itself, and redraws it when the attribute changes or the element appears
// later (client-side navigation, hydration). Leptos renders the element; this only paints it.
(function () {
  "use strict";
  // Strata serves plotly.js's "cartesian" bundle (scatter, bar, box, histogram, heatmap: what its
  // charts use; 1.4 MB instead of the full 4.8 MB). It has no WebGL traces, so a figure that asks
  // for one (a large scatter) is drawn as SVG, which also works where WebGL does not.
  function svgOnly(fig) {
    (fig.data || []).forEach(function (t) { if (t.type === "scattergl") t.type = "scatter"; });
  }
  // plotly.js is fetched only by a page that has a chart, once, when the first one appears.
  var loading = null;
  function loadPlotly() {
    if (loading) return;
    loading = document.createElement("script");
    loading.src = "/vendor/plotly.min.js";
    loading.onload = function () { drawAll(document.body); };
    document.head.appendChild(loading);
  }
  // On a narrow screen the legend goes below the chart (beside it, it leaves the plot no room).
  function narrow(fig) {
    var l = fig.layout = fig.layout || {};
    if (l.showlegend === false) return;
    l.legend = Object.assign({}, l.legend, { orientation: "h", x: 0, xanchor: "left", y: -0.3, yanchor: "top" });
    l.margin = Object.assign({}, l.margin, { r: 10 });
  }
  function draw(el) {
    var json = el.getAttribute("data-plot");
    if (!json || el.__strataPlotted === json) return;
    if (!window.Plotly) return loadPlotly();
    try {
      var fig = JSON.parse(json);
      svgOnly(fig);
      if (el.clientWidth && el.clientWidth < 600) narrow(fig);
      var config = { responsive: true, displaylogo: false };
      var done = function () {
        el.__strataPlotted = json;
        el.setAttribute("data-rendered", "true");
        // The figure around it carries the chart's name: tests and scripts wait on it too.
        var fig = el.closest("figure");
        if (fig) fig.setAttribute("data-rendered", "true");
      };
      window.Plotly.react(el, fig.data || [], fig.layout || {}, config).then(done);
    } catch (e) {
      el.textContent = "This chart could not be drawn: " + e;
    }
  }
  function drawAll(root) {
    if (root.nodeType !== 1) return;
    if (root.hasAttribute("data-plot")) draw(root);
    root.querySelectorAll("[data-plot]").forEach(draw);
  }
  function start() {
    drawAll(document.body);
    new MutationObserver(function (records) {
      records.forEach(function (r) {
        if (r.type === "attributes") draw(r.target);
        r.addedNodes.forEach(drawAll);
      });
    }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-plot"] });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();

// "Copy link" buttons: the URL holds the whole view state, so copying it shares the view. A
// button with `data-copy-text` copies that text instead (a share link).
(function () {
  "use strict";
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest && ev.target.closest("[data-copy-link],[data-copy-text]");
    if (!b) return;
    var href = b.getAttribute("data-copy-text") || window.location.href;
    var done = function () { b.textContent = "Link copied"; b.setAttribute("data-copied", href); };
    if (navigator.clipboard && navigator.clipboard.writeText) navigator.clipboard.writeText(href).then(done, done);
    else done();
  });
})();

// Clickable charts: a plot with `data-click-href` (containing "{id}") opens that address with the
// clicked point's customdata, e.g. to select an example on the what-if page. The address is
// followed as a link click, so a hydrated page navigates in place (the router takes same-origin
// link clicks; `data-noscroll` keeps the scroll position) and an unhydrated one loads it.
(function () {
  "use strict";
  function wire(el) {
    if (el.__strataClick || !el.on) return;
    el.__strataClick = true;
    el.on("plotly_click", function (ev) {
      var p = ev && ev.points && ev.points[0];
      if (!p || p.customdata === undefined) return;
      var a = document.createElement("a");
      a.href = el.getAttribute("data-click-href").replace("%7Bid%7D", encodeURIComponent(p.customdata)).replace("{id}", encodeURIComponent(p.customdata));
      a.setAttribute("data-noscroll", "");
      a.hidden = true;
      el.appendChild(a);
      a.click();
      a.remove();
    });
  }
  new MutationObserver(function () {
    document.querySelectorAll('[data-click-href][data-rendered="true"]').forEach(wire);
  }).observe(document.documentElement, { subtree: true, attributes: true, attributeFilter: ["data-rendered"] });
})();

// Until the WASM bundle has hydrated the page, controls whose effect needs it (those outside a
// form: a form still submits natively) are disabled, so a choice made during a slow first load is
// never silently dropped; they come back exactly as the page rendered them once it is live.
(function () {
  "use strict";
  var body = document.body;
  if (!body || body.getAttribute("data-hydrated") === "true") return;
  var held = [];
  document.querySelectorAll("main select, main input, main button, main textarea").forEach(function (el) {
    if (el.disabled || el.closest("form")) return;
    el.disabled = true;
    el.setAttribute("data-until-hydrated", "");
    held.push(el);
  });
  body.setAttribute("aria-busy", "true");
  function release() {
    held.forEach(function (el) { el.disabled = false; el.removeAttribute("data-until-hydrated"); });
    held = [];
    body.removeAttribute("aria-busy");
  }
  new MutationObserver(function (_, obs) {
    if (body.getAttribute("data-hydrated") === "true") { release(); obs.disconnect(); }
  }).observe(body, { attributes: true, attributeFilter: ["data-hydrated"] });
})();

// A GET form leaves its empty fields out of the address it opens (`?slice=&model=` says nothing and
// hides the defaults): they are disabled for the moment the form is read (this runs in the capture
// phase, before the router's own submit handler builds the URL), then enabled again.
(function () {
  "use strict";
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form || (form.getAttribute("method") || "get").toLowerCase() !== "get") return;
    var off = [];
    Array.prototype.forEach.call(form.elements, function (el) {
      if (el.name && !el.disabled && el.value === "" && el.type !== "submit" && el.type !== "button") {
        el.disabled = true;
        off.push(el);
      }
    });
    setTimeout(function () { off.forEach(function (el) { el.disabled = false; }); }, 0);
  }, true);
})();
