// Contacts: the people a tenant talks to; a CSV import checked first (a dry run lists every bad
// row with its line) and then stored; each contact's language, export and erasure.

import * as api from "./api.js";
import { t } from "./i18n.js";
import { h, clear, fail, toast, field, when } from "./ui.js";

export async function render(main) {
  main.append(h("h1", {}, t("contacts")));
  const channels = await api.get("/v1/channels");
  const [channelF, channel] = field(t("channel"), h("select", { name: "import-channel" }, channels.map((c) => h("option", { value: c.id }, `${c.name} (${c.kind})`))));
  const [fileF, file] = field(t("csvFile"), h("input", { type: "file", name: "import-file", accept: ".csv,text/csv" }));
  const [countryF, country] = field(t("defaultCountry"), h("input", { name: "import-country", maxlength: 2, size: 3, placeholder: "DE" }));
  const check = h("button", { type: "button", class: "check" }, t("checkFile"));
  const store = h("button", { type: "button", class: "primary import", disabled: true }, t("importContacts"));
  const report = h("div", { class: "import-report", "aria-live": "polite" });
  main.append(
    h("section", { class: "card" }, h("h2", {}, t("importCsv")), h("p", { class: "muted" }, t("importHelp")), channelF, fileF, countryF, h("div", { class: "row" }, check, store), report),
  );
  const list = h("tbody");
  const more = h("button", { type: "button", hidden: true }, t("more"));
  main.append(
    h("section", { class: "card" },
      h("table", { class: "contacts" },
        h("thead", {}, h("tr", {}, [t("name"), t("reachedAt"), t("replyLanguage"), t("consent"), t("created"), ""].map((c) => h("th", {}, c)))),
        list),
      more),
  );
  if (!channels.length) check.disabled = true;

  async function send(dryRun) {
    const picked = file.files[0];
    if (!picked) return toast(t("required"), "error");
    const q = new URLSearchParams({ channel_id: channel.value, dry_run: String(dryRun) });
    if (country.value.trim()) q.set("default_country", country.value.trim());
    const res = await api.call("POST", `/v1/contacts/import?${q}`, new Blob([await picked.arrayBuffer()], { type: "text/csv" }));
    clear(report);
    const counts = t("importCounts", { rows: res.rows, valid: res.valid, invalid: res.invalid, created: res.created, updated: res.updated, unchanged: res.unchanged });
    report.append(h("p", { class: dryRun ? "dry-run" : "imported" }, dryRun ? `${t("dryRun")}: ${counts}` : counts));
    if (res.errors.length) {
      report.append(h("ul", { class: "import-errors" }, res.errors.map((e) => h("li", { "data-line": e.line }, `${t("line")} ${e.line}: ${e.reason}`))));
    }
    store.disabled = !dryRun || res.valid === 0;
    if (!dryRun) await load(null);
  }
  check.addEventListener("click", () => send(true).catch(fail));
  store.addEventListener("click", () => send(false).catch(fail));
  file.addEventListener("change", () => (store.disabled = true));

  function row(c) {
    const language = h("span", {}, c.language || (c.detected_language ? `${c.detected_language} (${t("detected")})` : "—"));
    const exp = h("button", { type: "button", class: "export" }, t("export"));
    exp.addEventListener("click", async () => {
      try {
        const archive = await api.get(`/v1/contacts/${c.id}/export`);
        const url = URL.createObjectURL(new Blob([JSON.stringify(archive, null, 2)], { type: "application/json" }));
        h("a", { href: url, download: `contact-${c.id}.json` }).click();
        setTimeout(() => URL.revokeObjectURL(url), 10_000);
      } catch (e) {
        fail(e);
      }
    });
    const erase = h("button", { type: "button", class: "danger erase" }, t("erase"));
    erase.addEventListener("click", async () => {
      if (!confirm(t("eraseConfirm", { name: c.display_name || c.id }))) return;
      try {
        await api.call("DELETE", `/v1/contacts/${c.id}`);
        tr.remove();
        toast(t("erased"));
      } catch (e) {
        fail(e);
      }
    });
    const tr = h("tr", { "data-contact": c.id },
      h("td", {}, c.display_name || "—"),
      h("td", {}, c.identities.map((i) => i.external_id).join(", ")),
      h("td", {}, language),
      h("td", {}, c.consent_at ? when(c.consent_at) : "—"),
      h("td", {}, when(c.created_at)),
      h("td", {}, exp, " ", erase));
    return tr;
  }

  async function load(cursor) {
    const q = new URLSearchParams({ limit: "100" });
    if (cursor) q.set("cursor", cursor);
    const res = await api.get(`/v1/contacts?${q}`);
    if (!cursor) clear(list);
    if (!cursor && !res.items.length) list.append(h("tr", { class: "empty" }, h("td", { colspan: 6 }, t("noContacts"))));
    res.items.forEach((c) => list.append(row(c)));
    more.hidden = !res.next_cursor;
    more.onclick = () => load(res.next_cursor).catch(fail);
  }
  await load(null);
}
