// Draws every figure on the page: an element with data-figure="<id of a json_script>" gets that
// figure. The figures are built server-side by pure functions (charts.py), so this stays generic.
(function () {
  function draw(el) {
    var source = document.getElementById(el.dataset.figure);
    if (!source || !window.Plotly) return;
    var figure = JSON.parse(source.textContent);
    Plotly.newPlot(el, figure.data, figure.layout, {responsive: true, displaylogo: false});
    el.dataset.drawn = "true";
  }
  window.dlstudioCharts = {draw: draw};
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-figure]").forEach(draw);
  });
})();
