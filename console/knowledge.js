// The knowledge base: drag-and-drop uploads, live ingestion progress, re-index, delete, and a
// box to test a question against what the coach would retrieve.

import * as api from "./api.js";
import { t } from "./i18n.js";
import { h, clear, fail, toast, when } from "./ui.js";

export async function render(main) {
  const input = h("input", { type: "file", multiple: true, accept: ".pdf,.docx,.txt,.md,.markdown,.html,.htm", class: "visually-hidden", id: "upload-input" });
  const drop = h(
    "div",
    // A drop target around the file input (visually hidden, still reached with Tab and
    // opened with Enter or Space), not a control of its own.
    { class: "drop" },
    h("p", {}, t("dropHere"), " ", h("label", { for: "upload-input", class: "link" }, t("choose"))),
    input,
  );
  const url = h("input", { type: "url", placeholder: "https://", "aria-label": t("url") });
  const urlForm = h("form", { class: "row" }, url, h("button", { type: "submit" }, t("add")));
  const table = h("tbody");
  const question = h("input", { type: "search", "aria-label": t("question"), placeholder: t("question") });
  const results = h("div", { class: "results", "aria-live": "polite" });
  const askForm = h("form", { class: "row", role: "search" }, question, h("button", { type: "submit", class: "primary" }, t("ask")));

  main.append(
    h("h1", {}, t("knowledge")),
    h("section", { class: "card" }, h("h2", {}, t("upload")), drop, h("h3", {}, t("addUrl")), urlForm),
    h(
      "section",
      { class: "card" },
      h("table", { class: "docs" }, h("thead", {}, h("tr", {}, [t("title"), t("status"), t("chunks"), ""].map((x) => h("th", { scope: "col" }, x)))), table),
    ),
    h("section", { class: "card" }, h("h2", {}, t("testQuestion")), askForm, results),
  );

  let docs = [];
  async function load() {
    const res = await api.get("/v1/documents?limit=200");
    docs = res.items;
    draw();
  }

  function draw() {
    clear(table);
    if (!docs.length) table.append(h("tr", {}, h("td", { colspan: 4, class: "empty" }, t("noDocuments"))));
    for (const d of docs) table.append(docRow(d));
  }

  function docRow(d) {
    const pct = Math.round((d.progress || 0) * 100);
    const state = d.status === "failed" ? `${t("failed")}: ${d.error || ""}` : t(d.status);
    return h(
      "tr",
      { "data-document": d.id, "data-status": d.status },
      h("td", {}, h("strong", {}, d.title), h("div", { class: "muted" }, d.filename || d.source_url || "", " · ", when(d.updated_at))),
      h(
        "td",
        {},
        h("progress", { max: 100, value: d.status === "ready" ? 100 : pct, "aria-label": `${d.title}: ${pct}%` }),
        h("span", { class: `state ${d.status}` }, d.status === "processing" ? `${state} ${pct}%` : state),
      ),
      h("td", {}, String(d.chunks)),
      h(
        "td",
        { class: "actions" },
        h("button", { type: "button", onclick: () => act("POST", `/v1/documents/${d.id}/reindex`) }, t("reindex")),
        h(
          "button",
          {
            type: "button",
            class: "danger",
            onclick: () => {
              if (confirm(t("confirmDelete", { name: d.title }))) act("DELETE", `/v1/documents/${d.id}`);
            },
          },
          t("delete"),
        ),
      ),
    );
  }

  async function act(method, path) {
    try {
      await api.call(method, path);
      await load();
    } catch (e) {
      fail(e);
    }
  }

  async function upload(files) {
    for (const file of files) {
      const form = new FormData();
      form.append("file", file, file.name);
      try {
        await api.post("/v1/documents", form);
      } catch (e) {
        fail(new Error(`${file.name}: ${e.message}`));
      }
    }
    await load();
  }

  input.addEventListener("change", () =>
    upload([...input.files])
      .catch(fail)
      .finally(() => (input.value = "")),
  );
  drop.addEventListener("dragover", (ev) => {
    ev.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    drop.classList.remove("over");
    upload([...ev.dataTransfer.files]).catch(fail);
  });
  urlForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const form = new FormData();
    form.append("url", url.value.trim());
    try {
      await api.post("/v1/documents", form);
      url.value = "";
      await load();
    } catch (e) {
      fail(e);
    }
  });
  askForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!question.value.trim()) return;
    clear(results);
    try {
      const res = await api.post("/v1/search", { query: question.value.trim(), limit: 5 });
      results.append(h("p", { class: res.confident ? "ok" : "warn" }, res.confident ? t("confident") : t("notConfident")));
      const list = h("ol", { class: "passages" });
      for (const p of res.passages) {
        const c = p; // the chunk's fields are flattened into the passage
        list.append(
          h(
            "li",
            { class: "passage" },
            h("div", { class: "muted" }, c.title, c.page ? ` · ${t("page", { n: c.page })}` : "", c.heading ? ` · ${c.heading}` : "", ` · ${t("score")} ${p.score.toFixed(3)}`),
            h("p", {}, c.text),
          ),
        );
      }
      results.append(list, h("p", { class: "muted" }, `${res.took_ms} ms`));
    } catch (e) {
      fail(e);
    }
  });

  await load();

  return {
    onEvent(name, data) {
      if (name === "resync") return load().catch(fail);
      if (name !== "document") return;
      const d = docs.find((x) => x.id === data.document_id);
      if (!d) return load().catch(fail);
      Object.assign(d, { status: data.status, progress: data.progress, chunks: data.chunks });
      const old = table.querySelector(`tr[data-document="${d.id}"]`);
      if (old) old.replaceWith(docRow(d));
      if (data.status === "ready") toast(`${d.title}: ${t("ready")}`);
      if (data.status === "failed") load().catch(fail);
    },
  };
}
