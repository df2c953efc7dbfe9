// Upload with a progress bar (XHR upload progress), then ingest progress polled from the API,
// then on to the dataset's page. Without JavaScript the form posts normally.
(function () {
  var form = document.getElementById("upload-form");
  if (!form) return;
  var input = document.getElementById("id_archive");
  var zone = document.getElementById("dropzone");
  var bar = document.getElementById("upload-bar");
  var phase = document.getElementById("upload-phase");
  var percent = document.getElementById("upload-percent");
  var box = document.getElementById("upload-progress");
  var errorBox = document.getElementById("upload-error");
  var submit = document.getElementById("upload-submit");

  ["dragenter", "dragover"].forEach(function (type) {
    zone.addEventListener(type, function (e) { e.preventDefault(); zone.classList.add("dragging"); });
  });
  ["dragleave", "drop"].forEach(function (type) {
    zone.addEventListener(type, function (e) { e.preventDefault(); zone.classList.remove("dragging"); });
  });
  zone.addEventListener("drop", function (e) {
    if (e.dataTransfer.files.length) input.files = e.dataTransfer.files;
  });

  function show(fraction, label) {
    box.hidden = false;
    phase.textContent = label;
    var p = Math.round(fraction * 100);
    bar.value = p;
    percent.textContent = p + "%";
  }

  // The message goes beside its field when the server names one, else above the button.
  function fail(message, field) {
    box.hidden = true;
    submit.disabled = false;
    document.querySelectorAll(".field-error").forEach(function (el) { el.textContent = ""; });
    var slot = field && document.querySelector('.field-error[data-field="' + field + '"]');
    errorBox.hidden = !!slot;
    (slot || errorBox).textContent = message;
  }

  function poll(id) {
    fetch(form.dataset.api + "/" + id, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.json(); })
      .then(function (d) {
        if (d.status === "ready") { show(1, "Ready"); window.location = form.dataset.detail + id + "/"; return; }
        if (d.status === "failed") { fail("Ingest failed: " + d.error); return; }
        show(d.progress || 0, "Ingesting");
        setTimeout(function () { poll(id); }, 1000);
      })
      .catch(function () { setTimeout(function () { poll(id); }, 2000); });
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    errorBox.hidden = true;
    if (!input.files.length) { fail("Choose an archive to upload.", "archive"); return; }
    var data = new FormData(form);
    if (!data.get("image_size")) data.delete("image_size");
    data.append("team", form.dataset.team);
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.dataset.api);
    xhr.setRequestHeader("X-CSRFToken", form.querySelector("[name=csrfmiddlewaretoken]").value);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", function (ev) {
      if (ev.lengthComputable) show(ev.loaded / ev.total, "Uploading");
    });
    xhr.onload = function () {
      var body = {};
      try { body = JSON.parse(xhr.responseText); } catch (err) { body = {error: "The server answered " + xhr.status + "."}; }
      if (xhr.status === 201) { show(0, "Ingesting"); poll(body.id); }
      else fail(body.error || ("The server answered " + xhr.status + "."), body.field);
    };
    xhr.onerror = function () { fail("The upload was interrupted; check the connection and try again."); };
    submit.disabled = true;
    show(0, "Uploading");
    xhr.send(data);
  });
})();
