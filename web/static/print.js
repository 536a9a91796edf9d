// Printable pages (member cards): the print button.

document.getElementById("print-button")?.addEventListener("click", () => window.print());
