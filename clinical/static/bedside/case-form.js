// Case form: add and remove medication, allergy and lab rows in place. Without this
// script the same buttons post the form and the server re-renders it with the row added
// or removed, so nothing depends on it.
(function () {
  "use strict";
  var form = document.getElementById("case-form");
  if (!form) {
    return;
  }
  // A form that came back with errors: start at the list of what to fix.
  var summary = document.getElementById("error-summary");
  if (summary) {
    summary.focus();
  }

  function addRow(group) {
    var fieldset = document.getElementById(group);
    var list = fieldset.querySelector(".row-list");
    var template = document.getElementById("tpl-" + group);
    var index = parseInt(fieldset.getAttribute("data-next-index"), 10);
    var number = list.querySelectorAll("[data-row]").length + 1;
    fieldset.setAttribute("data-next-index", String(index + 1));
    var html = template.innerHTML
      .split("__index__").join(String(index))
      .split("__number__").join(String(number));
    var empty = list.querySelector("[data-empty]");
    if (empty) {
      empty.remove();
    }
    list.insertAdjacentHTML("beforeend", html);
    var first = list.lastElementChild.querySelector("input, select, textarea");
    if (first) {
      first.focus();
    }
  }

  function removeRow(button) {
    var fieldset = button.closest("fieldset");
    button.closest("[data-row]").remove();
    fieldset.querySelector("button[name=add_row]").focus();
  }

  form.addEventListener("click", function (event) {
    var button = event.target.closest("button");
    if (!button) {
      return;
    }
    if (button.name === "add_row") {
      event.preventDefault();
      addRow(button.value);
    } else if (button.name === "remove_row") {
      event.preventDefault();
      removeRow(button);
    }
  });
})();
