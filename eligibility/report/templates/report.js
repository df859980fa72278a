// Patient table: filter by verdict, search by id, expand a row. Works from the keyboard
// (native select, input and buttons); without JavaScript every explanation is shown.
(function () {
  "use strict";
  var table = document.getElementById("patient-table");
  if (!table) { return; }
  var groups = Array.prototype.slice.call(table.tBodies);
  var verdict = document.getElementById("verdict-filter");
  var search = document.getElementById("id-search");
  var shown = document.getElementById("shown-count");
  var total = groups.length;

  function apply() {
    var wanted = verdict.value;
    var text = search.value.trim().toLowerCase();
    var count = 0;
    groups.forEach(function (group) {
      var keep = (!wanted || group.dataset.verdict === wanted) &&
        (!text || group.dataset.id.toLowerCase().indexOf(text) !== -1);
      group.hidden = !keep;
      if (keep) { count += 1; }
    });
    shown.textContent = "Showing " + count.toLocaleString("en") + " of " + total.toLocaleString("en") +
      " patients in the table.";
  }

  verdict.addEventListener("change", apply);
  search.addEventListener("input", apply);
  table.addEventListener("click", function (event) {
    var button = event.target.closest("button.expand");
    if (!button) { return; }
    var open = button.getAttribute("aria-expanded") !== "true";
    button.setAttribute("aria-expanded", open ? "true" : "false");
    document.getElementById(button.getAttribute("aria-controls")).hidden = !open;
  });
})();
