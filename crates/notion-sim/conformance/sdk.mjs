// Drives @notionhq/client (unchanged, its base URL pointed at notion-sim) through every
// endpoint the simulator models, checking what the SDK and its helpers rely on. Started by
// `run` with SIM_URL, SIM_TOKEN, SIM_DATA_SOURCE_ID, SIM_DATABASE_ID in the environment.
import assert from "node:assert/strict";
import {
  APIErrorCode,
  APIResponseError,
  Client,
  collectAllDataSourceRows,
  collectPaginatedAPI,
  isFullBlock,
  isFullComment,
  isFullDataSource,
  isFullDatabase,
  isFullPage,
  isFullPageOrDataSource,
  isFullUser,
  LogLevel,
} from "@notionhq/client";

const { SIM_URL, SIM_TOKEN, SIM_DATA_SOURCE_ID: DS, SIM_DATABASE_ID: DB } = process.env;
const client = (options = {}) =>
  new Client({
    auth: SIM_TOKEN,
    baseUrl: SIM_URL,
    retry: { maxRetries: 2, initialRetryDelayMs: 100 },
    // The expected 4xx answers below would each log a warning.
    logLevel: LogLevel.ERROR,
    ...options,
  });
const notion = client();
const text = (content) => [{ type: "text", text: { content } }];
const plain = (rich) => rich.map((r) => r.plain_text).join("");
const MISSING = "11111111-2222-4333-8444-555555555555";

