// The run journal's filter box (kvmops manual): show only the runs that touched the guest
// typed, e.g. "test1"; ?guest=NAME in the address fills it in (the guest pages link so).
(function () {
  function setup() {
    var box = document.getElementById("kvmops-journal-filter");
    var table = document.getElementById("kvmops-journal-table");
    if (!box || !table) return;
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    var count = document.getElementById("kvmops-journal-count");
    function apply() {
      var want = box.value.trim().toLowerCase();
      var shown = 0;
      rows.forEach(function (row) {
        var guests = (row.getAttribute("data-guests") || "").toLowerCase().split(" ");
        var match = !want || guests.some(function (g) { return g && g.indexOf(want) !== -1; });
        row.hidden = !match;
        if (match) shown++;
      });
      count.textContent = want ? shown + " of " + rows.length + " runs touched a guest matching \u201c" +
        box.value.trim() + "\u201d" : rows.length + " runs";
    }
    var given = new URLSearchParams(window.location.search).get("guest");
    if (given) box.value = given;
    box.addEventListener("input", apply);
    apply();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setup);
  } else {
    setup();
  }
})();
