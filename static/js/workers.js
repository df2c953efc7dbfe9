// The home page's workers table stays live: every few seconds it is rebuilt from /api/health (each
// worker's queues, device or GPUs, the run it trains, its CPU and memory). A worker missing from the
// latest answer stays in the table, greyed, marked gone, until it announces itself again.
(function () {
  var table = document.getElementById("workers-table");
  if (!table) return;
  var body = table.tBodies[0];
  var empty = document.getElementById("workers-empty");
  var POLL_MS = 4000;
  var timer = null;

  function el(tag, text, className) {
    var node = document.createElement(tag);
    if (text != null) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function orDash(value, unit) {
    return value == null ? "—" + (unit ? " " + unit : "") : value + (unit ? " " + unit : "");
  }

  function deviceCell(w) {
    var td = el("td", null, "device");
    if (!w.gpus || !w.gpus.length) {
      td.textContent = w.device === "cpu" ? "CPU" : w.device;
      return td;
    }
    w.gpus.forEach(function (g) {
      var box = el("div", null, "gpu");
      box.appendChild(el("strong", g.name || "GPU"));
      box.appendChild(document.createTextNode(" "));
      box.appendChild(el("span", "GPU " + g.index, "hint inline"));
      var memory = g.memory_used_mb == null ? "— MB" : g.memory_used_mb + " / " + g.memory_total_mb + " MB";
      box.appendChild(el("div", orDash(g.utilization, "%") + " · " + memory + " · " + orDash(g.temperature_c, "°C"),
                         "gpu-figures"));
      td.appendChild(box);
    });
    return td;
  }

  function busyCell(w) {
    var td = el("td", null, "busy");
    if (w.busy == null) {
      td.textContent = "idle";
    } else {
      var a = el("a", "run " + w.busy);
      a.href = table.dataset.runUrl.replace(/0\/$/, w.busy + "/");
      td.appendChild(a);
    }
    return td;
  }

  function row(w) {
    var tr = el("tr");
    tr.dataset.worker = w.name;
    tr.appendChild(el("td", w.name));
    var queues = el("td");
    w.queues.forEach(function (q) {
      queues.appendChild(el("span", q, "tag"));
      queues.appendChild(document.createTextNode(" "));
    });
    tr.appendChild(queues);
    tr.appendChild(deviceCell(w));
    tr.appendChild(busyCell(w));
    tr.appendChild(el("td", w.cpu_percent == null ? "—" : Math.round(w.cpu_percent) + " %", "num"));
    tr.appendChild(el("td", w.memory_mb == null ? "—" : w.memory_mb + " MB", "num"));
    return tr;
  }

  function gone(tr) {
    tr.classList.add("gone");
    tr.title = "Not heard from: stopped, killed, or cut off from the broker.";
    var busy = tr.querySelector(".busy");
    if (busy) busy.textContent = "gone";
  }

  function badge(id, value) {
    var node = document.getElementById(id);
    if (!node) return;
    node.textContent = value;
    node.className = "badge badge-" + value;
  }

  function render(status) {
    var listed = {};
    var rows = [];
    status.workers.forEach(function (w) { listed[w.name] = true; rows.push(row(w)); });
    Array.prototype.forEach.call(body.rows, function (tr) {
      if (!listed[tr.dataset.worker]) {
        gone(tr);
        rows.push(tr);
      }
    });
    body.replaceChildren.apply(body, rows);
    table.hidden = rows.length === 0;
    if (empty) empty.hidden = rows.length > 0;
    badge("status-database", status.database);
    badge("status-broker", status.broker);
    var updated = document.getElementById("workers-updated");
    if (updated) updated.textContent = "Updated " + new Date().toLocaleTimeString();
  }

  function poll() {
    timer = null;
    if (document.hidden) return;  // nothing to show; visibilitychange starts again
    fetch(table.dataset.health, {credentials: "omit", headers: {Accept: "application/json"}})
      .then(function (r) {
        // 503 is the same answer with a degraded database or broker; anything else (429) is no answer.
        if (r.status !== 200 && r.status !== 503) throw new Error(r.status);
        return r.json();
      })
      .then(function (status) { render(status); schedule(POLL_MS); })
      .catch(function () { schedule(POLL_MS * 3); });
  }

  function schedule(ms) {
    if (timer === null) timer = setTimeout(poll, ms);
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) schedule(0);
  });
  schedule(POLL_MS);
})();
