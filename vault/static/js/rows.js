// "Add another contact" / "Add another term" on the record's edit form: a copy of the group above, emptied
// and numbered after the last, so a person can add more than the blank groups the page brings. Without
// scripts the buttons stay hidden and the blank groups are the way to add; the server reads any number.
(function () {
  "use strict";
  var NUMBERED = ["id", "name", "for", "aria-describedby"];

  function renumber(element, prefix, index) {
    var pattern = new RegExp("^" + prefix + "-\\d+-");
    NUMBERED.forEach(function (attribute) {
      var value = element.getAttribute(attribute);
      if (value && pattern.test(value)) {
        element.setAttribute(attribute, value.replace(pattern, prefix + "-" + index + "-"));
      }
    });
  }

  function empty(group) {
    Array.prototype.forEach.call(group.querySelectorAll(".error"), function (error) {
      error.parentNode.removeChild(error);
    });
    Array.prototype.forEach.call(group.querySelectorAll("input, select, textarea"), function (field) {
      field.removeAttribute("aria-invalid");
      field.removeAttribute("aria-describedby");
      field.removeAttribute("autofocus");
      if (field.type === "checkbox" || field.type === "radio") {
        field.checked = false;
      } else if (field.tagName === "SELECT") {
        field.selectedIndex = 0;
      } else {
        field.value = "";
      }
    });
  }

  function add(container, prefix) {
    var rows = container.querySelectorAll("[data-row]");
    if (!rows.length) {
      return;
    }
    var next = 0;
    Array.prototype.forEach.call(rows, function (row) {
      next = Math.max(next, Number(row.getAttribute("data-row")) + 1);
    });
    var group = rows[rows.length - 1].cloneNode(true);
    group.setAttribute("data-row", String(next));
    renumber(group, prefix, next);
    Array.prototype.forEach.call(group.querySelectorAll("*"), function (element) {
      renumber(element, prefix, next);
    });
    empty(group);
    var legend = group.querySelector("legend");
    if (legend) {
      legend.textContent = container.getAttribute("data-legend").replace("__n__", String(rows.length + 1));
    }
    container.appendChild(group);
    var first = group.querySelector("input, select, textarea");
    if (first) {
      first.focus();
    }
  }

  function run() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-add-row]"), function (button) {
      var prefix = button.getAttribute("data-add-row");
      var container = document.querySelector('[data-rows="' + prefix + '"]');
      if (!container) {
        return;
      }
      button.hidden = false;
      button.addEventListener("click", function () {
        add(container, prefix);
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", run);
  } else {
    run();
  }
}());
