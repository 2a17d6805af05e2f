"""Drives notion-client (PyPI, unchanged, its base URL pointed at notion-sim) through every
endpoint the simulator models. Started by `run` with SIM_URL, SIM_TOKEN,
SIM_DATA_SOURCE_ID, SIM_DATABASE_ID in the environment."""

import json
import logging
import os
import sys
import time
import traceback
import urllib.request

from notion_client import APIErrorCode, APIResponseError, Client
from notion_client.helpers import (
    collect_paginated_api,
    is_full_block,
    is_full_data_source,
    is_full_database,
    is_full_page,
    is_full_page_or_data_source,
    is_full_user,
)

URL = os.environ["SIM_URL"]
TOKEN = os.environ["SIM_TOKEN"]
DS = os.environ["SIM_DATA_SOURCE_ID"]
DB = os.environ["SIM_DATABASE_ID"]
MISSING = "11111111-2222-4333-8444-555555555555"


def client(**options):
    return Client(
        auth=options.pop("auth", TOKEN),
        base_url=URL,
        retry={"max_retries": 2, "initial_retry_delay_ms": 100},
        # The expected 4xx answers below would each log a warning.
        log_level=logging.ERROR,
        **options,
    )


notion = client()
state = {}
passed, failures = 0, []


def text(content):
    return [{"type": "text", "text": {"content": content}}]


def plain(rich):
    return "".join(r["plain_text"] for r in rich)


def check(fn):
    global passed
    name = fn.__doc__
    try:
        fn()
        passed += 1
        print(f"ok   {name}", flush=True)
    except Exception:  # noqa: BLE001 - every failure is reported, then the run fails
        failures.append(name)
        print(f"FAIL {name}\n     " + traceback.format_exc().replace("\n", "\n     "), flush=True)
    return fn


def rejects(call, status, code):
    try:
        call()
    except APIResponseError as e:
        assert e.status == status, (e.status, str(e))
        assert e.code == code, (e.code, str(e))
        return e
    raise AssertionError(f"expected {status} {code}")


def all_rows():
    return collect_paginated_api(notion.data_sources.query, data_source_id=DS)


@check
def users_me():
    """users.me"""
    me = notion.users.me()
    assert me["type"] == "bot" and is_full_user(me)
    assert me["bot"]["workspace_id"] and me["bot"]["workspace_limits"]
    state["bot"] = me["id"]


@check
def users_list():
    """users.list (collect_paginated_api) and users.retrieve"""
    users = collect_paginated_api(notion.users.list, page_size=2)
    assert len(users) >= 5 and all(is_full_user(u) for u in users)
    person = next(u for u in users if u["type"] == "person")
    assert notion.users.retrieve(person["id"])["name"] == person["name"]


@check
def databases():
    """databases.retrieve and data_sources.retrieve"""
    db = notion.databases.retrieve(DB)
    assert is_full_database(db)
    assert any(d["id"] == DS for d in db["data_sources"])
    ds = notion.data_sources.retrieve(DS)
    assert is_full_data_source(ds)
    assert ds["properties"]["Status"]["type"] == "status"


@check
def query():
    """data_sources.query (filter, sorts, cursors)"""
    open_tasks = collect_paginated_api(
        notion.data_sources.query,
        data_source_id=DS,
        page_size=7,
        filter={"property": "Status", "status": {"does_not_equal": "Done"}},
        sorts=[{"timestamp": "created_time", "direction": "ascending"}],
    )
    assert all(is_full_page(p) for p in open_tasks)
    rows = all_rows()
    done = [p for p in rows if (p["properties"]["Status"]["status"] or {}).get("name") == "Done"]
    assert len(open_tasks) + len(done) == len(rows) >= 30, (len(open_tasks), len(done), len(rows))


@check
def search():
    """search"""
    res = notion.search(filter={"property": "object", "value": "data_source"})
    assert all(is_full_page_or_data_source(r) for r in res["results"])
    assert any(r["id"] == DS for r in res["results"])
    pages = collect_paginated_api(notion.search, filter={"property": "object", "value": "page"})
    assert len(pages) >= 30 and all(is_full_page(p) for p in pages)


@check
def create_page():
    """pages.create"""
    page = notion.pages.create(
        parent={"database_id": DB},
        properties={
            "Name": {"title": text("Created by notion-client")},
            "Priority": {"select": {"name": "High"}},
            "Estimate": {"number": 3},
        },
        children=[
            {"bulleted_list_item": {"rich_text": text("one"), "children": [
                {"paragraph": {"rich_text": text("nested")}}
            ]}},
        ],
    )
    assert is_full_page(page)
    assert plain(page["properties"]["Name"]["title"]) == "Created by notion-client"
    assert page["properties"]["Status"]["status"]["name"] == "To Do"
    state["page"] = page["id"]


