// While a dataset ingests, follow its progress and show the result when it is done.
(function () {
  var box = document.getElementById("ingest");
  if (!box) return;
  var bar = document.getElementById("ingest-bar");
  var percent = document.getElementById("ingest-percent");
  function poll() {
    fetch(box.dataset.api, {credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (d) {
        if (d.status !== "ingesting") { window.location.reload(); return; }
        bar.value = d.progress;
        percent.textContent = Math.round(d.progress * 100) + "%";
        setTimeout(poll, 1000);
      })
      .catch(function () { setTimeout(poll, 2000); });
  }
  poll();
})();
