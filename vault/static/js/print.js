// A button marked data-print prints the page (the print stylesheet keeps only what is worth keeping).
// A file of its own: the Content-Security-Policy allows no inline script.
document.querySelectorAll("[data-print]").forEach(function (button) {
  button.addEventListener("click", function () { window.print(); });
});
