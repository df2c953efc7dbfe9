// Sends the chosen images to /api/runs/<id>/predict and shows each one's top classes as bars.
(function () {
  var form = document.getElementById("predict-form");
  if (!form) return;
  var input = document.getElementById("predict-files");
  var zone = document.getElementById("predict-drop");
  var results = document.getElementById("predict-results");
  var errorBox = document.getElementById("predict-error");
  var timing = document.getElementById("predict-time");

  ["dragenter", "dragover"].forEach(function (t) {
    zone.addEventListener(t, function (e) { e.preventDefault(); zone.classList.add("dragging"); });
  });
  ["dragleave", "drop"].forEach(function (t) {
    zone.addEventListener(t, function (e) { e.preventDefault(); zone.classList.remove("dragging"); });
  });
  zone.addEventListener("drop", function (e) {
    if (e.dataTransfer.files.length) { input.files = e.dataTransfer.files; form.requestSubmit(); }
  });

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;  // text only: file and class names are user input
    return node;
  }

  function show(files, body) {
    results.textContent = "";
    var rows = body.results || [{name: files[0].name, predictions: body.predictions}];
    rows.forEach(function (row, i) {
      var card = el("figure", "prediction");
      var img = el("img");
      img.src = URL.createObjectURL(files[i]);
      img.alt = row.name;
      card.appendChild(img);
      var caption = el("figcaption");
      caption.appendChild(el("div", "prediction-name", row.name));
      row.predictions.forEach(function (p) {
        var line = el("div", "bar-line");
        line.appendChild(el("span", "bar-label", p.label));
        var bar = el("span", "bar");
        var fill = el("span", "bar-fill");
        fill.style.width = (p.probability * 100).toFixed(1) + "%";
        bar.appendChild(fill);
        line.appendChild(bar);
        line.appendChild(el("span", "bar-value", (p.probability * 100).toFixed(1) + "%"));
        caption.appendChild(line);
      });
      card.appendChild(caption);
      results.appendChild(card);
    });
    timing.textContent = "Inference took " + body.inference_ms.toFixed(1) + " ms for " + rows.length +
      " image" + (rows.length === 1 ? "" : "s") + ".";
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    errorBox.hidden = true;
    var files = Array.prototype.slice.call(input.files);
    if (!files.length) { errorBox.textContent = "Choose at least one image."; errorBox.hidden = false; return; }
    var data = new FormData();
    files.forEach(function (f) { data.append(files.length === 1 ? "image" : "images", f); });
    data.append("top_k", document.getElementById("predict-top-k").value);
    fetch(form.dataset.api, {
      method: "POST", body: data, credentials: "same-origin",
      headers: {"X-CSRFToken": form.querySelector("[name=csrfmiddlewaretoken]").value, "Accept": "application/json"}
    }).then(function (r) { return r.json().then(function (body) { return {ok: r.ok, body: body}; }); })
      .then(function (answer) {
        if (answer.ok) show(files, answer.body);
        else { errorBox.textContent = answer.body.error || "The server refused the images."; errorBox.hidden = false; }
      })
      .catch(function () { errorBox.textContent = "The request failed; try again."; errorBox.hidden = false; });
  });
})();
