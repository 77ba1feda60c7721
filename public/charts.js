// Draws every element with a `data-plot` attribute (a Plotly figure as JSON) with the plotly.js
// that Strata serves itself, and redraws it when the attribute changes or the element appears
// later (client-side navigation, hydration). Leptos renders the element; this only paints it.
(function () {
  "use strict";
  // Large scatter plots use WebGL (scattergl); a browser without a usable WebGL (a VM, a remote
  // desktop, a locked-down machine) gets the same points drawn as SVG instead of Plotly's "WebGL is
  // not supported" box: Plotly's own test fails there, so its box is what is checked.
  var noWebgl = false;
  function svgOnly(fig) {
    (fig.data || []).forEach(function (t) { if (t.type === "scattergl") t.type = "scatter"; });
  }
  function draw(el) {
    var json = el.getAttribute("data-plot");
    if (!json || el.__strataPlotted === json || !window.Plotly) return;
    try {
      var fig = JSON.parse(json);
      if (noWebgl) svgOnly(fig);
      var config = { responsive: true, displaylogo: false };
      var done = function () {
        el.__strataPlotted = json;
        el.setAttribute("data-rendered", "true");
      };
      window.Plotly.react(el, fig.data || [], fig.layout || {}, config).then(function () {
        if (!noWebgl && el.querySelector(".no-webgl")) {
          noWebgl = true;
          svgOnly(fig);
          window.Plotly.purge(el);
          return window.Plotly.newPlot(el, fig.data || [], fig.layout || {}, config).then(done);
        }
        done();
      });
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