@check
def retrieve_update():
    """pages.retrieve, pages.update, pages.properties.retrieve"""
    got = notion.pages.retrieve(state["page"])
    assert got["properties"]["Estimate"]["number"] == 3
    updated = notion.pages.update(state["page"], properties={"Blocked": {"checkbox": True}})
    assert updated["properties"]["Blocked"]["checkbox"] is True
    title = notion.pages.properties.retrieve(state["page"], "title")
    assert title["object"] == "list" and title["results"][0]["type"] == "title"
    est = notion.pages.properties.retrieve(state["page"], updated["properties"]["Estimate"]["id"])
    assert est["object"] == "property_item" and est["number"] == 3


@check
def markdown():
    """pages.retrieve_markdown"""
    md = notion.pages.retrieve_markdown(state["page"])
    assert md["object"] == "page_markdown"
    assert md["markdown"] == "- one\n\tnested", md["markdown"]


@check
def blocks():
    """blocks.children.list/append, blocks.retrieve/update/delete"""
    top = collect_paginated_api(notion.blocks.children.list, block_id=state["page"])
    assert len(top) == 1 and all(is_full_block(b) for b in top) and top[0]["has_children"]
    added = notion.blocks.children.append(
        top[0]["id"], children=[{"paragraph": {"rich_text": text("second")}}]
    )
    new = added["results"][0]
    assert new["parent"]["block_id"] == top[0]["id"]
    kids = collect_paginated_api(notion.blocks.children.list, block_id=top[0]["id"])
    assert [plain(k["paragraph"]["rich_text"]) for k in kids] == ["nested", "second"]
    assert notion.blocks.retrieve(new["id"])["type"] == "paragraph"
    changed = notion.blocks.update(new["id"], paragraph={"rich_text": text("2nd")})
    assert plain(changed["paragraph"]["rich_text"]) == "2nd"
    assert notion.blocks.delete(new["id"])["in_trash"] is True
    kids = collect_paginated_api(notion.blocks.children.list, block_id=top[0]["id"])
    assert len(kids) == 1
    restored = notion.blocks.update(new["id"], in_trash=False)
    assert restored["in_trash"] is False


@check
def comments():
    """comments.create and comments.list"""
    c = notion.comments.create(parent={"page_id": state["page"]}, rich_text=text("first"))
    # notion-client 3.1.0's is_full_comment tests for a top-level "type", which Notion's
    # comment object (docs and recorded traffic) does not have; the JS SDK tests created_by.
    assert c["object"] == "comment" and "created_by" in c
    notion.comments.create(discussion_id=c["discussion_id"], rich_text=text("second"))
    listed = collect_paginated_api(notion.comments.list, block_id=state["page"], page_size=1)
    assert [plain(x["rich_text"]) for x in listed] == ["first", "second"]


@check
def errors():
    """errors: object_not_found, validation_error, unauthorized"""
    rejects(lambda: notion.pages.retrieve(MISSING), 404, APIErrorCode.ObjectNotFound)
    rejects(
        lambda: notion.pages.create(parent={"data_source_id": DS}, properties={"Nope": {}}),
        400,
        APIErrorCode.ValidationError,
    )
    rejects(lambda: client(auth="secret_wrong").users.me(), 401, APIErrorCode.Unauthorized)


@check
def retry():
    """429 with Retry-After is retried by the SDK"""
    req = urllib.request.Request(
        f"{URL}/_sim/force_errors",
        data=json.dumps({"status": 429, "count": 1, "retry_after": 1}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req) as res:
        assert res.status == 200
    started = time.monotonic()
    assert notion.users.me()["id"] == state["bot"]
    assert time.monotonic() - started >= 0.9, "waited for Retry-After"


@check
def versions():
    """Notion-Version: 2026-03-11 shapes, unmodelled versions refused"""
    page = client(notion_version="2026-03-11").pages.retrieve(state["page"])
    assert page["in_trash"] is False and "archived" not in page
    rejects(
        lambda: client(notion_version="2022-06-28").users.me(), 400, APIErrorCode.ValidationError
    )


@check
def trash():
    """pages.update in_trash, then absent from queries"""
    assert notion.pages.update(state["page"], in_trash=True)["in_trash"] is True
    assert all(r["id"] != state["page"] for r in all_rows())


print(f"notion-client: {passed} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
