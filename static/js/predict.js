// Sends the chosen images to /api/runs/<id>/predict and shows each one's top classes as bars; with
// "show where it looked" on, asks /explain for each image's Grad-CAM heatmap, and "look inside" asks
// /activations for one image's maps per stage.
(function () {
  var form = document.getElementById("predict-form");
  if (!form) return;
  var input = document.getElementById("predict-files");
  var zone = document.getElementById("predict-drop");
  var results = document.getElementById("predict-results");
  var errorBox = document.getElementById("predict-error");
  var timing = document.getElementById("predict-time");
  var toggle = document.getElementById("explain-toggle");
  var explainClass = document.getElementById("explain-class");
  var inside = document.getElementById("inside");
  var shown = [];  // [{file, card}] of the latest answer

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

  function fail(message) { errorBox.textContent = message; errorBox.hidden = false; }

  function send(url, data) {
    return fetch(url, {
      method: "POST", body: data, credentials: "same-origin",
      headers: {"X-CSRFToken": form.querySelector("[name=csrfmiddlewaretoken]").value, "Accept": "application/json"}
    }).then(function (r) { return r.json().then(function (body) { return {ok: r.ok, body: body}; }); });
  }

  function explain(item) {
    var old = item.card.querySelector(".heatmap");
    if (old) old.remove();
    if (!toggle.checked) return;
    var data = new FormData();
    data.append("image", item.file);
    if (explainClass.value) data.append("class", explainClass.value);
    send(toggle.dataset.api, data).then(function (answer) {
      if (!answer.ok) { fail(answer.body.error || "The server could not explain the image."); return; }
      var figure = el("div", "heatmap");
      var img = el("img");
      img.src = answer.body.heatmap;
      img.alt = "where the model looked for " + answer.body["class"];
      figure.appendChild(img);
      figure.appendChild(el("span", "hint", "where it looked for " + answer.body["class"]));
      item.card.insertBefore(figure, item.card.querySelector("figcaption"));
    }).catch(function () { fail("The request failed; try again."); });
  }

  function lookInside(item) {
    var data = new FormData();
    data.append("image", item.file);
    send(inside.dataset.api, data).then(function (answer) {
      if (!answer.ok) { fail(answer.body.error || "The server could not look inside."); return; }
      var stages = document.getElementById("inside-stages");
      stages.textContent = "";
      answer.body.stages.forEach(function (stage) {
        var figure = el("figure", "stage");
        var img = el("img");
        img.src = stage.image;
        img.alt = "activations of " + stage.name;
        figure.appendChild(img);
        figure.appendChild(el("figcaption", null, stage.name + " · " + stage.shape.join("×") +
          " · channels " + stage.channels.join(", ")));
        stages.appendChild(figure);
      });
      document.getElementById("inside-name").textContent = item.file.name;
      inside.hidden = false;
      inside.scrollIntoView({behavior: "smooth"});
    }).catch(function () { fail("The request failed; try again."); });
  }

  function show(files, body) {
    results.textContent = "";
    shown = [];
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
      var item = {file: files[i], card: card};
      var look = el("button", "link-button look-inside", "Look inside");
      look.type = "button";
      look.addEventListener("click", function () { lookInside(item); });
      caption.appendChild(look);
      card.appendChild(caption);
      results.appendChild(card);
      shown.push(item);
      explain(item);
    });
    timing.textContent = "Inference took " + body.inference_ms.toFixed(1) + " ms for " + rows.length +
      " image" + (rows.length === 1 ? "" : "s") + ".";
  }

  function explainAll() { errorBox.hidden = true; shown.forEach(explain); }
  toggle.addEventListener("change", explainAll);
  explainClass.addEventListener("change", function () { if (toggle.checked) explainAll(); });

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    errorBox.hidden = true;
    var files = Array.prototype.slice.call(input.files);
    if (!files.length) { fail("Choose at least one image."); return; }
    var data = new FormData();
    files.forEach(function (f) { data.append(files.length === 1 ? "image" : "images", f); });
    data.append("top_k", document.getElementById("predict-top-k").value);
    send(form.dataset.api, data).then(function (answer) {
      if (answer.ok) show(files, answer.body);
      else fail(answer.body.error || "The server refused the images.");
    }).catch(function () { fail("The request failed; try again."); });
  });
})();
