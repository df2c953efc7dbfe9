// Sweeps, in two places:
//  - the start form (experiment page): picking a preset writes its search space into the parameters box
//    and its method into "Method"; editing the box switches the preset to "Custom", so the server (which
//    fills a preset's parameters itself) keeps what was typed. The ASHA settings show only when ticked.
//  - the sweep page: while the sweep runs, GET /sweeps/<id>/charts every few seconds redraws every figure
//    with Plotly.react and puts the progress and the trials table in place; the colour select asks for
//    the figures coloured by another parameter. The page reloads once when the sweep ends (the best run
//    and its button are drawn by the server).
(function () {
  var form = document.getElementById("sweep-form");
  var presetsData = document.getElementById("sweep-presets");
  if (!form || !presetsData) return;
  var presets = JSON.parse(presetsData.textContent);
  var preset = form.elements["preset"];
  var parameters = form.elements["parameters"];
  var method = form.elements["method"];
  var earlyStop = form.elements["early_stop"];
  var asha = document.getElementById("sweep-asha");
  var trials = document.getElementById("sweep-field-trials");

  function fromPreset() {
    var chosen = presets[preset.value];
    if (!chosen) return;
    parameters.value = JSON.stringify(chosen.parameters, null, 2);
    method.value = chosen.method;
    update();
  }

  function update() {
    if (asha && earlyStop) asha.hidden = !earlyStop.checked;
    if (trials) trials.classList.toggle("muted", method.value === "grid");
  }

  preset.addEventListener("change", fromPreset);
  parameters.addEventListener("input", function () { if (presets[preset.value]) preset.value = "custom"; });
  method.addEventListener("change", update);
  if (earlyStop) earlyStop.addEventListener("change", update);
  update();
})();

(function () {
  var card = document.getElementById("sweep-progress");
  if (!card) return;
  var select = document.getElementById("sweep-colour");
  var status = card.dataset.status;
  var POLL_MS = 3000;
  var CHARTS = ["overlay", "parallel", "scatter", "importance"];
  var timer = null;

  // Plotly draws parallel coordinates with WebGL; where the browser has it turned off Plotly fills the card
  // with a large notice of its own (.no-webgl): say so in a sentence instead, and stop redrawing that chart.
  function withoutWebGL() {
    var el = document.getElementById("chart-parallel");
    if (!el || !el.querySelector(".no-webgl")) return;
    if (window.Plotly) Plotly.purge(el);
    el.removeAttribute("data-figure");
    el.className = "empty";
    el.textContent = "Parallel coordinates need WebGL, which this browser has turned off; "
      + "the chart of the metric against each parameter below shows the same trials.";
  }

  function text(id, content) {
    var el = document.getElementById(id);
    if (el) el.textContent = content;
  }

  function url() {
    return card.dataset.charts + "?colour=" + encodeURIComponent(select ? select.value : "");
  }

  function show(d) {
    CHARTS.forEach(function (name) {
      var el = document.getElementById("chart-" + name);
      if (el && el.dataset.figure && window.Plotly && d.figures[name]) {
        Plotly.react(el, d.figures[name].data, d.figures[name].layout, {responsive: true, displaylogo: false});
        el.dataset.colour = d.colour;
      }
    });
    withoutWebGL();
    var p = d.progress;
    document.getElementById("sweep-progress-bar").value = p.fraction;
    text("sweep-epochs", p.epochs_trained + " of " + p.epochs_budget + " epochs");
    text("sweep-eta", d.status === "running" && p.eta_seconds ? "about " + Math.round(p.eta_seconds) + " s left" : "");
    ["total", "done", "running", "queued", "pruned", "failed"].forEach(function (k) { text("sweep-" + k, p[k]); });
    // Rendered and escaped by the server's templates (sweeps/trials.html, sweeps/best.html).
    var table = document.getElementById("sweep-trials-table");
    if (table) table.innerHTML = d.table;
    var best = document.getElementById("sweep-best");
    if (best) best.innerHTML = d.best;
  }

  function refresh() {
    return fetch(url(), {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (d) {
        show(d);
        if (d.status !== status) {
          text("sweep-status", d.status);
          document.getElementById("sweep-status").className = "badge badge-" + d.status;
          if (status === "running") { clearInterval(timer); timer = null; window.location.reload(); }
          status = d.status;
        }
        return d;
      });
  }

  if (select) {
    select.addEventListener("change", function () {
      var overlay = document.getElementById("chart-overlay");
      if (overlay) overlay.dataset.colour = "";  // set again once the figure coloured by the choice is drawn
      refresh().catch(function () {});
      if (window.history && window.history.replaceState) {
        window.history.replaceState(null, "", "?colour=" + encodeURIComponent(select.value));
      }
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var overlay = document.getElementById("chart-overlay");
    if (overlay && select) overlay.dataset.colour = select.value;
    withoutWebGL();
    if (status === "running") {
      timer = setInterval(function () { refresh().catch(function () {}); }, POLL_MS);  // a miss is retried next tick
    }
  });
})();
