// The LR finder section of the experiment page: while its range test is queued or running, poll the
// API and reload the page when it ends (the page then draws the chart from its json_script).
(function () {
  var section = document.getElementById("lr-finder");
  if (!section) return;
  var status = section.dataset.status;
  var POLL_MS = 2000;

  function latest() {
    return fetch(section.dataset.api, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); });
  }

  if (status === "queued" || status === "running") {
    var timer = setInterval(function () {
      latest().then(function (d) {
        var badge = document.getElementById("lr-finder-status");
        if (badge) { badge.textContent = d.status; badge.className = "badge badge-" + d.status; }
        if (d.status !== "queued" && d.status !== "running") { clearInterval(timer); location.reload(); }
      }).catch(function () {});  // a missed poll is retried at the next tick
    }, POLL_MS);
  }
})();
