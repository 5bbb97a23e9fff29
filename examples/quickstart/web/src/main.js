// Lists the notes from the API and adds new ones. VITE_API_URL is set by
// `stagecraft dev` to the backend's HTTPS URL (https://api.<domain>).
const api = import.meta.env.VITE_API_URL || "";
const list = document.querySelector("#notes");
const status = document.querySelector("#status");

async function load() {
  const res = await fetch(`${api}/api/notes`);
  const { notes } = await res.json();
  list.replaceChildren(
    ...notes.map((note) => {
      const item = document.createElement("li");
      item.textContent = note.text;
      return item;
    }),
  );
  status.textContent = `${notes.length} notes from ${api || "the API"}`;
}

document.querySelector("#add").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = document.querySelector("#text");
  await fetch(`${api}/api/notes`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ text: input.value }),
  });
  input.value = "";
  await load();
});

load().catch((err) => {
  status.textContent = `cannot reach the API: ${err.message}`;
});
