// "Weights" shows only when "Start from" is ImageNet weights, offering the library files of the chosen
// architecture; beside it, a warning when torchvision's file for that architecture is not in this
// machine's cache. Without JavaScript every field shows, and the server ignores a leftover choice.
(function () {
  var form = document.getElementById("experiment-form");
  var cacheData = document.getElementById("imagenet-cache");
  if (!form || !cacheData) return;
  var cache = JSON.parse(cacheData.textContent);
  var arch = form.elements["arch"];
  var pretrained = form.elements["pretrained"];
  var weights = form.elements["weights_file"];
  var row = document.getElementById("field-weights_file");
  var warning = document.getElementById("imagenet-cache-warning");
  if (!arch || !pretrained || !weights || !row || !warning) return;

  function update() {
    var imagenet = pretrained.value === "imagenet";
    row.hidden = !imagenet;
    Array.prototype.forEach.call(weights.options, function (option) {
      if (!option.dataset.arch) return;  // torchvision's file from the cache fits every architecture
      var fits = option.dataset.arch === arch.value;
      option.hidden = !fits;
      option.disabled = !fits;
      if (!fits && option.selected) weights.value = "";
    });
    var entry = cache[arch.value];
    var missing = imagenet && !weights.value && entry && !entry.present;
    warning.hidden = !missing;
    if (missing) {
      warning.querySelector('[data-cache="file"]').textContent = entry.file;
      warning.querySelector('[data-cache="arch"]').textContent = arch.value;
    }
  }

  [arch, pretrained, weights].forEach(function (field) { field.addEventListener("change", update); });
  update();
})();