let passed = 0;
const failures = [];
async function check(name, fn) {
  try {
    await fn();
    passed += 1;
    console.log(`ok   ${name}`);
  } catch (e) {
    failures.push(name);
    console.log(`FAIL ${name}\n     ${String(e?.stack ?? e).split("\n").join("\n     ")}`);
  }
}
async function rejects(promise, status, code) {
  try {
    await promise;
  } catch (e) {
    assert.ok(APIResponseError.isAPIResponseError(e), `not an APIResponseError: ${e}`);
    assert.equal(e.status, status, e.message);
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected ${status} ${code}`);
}

const state = {};

await check("users.me", async () => {
  const me = await notion.users.me({});
  assert.equal(me.type, "bot");
  assert.ok(isFullUser(me));
  assert.ok(me.bot.workspace_id, "bot.workspace_id");
  assert.ok(me.bot.workspace_limits, "bot.workspace_limits");
  state.bot = me.id;
});

await check("users.list (collectPaginatedAPI) and users.retrieve", async () => {
  const users = await collectPaginatedAPI(notion.users.list, { page_size: 2 });
  assert.ok(users.length >= 5, `${users.length} users`);
  assert.ok(users.every(isFullUser));
  assert.equal(new Set(users.map((u) => u.id)).size, users.length);
  const person = users.find((u) => u.type === "person");
  const one = await notion.users.retrieve({ user_id: person.id });
  assert.equal(one.name, person.name);
});

await check("databases.retrieve", async () => {
  const db = await notion.databases.retrieve({ database_id: DB });
  assert.ok(isFullDatabase(db));
  assert.ok(db.data_sources.some((d) => d.id === DS));
});

await check("dataSources.retrieve", async () => {
  const ds = await notion.dataSources.retrieve({ data_source_id: DS });
  assert.ok(isFullDataSource(ds));
  assert.equal(ds.properties.Status.type, "status");
  assert.equal(ds.properties.Name.id, "title");
});

await check("dataSources.query (filter, sorts, cursors; collectAllDataSourceRows)", async () => {
  const open = await collectPaginatedAPI(notion.dataSources.query, {
    data_source_id: DS,
    page_size: 7,
    filter: { property: "Status", status: { does_not_equal: "Done" } },
    sorts: [{ timestamp: "created_time", direction: "ascending" }],
  });
  assert.ok(open.every(isFullPage));
  assert.ok(open.every((p) => p.properties.Status.status?.name !== "Done"));
  const all = await collectAllDataSourceRows(notion, { data_source_id: DS });
  const done = all.filter((p) => p.properties.Status.status?.name === "Done");
  assert.equal(open.length + done.length, all.length);
  assert.ok(all.length >= 30, `${all.length} rows`);
  state.task = all[0].id;
});

await check("search", async () => {
  const res = await notion.search({ filter: { property: "object", value: "data_source" } });
  assert.ok(res.results.every(isFullPageOrDataSource));
  assert.ok(res.results.some((r) => r.id === DS));
  const pages = await collectPaginatedAPI(notion.search, {
    filter: { property: "object", value: "page" },
    page_size: 25,
  });
  assert.ok(pages.length >= 30 && pages.every(isFullPage));
});

await check("pages.create", async () => {
  const page = await notion.pages.create({
    parent: { type: "data_source_id", data_source_id: DS },
    properties: {
      Name: { title: text("Created by @notionhq/client") },
      "Due Date": { date: { start: "2026-12-24" } },
      Tags: { multi_select: [{ name: "sdk" }] },
    },
    children: [
      { object: "block", type: "heading_2", heading_2: { rich_text: text("Plan") } },
      { paragraph: { rich_text: text("first") } },
    ],
  });
  assert.ok(isFullPage(page));
  assert.equal(plain(page.properties.Name.title), "Created by @notionhq/client");
  assert.equal(page.properties.Status.status.name, "To Do");
  assert.equal(page.created_by.id, state.bot);
  state.page = page.id;
});

await check("pages.retrieve and pages.update", async () => {
  const got = await notion.pages.retrieve({ page_id: state.page });
  assert.equal(got.properties["Due Date"].date.start, "2026-12-24");
  const updated = await notion.pages.update({
    page_id: state.page,
    properties: { Status: { status: { name: "In Progress" } } },
  });
  assert.equal(updated.properties.Status.status.name, "In Progress");
  const only = await notion.pages.retrieve({ page_id: state.page, filter_properties: ["title"] });
  assert.deepEqual(Object.keys(only.properties), ["Name"]);
});

await check("pages.properties.retrieve", async () => {
  const title = await notion.pages.properties.retrieve({ page_id: state.page, property_id: "title" });
  assert.equal(title.object, "list");
  assert.equal(title.results[0].object, "property_item");
  assert.equal(title.results[0].type, "title");
  const status = await notion.pages.properties.retrieve({ page_id: state.page, property_id: "Zq%3Ab" });
  assert.equal(status.object, "property_item");
  assert.equal(status.status.name, "In Progress");
});

await check("pages.retrieveMarkdown", async () => {
  const md = await notion.pages.retrieveMarkdown({ page_id: state.page });
  assert.equal(md.object, "page_markdown");
  assert.equal(md.markdown, "## Plan\nfirst");
  assert.equal(md.truncated, false);
});

await check("blocks.children.list and blocks.children.append", async () => {
  const before = await collectPaginatedAPI(notion.blocks.children.list, { block_id: state.page });
  assert.equal(before.length, 2);
  assert.ok(before.every(isFullBlock));
  const appended = await notion.blocks.children.append({
    block_id: state.page,
    children: [{ to_do: { rich_text: text("ship it"), checked: false } }],
    position: { type: "after_block", after_block: { id: before[0].id } },
  });
  assert.equal(appended.results.length, 1);
  state.block = appended.results[0].id;
  const after = await collectPaginatedAPI(notion.blocks.children.list, { block_id: state.page });
  assert.deepEqual(after.map((b) => b.id), [before[0].id, state.block, before[1].id]);
});

await check("blocks.retrieve, blocks.update, blocks.delete", async () => {
  const block = await notion.blocks.retrieve({ block_id: state.block });
  assert.ok(isFullBlock(block));
  assert.equal(block.type, "to_do");
  assert.equal(block.parent.page_id, state.page);
  const done = await notion.blocks.update({ block_id: state.block, to_do: { checked: true } });
  assert.equal(done.to_do.checked, true);
  assert.equal(plain(done.to_do.rich_text), "ship it");
  const gone = await notion.blocks.delete({ block_id: state.block });
  assert.equal(gone.in_trash, true);
  const left = await collectPaginatedAPI(notion.blocks.children.list, { block_id: state.page });
  assert.ok(!left.some((b) => b.id === state.block));
  const again = await notion.blocks.retrieve({ block_id: state.block });
  assert.equal(again.in_trash, true);
});

await check("comments.create and comments.list", async () => {
  const c = await notion.comments.create({ parent: { page_id: state.page }, rich_text: text("looks good") });
  assert.ok(isFullComment(c));
  const reply = await notion.comments.create({ discussion_id: c.discussion_id, rich_text: text("thanks") });
  assert.equal(reply.discussion_id, c.discussion_id);
  const all = await collectPaginatedAPI(notion.comments.list, { block_id: state.page, page_size: 1 });
  assert.deepEqual(all.map((x) => plain(x.rich_text)), ["looks good", "thanks"]);
});

await check("errors: object_not_found, validation_error, unauthorized", async () => {
  await rejects(notion.pages.retrieve({ page_id: MISSING }), 404, APIErrorCode.ObjectNotFound);
  await rejects(
    notion.pages.update({ page_id: state.page, properties: { Nope: { checkbox: true } } }),
    400,
    APIErrorCode.ValidationError,
  );
  await rejects(client({ auth: "secret_wrong" }).users.me({}), 401, APIErrorCode.Unauthorized);
});

await check("429 with Retry-After is retried by the SDK", async () => {
  const forced = await fetch(`${SIM_URL}/_sim/force_errors`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ status: 429, count: 1, retry_after: 1 }),
  });
  assert.ok(forced.ok, `force_errors: ${forced.status}`);
  const started = Date.now();
  const me = await notion.users.me({});
  assert.equal(me.id, state.bot);
  assert.ok(Date.now() - started >= 900, "waited for Retry-After");
});

await check("Notion-Version: 2026-03-11 shapes, unmodelled versions refused", async () => {
  const newer = client({ notionVersion: "2026-03-11" });
  const page = await newer.pages.retrieve({ page_id: state.page });
  assert.equal(page.in_trash, false);
  assert.ok(!("archived" in page), "2026-03-11 pages carry in_trash only");
  await rejects(
    client({ notionVersion: "2022-06-28" }).users.me({}),
    400,
    APIErrorCode.ValidationError,
  );
});

await check("pages.update in_trash, then absent from queries", async () => {
  const trashed = await notion.pages.update({ page_id: state.page, in_trash: true });
  assert.equal(trashed.in_trash, true);
  const rows = await collectAllDataSourceRows(notion, { data_source_id: DS });
  assert.ok(!rows.some((r) => r.id === state.page));
});

console.log(`@notionhq/client: ${passed} passed, ${failures.length} failed`);
if (failures.length > 0) process.exit(1);
