"""The page at ``GET /``: drop one or many photos, pick a method and a mode, see each mask beside its result and
download them. Plain HTML and a little JavaScript, served as they are (no build step); it calls the same API as
any client: ``/segment`` for the mask, then ``/apply`` with that mask uploaded, so the model runs once per photo.
"""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>maskcli</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 1rem; color: #222; }
  h1 { font-size: 1.3rem; margin: 0 0 .8rem; }
  form { display: flex; flex-wrap: wrap; gap: .8rem; align-items: end; margin-bottom: 1rem; }
  label { display: flex; flex-direction: column; font-size: .85rem; color: #555; }
  select, input { font: inherit; padding: .2rem; }
  #drop { border: 2px dashed #999; border-radius: 8px; padding: 2rem; text-align: center; color: #555; }
  #drop.over { background: #eef5ff; border-color: #36c; }
  .item { display: grid; grid-template-columns: 10rem 1fr 1fr; gap: 1rem; align-items: start; margin: 1rem 0;
          padding-top: 1rem; border-top: 1px solid #ddd; }
  .item img { max-width: 100%; max-height: 320px; display: block;
              background: repeating-conic-gradient(#ddd 0 25%, #fff 0 50%) 0 0 / 16px 16px; }
  .item .error { color: #b00; }
  .name { word-break: break-all; }
</style>
</head>
<body>
<h1>maskcli: masks and cut-outs</h1>
<form id="options" onsubmit="return false">
  <label>method <select id="method"></select></label>
  <label>mode <select id="mode"></select></label>
  <label>token (if the server asks) <input id="token" type="password" autocomplete="off"></label>
  <label>photos <input id="files" type="file" accept="image/*" multiple></label>
</form>
<div id="drop">Drop photos here</div>
<div id="results"></div>
<script>
"use strict";
const $ = (id) => document.getElementById(id);

function headers() {
  const token = $("token").value.trim();
  return token ? { "Authorization": "Bearer " + token } : {};
}

async function fill(select, path, key, preferred) {
  const answer = await fetch(path, { headers: headers() });
  if (!answer.ok) return;
  const listing = await answer.json();
  for (const entry of listing[key]) {
    const option = document.createElement("option");
    option.value = option.textContent = entry.name;
    option.title = entry.summary;
    select.appendChild(option);
  }
  if ([...select.options].some((o) => o.value === preferred)) select.value = preferred;
}

async function post(path, parts, query) {
  const form = new FormData();
  for (const [name, blob, filename] of parts) form.append(name, blob, filename);
  const answer = await fetch(path + "?" + new URLSearchParams(query), { method: "POST", body: form,
                                                                     headers: headers() });
  if (!answer.ok) {
    const problem = await answer.json().catch(() => ({ error: answer.statusText }));
    throw new Error(problem.error || answer.statusText);
  }
  return answer.blob();
}

function cell(kind, blob, filename) {
  const box = document.createElement("div");
  const image = document.createElement("img");
  image.className = kind;
  image.alt = kind + " of " + filename;
  image.src = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = image.src;
  link.download = filename;
  link.textContent = "download " + kind;
  box.append(image, link);
  return box;
}

async function handle(file) {
  const row = document.createElement("div");
  row.className = "item";
  row.dataset.name = file.name;
  row.dataset.state = "working";
  const name = document.createElement("div");
  name.className = "name";
  name.textContent = file.name + " …";
  row.appendChild(name);
  $("results").prepend(row);
  const stem = file.name.replace(/\\.[^.]*$/, "");
  try {
    const mask = await post("/segment", [["image", file, file.name]], { method: $("method").value });
    const result = await post("/apply", [["image", file, file.name], ["mask", mask, stem + "-mask.png"]],
                              { mode: $("mode").value });
    const suffix = { "image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/tiff": "tif" };
    row.append(cell("mask", mask, stem + "-mask.png"),
               cell("result", result, stem + "-" + $("mode").value + "." + (suffix[result.type] || "png")));
    name.textContent = file.name;
    row.dataset.state = "done";
  } catch (error) {
    name.textContent = file.name;
    const message = document.createElement("div");
    message.className = "error";
    message.textContent = error.message;
    row.appendChild(message);
    row.dataset.state = "failed";
  }
}

function take(files) { for (const file of files) handle(file); }

const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  take(event.dataTransfer.files);
});
$("files").addEventListener("change", (event) => { take(event.target.files); event.target.value = ""; });
fill($("method"), "/methods", "methods", "cnn");
fill($("mode"), "/modes", "modes", "cutout");
</script>
</body>
</html>
"""

__all__ = ["PAGE"]
