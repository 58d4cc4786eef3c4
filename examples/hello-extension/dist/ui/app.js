// Asks the extension's API for its greeting and shows it.
fetch("/api/hello").then((r) => r.json()).then((body) => {
  const p = document.createElement("p");
  p.textContent = body.message;
  document.body.appendChild(p);
});
