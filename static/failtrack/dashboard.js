// Render every server-built Plotly figure on the page (figures come as JSON, never code).
(function () {
  "use strict";
  var source = document.getElementById("failures-figure");
  var target = document.getElementById("failures-chart");
  if (!source || !target || !window.Plotly) { return; }
  var figure = JSON.parse(source.textContent);
  window.Plotly.newPlot(target, figure.data, figure.layout, {
    responsive: true, displaylogo: false
  }).then(function () { target.setAttribute("data-rendered", "true"); });
})();
