// The run page grows live: new epochs from /api/runs/<id>/metrics?after=N are appended to the
// charts with Plotly.extendTraces (no reload), the progress bar and ETA follow the run, and the
// page reloads once when the run ends, to show the evaluation.
(function () {
  var card = document.getElementById("run-status-card");
  if (!card) return;
  var traces = JSON.parse(document.getElementById("live-traces").textContent);
  var lastEpoch = parseInt(card.dataset.lastEpoch, 10) || 0;
  var status = card.dataset.status;
  var ACTIVE = {queued: true, running: true};
  var POLL_MS = 1500;

  function value(row, key) {
    if (key === "gap") return (row.train_acc == null || row.val_acc == null) ? null : row.train_acc - row.val_acc;
    if (key === "lr" && !(row.lr > 0)) return null;  // a log axis cannot show zero
    return row[key];
  }

  function extend(rows) {
    Object.keys(traces).forEach(function (chart) {
      var el = document.getElementById("chart-" + chart);
      if (!el || !el.data) return;
      var keys = traces[chart];
      var update = {
        x: keys.map(function () { return rows.map(function (r) { return r.epoch; }); }),
        y: keys.map(function (k) { return rows.map(function (r) { return value(r, k); }); })
      };
      Plotly.extendTraces(el, update, keys.map(function (_, i) { return i; }));
    });
  }

  function text(id, content) {
    var el = document.getElementById(id);
    if (el) el.textContent = content;
  }

  // The latest epoch's throughput, and its peak GPU memory (null when it trained on a CPU).
  function speed(row) {
    if (row.images_per_s == null) return;
    text("run-speed", Math.round(row.images_per_s) + " images/s · " + (row.gpu_memory_peak_mb == null ? "CPU"
      : "peak GPU memory " + Math.round(row.gpu_memory_peak_mb) + " MB"));
  }

  function refreshDetail() {
    fetch(card.dataset.run, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (d) {
      text("run-best-epoch", d.best_epoch == null ? "—" : d.best_epoch);
      text("run-best-val-acc", d.best_val_acc == null ? "—" : d.best_val_acc.toFixed(4));
      text("run-device", d.device || "—");
    });
  }

  function poll() {
    fetch(card.dataset.metrics + "?after=" + lastEpoch, {credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (d) {
        if (d.epochs.length) {
          extend(d.epochs);
          speed(d.epochs[d.epochs.length - 1]);
          lastEpoch = d.epochs[d.epochs.length - 1].epoch;
          ["loss", "accuracy", "gap"].forEach(function (chart) {
            var el = document.getElementById("chart-" + chart);
            if (el && el.data && d.overlays) Plotly.relayout(el, d.overlays);
          });
          if (d.diagnosis) {
            text("diagnosis-message", d.diagnosis.message);
            document.getElementById("diagnosis").className = "card diagnosis diagnosis-" + d.diagnosis.kind;
          }
          refreshDetail();
        }
        document.getElementById("run-progress").value = d.progress;
        text("run-epoch", d.epoch);
        text("run-eta", d.eta_seconds ? "about " + Math.round(d.eta_seconds) + " s left" : "");
        if (d.status !== status) {
          text("run-status", d.status);
          document.getElementById("run-status").className = "badge badge-" + d.status;
          if (!ACTIVE[d.status]) { window.location.reload(); return; }
          status = d.status;
        }
        if (ACTIVE[status]) setTimeout(poll, POLL_MS);
      })
      .catch(function () { setTimeout(poll, POLL_MS * 2); });
  }

  if (ACTIVE[status]) document.addEventListener("DOMContentLoaded", function () { setTimeout(poll, POLL_MS); });
})();
