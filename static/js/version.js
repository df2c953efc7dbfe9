// A new version from what the user sees: tick images in a dataset's gallery (or press a button beside a
// run's misclassified image), choose exclude or relabel, read the preview, then make the version.
(function () {
  var panel = document.getElementById("version-panel");
  if (!panel) return;
  var classes = JSON.parse(document.getElementById("version-classes").textContent);
  var exclude = {}, relabel = {};  // image index -> {from} / {from, to}

  function count(list, key) {
    var out = {};
    list.forEach(function (item) { out[item[key]] = (out[item[key]] || 0) + 1; });
    return Object.keys(out).map(function (k) { return k + " " + out[k]; }).join(", ");
  }

  function render() {
    var preview = document.getElementById("version-preview");
    preview.textContent = "";
    var gone = Object.keys(exclude).map(function (i) { return exclude[i]; });
    var moved = Object.keys(relabel).map(function (i) { return relabel[i]; });
    function line(text) { var li = document.createElement("li"); li.textContent = text; preview.appendChild(li); }
    if (gone.length) line("Exclude " + gone.length + " image" + (gone.length === 1 ? "" : "s") + " (" + count(gone, "from") + ")");
    var pairs = {};
    moved.forEach(function (m) { var k = m.from + " → " + m.to; pairs[k] = (pairs[k] || 0) + 1; });
    Object.keys(pairs).forEach(function (k) { line("Relabel " + pairs[k] + " image" + (pairs[k] === 1 ? "" : "s") + ": " + k); });
    moved.forEach(function (m) {
      if (classes.indexOf(m.to) < 0) line("'" + m.to + "' is a new class");
    });
    document.getElementById("version-exclude").value = JSON.stringify(Object.keys(exclude).map(Number));
    var map = {};
    Object.keys(relabel).forEach(function (i) { map[i] = relabel[i].to; });
    document.getElementById("version-relabel").value = JSON.stringify(map);
    panel.hidden = !(gone.length || moved.length);
  }

  function change(kind, index, from, to) {
    delete exclude[index];
    delete relabel[index];
    if (kind === "exclude") exclude[index] = {from: from};
    else if (to && to !== from) relabel[index] = {from: from, to: to};
    render();
  }

  document.querySelectorAll("[data-pick-action]").forEach(function (button) {
    button.addEventListener("click", function () {
      var to = (document.getElementById("relabel-to") || {}).value;
      if (button.dataset.pickAction === "relabel" && !(to && to.trim())) {
        document.getElementById("relabel-to").focus();
        return;
      }
      document.querySelectorAll(".pick-box:checked").forEach(function (box) {
        change(button.dataset.pickAction, box.dataset.index, classes[Number(box.dataset.class)], to && to.trim());
        box.checked = false;
      });
    });
  });
  document.querySelectorAll("[data-change]").forEach(function (button) {
    button.addEventListener("click", function () {
      change(button.dataset.change, button.dataset.index, button.dataset.from, button.dataset.to);
      button.closest("figure").classList.add("changed");
    });
  });
  document.getElementById("version-clear").addEventListener("click", function () {
    exclude = {}; relabel = {};
    document.querySelectorAll("figure.changed").forEach(function (f) { f.classList.remove("changed"); });
    render();
  });
})();
