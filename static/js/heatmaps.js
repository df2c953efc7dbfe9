// "Show where it looked" on a run's misclassified images: asks /api/runs/<id>/explain/<index>?class=
// for each image's two Grad-CAM heatmaps (its predicted class, its true class), a few at a time.
(function () {
  var button = document.getElementById("show-cams");
  if (!button) return;
  var gallery = document.getElementById("misclassified");
  var PARALLEL = 4;

  function load(img) {
    var url = button.dataset.api + "/" + encodeURIComponent(img.dataset.image) +
      "?class=" + encodeURIComponent(img.dataset["class"]);
    return fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.json().then(function (body) { return {ok: r.ok, body: body}; }); })
      .then(function (answer) {
        if (answer.ok) { img.src = answer.body.heatmap; img.hidden = false; }
        else img.title = answer.body.error || "no heatmap";
      })
      .catch(function () { img.title = "the request failed"; });
  }

  button.addEventListener("click", function () {
    button.disabled = true;
    button.textContent = "Looking…";
    gallery.classList.add("with-cams");
    document.getElementById("cams-hint").hidden = false;
    var queue = Array.prototype.slice.call(gallery.querySelectorAll("img.cam"));
    var running = 0;
    function next() {
      if (!queue.length) { if (!running) button.textContent = "Heatmaps shown"; return; }
      running += 1;
      load(queue.shift()).then(function () { running -= 1; next(); });
    }
    for (var i = 0; i < PARALLEL; i++) next();
  });
})();
