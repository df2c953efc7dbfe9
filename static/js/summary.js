// The model summary card (runs/model_summary.html). On a run's page it reads GET data-api once; on the
// experiment form it POSTs the form's model settings and dataset, again a moment after any of them
// changes (only when what it would send differs from the last time), and the latest answer wins.
(function () {
  var card = document.getElementById("model-summary");
  if (!card) return;
  var form = card.dataset.form ? document.getElementById(card.dataset.form) : null;
  var warnings = document.getElementById("model-summary-warnings");
  var errorBox = document.getElementById("model-summary-error");
  var rows = card.querySelector(".model-summary-table tbody");
  var DELAY_MS = 300;

  function byId(id) { return document.getElementById(id); }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;  // text only: names come from the server
    return node;
  }

  function exact(n) { return n.toLocaleString("en-US"); }

  function compact(n) {
    var units = [[1e12, " T"], [1e9, " G"], [1e6, " M"], [1e3, " k"]];
    for (var i = 0; i < units.length; i++) {
      if (n >= units[i][0]) return (n / units[i][0]).toPrecision(3) + units[i][1];
    }
    return String(n);
  }

  function fact(id, value, text, title) {
    var node = byId(id);
    node.textContent = text;
    node.dataset.value = value === null || value === undefined ? "" : String(value);
    node.title = title || "";
  }

  function clear(message) {
    ["model-summary-total", "model-summary-trainable", "model-summary-mult-adds", "model-summary-input"]
      .forEach(function (id) { fact(id, null, "—"); });
    byId("model-summary-layer-count").textContent = "—";
    rows.textContent = "";
    warnings.textContent = "";
    errorBox.hidden = !message;
    errorBox.textContent = message || "";
  }

  function show(s) {
    errorBox.hidden = true;
    warnings.textContent = "";
    (s.warnings || []).forEach(function (text) {
      var line = el("p", "msg msg-warning model-summary-warning", text);
      line.setAttribute("role", "alert");
      warnings.appendChild(line);
    });
    fact("model-summary-total", s.total_params, exact(s.total_params), compact(s.total_params));
    var frozen = s.total_params - s.trainable_params;
    fact("model-summary-trainable", s.trainable_params, exact(s.trainable_params) +
         (frozen > 0 ? " (backbone frozen)" : ""), compact(s.trainable_params));
    if (s.mult_adds === null) {
      fact("model-summary-mult-adds", null, "—", "the network cannot run on these images");
    } else {
      fact("model-summary-mult-adds", s.mult_adds, compact(s.mult_adds), exact(s.mult_adds));
    }
    var input = s.input;
    fact("model-summary-input", input.image_size, input.channels + " × " + input.image_size + " × " + input.image_size +
         ", " + input.num_classes + " class" + (input.num_classes === 1 ? "" : "es"));
    byId("model-summary-layer-count").textContent = String(s.layers.length);
    rows.textContent = "";
    s.layers.forEach(function (layer) {
      var tr = el("tr");
      var name = el("td");
      name.appendChild(el("code", "", layer.name));
      tr.appendChild(name);
      tr.appendChild(el("td", "", layer.type));
      tr.appendChild(el("td", "", layer.output_shape ? layer.output_shape.join(" × ") : "not reached"));
      tr.appendChild(el("td", "number", exact(layer.params)));
      rows.appendChild(tr);
    });
  }

  var asked = 0;  // answers to anything but the latest question are dropped

  function ask(options) {
    var number = ++asked;
    card.setAttribute("aria-busy", "true");
    fetch(card.dataset.api, Object.assign({credentials: "same-origin"}, options))
      .then(function (response) {
        return response.json().then(function (body) { return {ok: response.ok, body: body}; });
      })
      .then(function (answer) {
        if (number !== asked) return;
        if (answer.ok) show(answer.body);
        else clear(answer.body.error || "The summary could not be made.");
      })
      .catch(function () { if (number === asked) clear("The summary could not be fetched; try again."); })
      .then(function () { if (number === asked) card.setAttribute("aria-busy", "false"); });
  }

  if (!form) {
    ask({headers: {Accept: "application/json"}});
    return;
  }

  // A value the API understands, or the text as typed, so that its answer names what is wrong.
  function numberOr(text) {
    var n = Number(text);
    return text.trim() !== "" && isFinite(n) ? n : text;
  }

  function units(text) {
    var parts = text.replace(/\s+/g, "").split(",").filter(function (p) { return p !== ""; });
    var numbers = parts.map(Number);
    return numbers.every(function (n) { return Number.isInteger(n); }) ? numbers : text;
  }

  function question() {
    var f = form.elements;
    if (!f.dataset || !f.dataset.value) return null;
    return {dataset: Number(f.dataset.value), config: {
      arch: f.arch.value, hidden_units: units(f.hidden_units.value), dropout: numberOr(f.dropout.value),
      batch_norm: f.batch_norm.checked, epochs: numberOr(f.epochs.value),
      freeze_backbone_epochs: numberOr(f.freeze_backbone_epochs.value)}};
  }

  var last = null;
  var timer = null;

  function update() {
    var body = question();
    if (body === null) {
      last = null;
      clear("Pick a dataset to see what the network looks like for its images.");
      return;
    }
    var text = JSON.stringify(body);
    if (text === last) return;
    last = text;
    ask({method: "POST", body: text, headers: {
      "Content-Type": "application/json", Accept: "application/json",
      "X-CSRFToken": form.querySelector("[name=csrfmiddlewaretoken]").value}});
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(update, DELAY_MS);
  }

  form.addEventListener("input", later);
  form.addEventListener("change", later);
  update();
})();
