// Page objects: what a user sees and does on each page, in their words.
import { BASE, waitForHydration } from "./browser.mjs";

export class RunsPage {
  constructor(page) { this.page = page; }
  async open(query = "") {
    await this.page.goto(`${BASE}/${query}`);
    await waitForHydration(this.page);
  }
  runLink(name) { return this.page.getByRole("link", { name, exact: true }); }
  search() { return this.page.getByRole("searchbox", { name: "Search" }); }
  startHere() { return this.page.getByRole("region", { name: "Start here" }); }
  sortBy(column) { return this.page.getByRole("button", { name: column, exact: true }); }
  header(column) { return this.page.getByRole("columnheader", { name: column }); }
  filter(name) { return this.page.getByRole("combobox", { name }); }
  names() { return this.page.locator("table.runs tbody tr td:first-child").allInnerTexts(); }
}

export class RunPage {
  constructor(page) { this.page = page; }
  heading() { return this.page.getByRole("heading", { level: 1 }); }
  chart() { return this.page.getByRole("figure", { name: /Distribution of/ }); }
  modelPicker() { return this.page.getByRole("combobox", { name: "Chart model" }); }
  columnFilter() { return this.page.getByRole("searchbox", { name: "Filter columns" }); }
  columnCount() { return this.page.getByTestId("column-count"); }
  headlineTable() { return this.page.locator("table.headline"); }
}

export class UploadPage {
  constructor(page) { this.page = page; }
  async open() {
    await this.page.goto(`${BASE}/upload`);
    await waitForHydration(this.page);
  }
  async choose(file) { await this.page.getByLabel("Evaluation file").setInputFiles(file); }
  preview() { return this.page.locator("table.preview"); }
  role(column) { return this.page.getByRole("combobox", { name: `Role of ${column}` }); }
  name() { return this.page.getByRole("textbox", { name: "Run name" }); }
  submit() { return this.page.getByRole("button", { name: "Upload" }); }
  // Why Upload is disabled: the text its aria-describedby points at.
  async blockedReason() {
    const id = await this.submit().getAttribute("aria-describedby");
    return (await this.page.locator(`[id="${id}"]`).innerText()).trim();
  }
  error() { return this.page.getByRole("alert"); }
}

// The upload page's second form: an external run registered by its place, its rows left there.
export class RegisterForm {
  constructor(page) {
    this.page = page;
    this.section = page.getByRole("region", { name: "Register an external run" });
  }
  source(kind) { return this.section.getByRole("radio", { name: kind }); }
  field(name) { return this.section.getByRole("textbox", { name, exact: true }); }
  format() { return this.section.getByRole("combobox", { name: "Format of the files" }); }
  submit() { return this.section.getByRole("button", { name: "Register run" }); }
  error() { return this.section.getByRole("alert"); }
}

export class SlicesPage {
  constructor(page) { this.page = page; }
  sliceBy() { return this.page.getByRole("combobox", { name: "Slice by", exact: true }); }
  andBy() { return this.page.getByRole("combobox", { name: "and by", exact: true }); }
  spec() { return this.page.getByRole("textbox", { name: "Slice by spec" }); }
  async openAdvanced() {
    if (!(await this.spec().isVisible())) await this.page.locator("details.advanced summary").first().click();
  }
  sliceError() { return this.page.locator("#slice-error"); }
  /** Replaces the threshold chips with `values` (remove each chip, add the new ones). */
  async setThresholds(values) {
    const remove = this.page.locator("button.chip-remove");
    while (await remove.count()) await remove.first().click();
    for (const v of values) {
      await this.page.getByRole("spinbutton", { name: "Add threshold" }).fill(String(v));
      await this.page.getByRole("button", { name: "Add", exact: true }).click();
    }
  }
  apply() { return this.page.getByRole("button", { name: "Apply" }); }
  metric() { return this.page.getByRole("combobox", { name: "Metric" }); }
  model() { return this.page.getByRole("combobox", { name: "Model" }); }
  slider() { return this.page.getByRole("slider", { name: "Threshold" }); }
  table() { return this.page.locator("table.slices"); }
  chart() { return this.page.locator('.plot[data-rendered="true"]'); }
  rows() { return this.table().locator("tr.slice-row"); }
  row(label) { return this.rows().filter({ hasText: label }); }
}
