// Polls the status endpoint every second and shows the stage, the queue position and, at the end, the result.
(function () {
  "use strict";
  var progress = document.getElementById("progress");
  // The steps are the page's own list (grader.submissions.PROGRESS_WORDS, from the stage labels), in order.
  var order = Array.prototype.map.call(document.querySelectorAll("#stages li"), function (li) { return li.dataset.stage; });
  function text(tag, value) { var el = document.createElement(tag); el.textContent = value; return el; }
  function show(data) {
    progress.textContent = data.progress;
    document.getElementById("position").textContent =
      data.queue_position ? "(place " + data.queue_position + " in the queue)" : "";
    var at = order.indexOf(data.final ? "graded" : data.progress);
    document.querySelectorAll("#stages li").forEach(function (li, i) {
      li.className = i < at || (data.final && i === at) ? "done" : (i === at ? "current" : "");
    });
    if (!data.final || !data.result) { return; }
    var box = document.getElementById("result");
    box.textContent = "";
    box.appendChild(text("h2", "Score: " + data.result.score + " / " + data.result.max_score));
    if (data.result.reason) { box.appendChild(text("p", data.result.reason)); }
    if (data.result.verdict) { box.appendChild(text("p", data.result.verdict)); }
    var table = document.createElement("table");
    data.result.categories.forEach(function (c) {
      var row = table.insertRow();
      row.appendChild(text("th", c.title));
      var score = row.appendChild(text("td", c.score + " / " + c.max_score));
      score.className = "nowrap";
      var areas = document.createElement("td");
      if (c.fell_short && c.fell_short.length) {
        areas.appendChild(text("span", "Fell short: "));
        var list = document.createElement("ul");
        c.fell_short.forEach(function (line) { list.appendChild(text("li", line)); });
        areas.appendChild(list);
      }
      if (c.tests) {
        areas.appendChild(text("p", c.tests.map(function (t) { return t.title + ": " + t.outcome; }).join("; ")));
      }
      row.appendChild(areas);
    });
    box.appendChild(table);
    var own = data.result.own_tests;
    if (own) {
      box.appendChild(text("p", own.ran
        ? "Your own tests: " + own.passed + " passed, " + own.failed + " failed, " + own.errors + " errors, " +
          own.skipped + " skipped" + (own.coverage_percent === null ? "" : ", coverage " + own.coverage_percent + " %") + "."
        : "Your own tests: " + (own.note || "none were found") + "."));
    }
  }
  function poll() {
    fetch(progress.dataset.url, {cache: "no-store", credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (data) { show(data); if (!data.final) { setTimeout(poll, 1000); } })
      .catch(function () { setTimeout(poll, 2000); });
  }
  poll();
})();
