// Narrow screens show each table row as a card (see vault.css); each cell then needs its column's
// name beside it. This copies every column header's text into the data-label of the cells below it,
// so no template has to repeat its headers. Without scripts the cards still show, without the names.
(function () {
  "use strict";
  function label(table) {
    var head = table.tHead;
    if (!head || !head.rows.length) {
      return;
    }
    var names = [];
    Array.prototype.forEach.call(head.rows[0].cells, function (th) {
      var text = th.textContent.replace(/\s+/g, " ").trim();
      for (var i = 0; i < (th.colSpan || 1); i += 1) {
        names.push(text);
      }
    });
    Array.prototype.forEach.call(table.tBodies, function (body) {
      Array.prototype.forEach.call(body.rows, function (row) {
        var column = 0;
        Array.prototype.forEach.call(row.cells, function (cell) {
          var name = names[column];
          if (name && !cell.hasAttribute("data-label")) {
            cell.setAttribute("data-label", name);
          }
          column += cell.colSpan || 1;
        });
      });
    });
  }
  function run() {
    Array.prototype.forEach.call(document.querySelectorAll("table"), label);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", run);
  } else {
    run();
  }
}());
