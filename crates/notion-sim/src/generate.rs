//! The seeded generator: a realistic "Tasks" workspace (plus an "Other" data source).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use rand::prelude::*;
use serde_json::Value;

use crate::clock::floor_minute;
use crate::model::{
    Block, BlockKind, DataSource, Database, DatePoint, DateValue, PageRecord, PageSnapshot,
    PropKind, PropSchema, PropValue, RenderCache, Segment, SelectOption, StatusGroup, User,
    UserKind, Version, World,
};

pub(crate) const STATUS_TODO: &str = "To Do";
pub(crate) const STATUS_IN_PROGRESS: &str = "In Progress";
pub(crate) const STATUS_OVERDUE: &str = "Overdue";
pub(crate) const STATUS_DONE: &str = "Done";

/// Fixed, Notion-looking property ids of the Tasks data source.
pub(crate) const PROP_STATUS: &str = "Zq%3Ab";
pub(crate) const PROP_DUE: &str = "%3AbEt";
const PROP_ASSIGNEE: &str = "nF%5Cq";
const PROP_PRIORITY: &str = "W%3D%3Br";
const PROP_TAGS: &str = "%40x%7Ck";
const PROP_NOTES: &str = "vT%3FG";
const PROP_ESTIMATE: &str = "bQ%5Dn";
const PROP_BLOCKED: &str = "kX%60u";
const PROP_KIND: &str = "Jc%3Ep";

const VERBS: [&str; 16] = [
    "Draft",
    "Review",
    "Update",
    "Fix",
    "Plan",
    "Prepare",
    "Migrate",
    "Document",
    "Test",
    "Refactor",
    "Ship",
    "Audit",
    "Design",
    "Triage",
    "Benchmark",
    "Clean up",
];
const OBJECTS: [&str; 18] = [
    "onboarding flow",
    "billing export",
    "release notes",
    "API rate limiter",
    "search index",
    "Q3 roadmap",
    "customer survey",
    "login page",
    "webhook retries",
    "database backup",
    "mobile layout",
    "status dashboard",
    "pricing page",
    "sync daemon",
    "error budget",
    "support macros",
    "CI pipeline",
    "holiday rota",
];
const SENTENCES: [&str; 10] = [
    "Agreed in the weekly sync; keep the scope small.",
    "Blocked on the vendor answering our question about limits.",
    "Numbers from last quarter are in the shared sheet.",
    "Pair with someone from support before shipping.",
    "The old behaviour must keep working for existing customers.",
    "Check the dashboards after the deploy.",
    "We tried this in March and rolled it back.",
    "Write down every assumption so review goes faster.",
    "Ask legal whether the export needs a notice.",
    "Prefer the boring solution.",
];
const TAGS: [(&str, &str); 6] = [
    ("Backend", "blue"),
    ("Frontend", "purple"),
    ("Ops", "orange"),
    ("Docs", "gray"),
    ("Bug", "red"),
    ("Research", "green"),
];
const PEOPLE: [(&str, &str); 4] = [
    ("Ada Lovelace", "ada@example.com"),
    ("Grace Hopper", "grace@example.com"),
    ("Alan Turing", "alan@example.com"),
    ("Katherine Johnson", "katherine@example.com"),
];
const CODE: [(&str, &str); 4] = [
    ("rust", "let pages = client.query(&filter).await?;"),
    (
        "sql",
        "SELECT id, status FROM pages\nWHERE due < date('now');",
    ),
    ("bash", "curl -s localhost:8080/healthz | jq .status"),
    ("plain text", "ERROR rate_limited retry_after=3"),
];

fn option(w: &mut World, name: &str, color: &str) -> SelectOption {
    SelectOption {
        id: w.new_id(),
        name: name.to_owned(),
        color: color.to_owned(),
    }
}

/// Creates the workspace: users, the Tasks and Other databases, `pages` generated tasks;
/// then `extra_tasks` more task databases ("Tasks 2", …, same schema) of `pages` tasks
/// each (made last, so the rest of a seed's workspace is the same with or without them).
pub(crate) fn workspace(seed: u64, pages: usize, extra_tasks: usize, now: DateTime<Utc>) -> World {
    let mut w = World {
        rng: StdRng::seed_from_u64(seed),
        workspace_id: String::new(),
        workspace_name: "Acme Sim Workspace".to_owned(),
        integration_id: String::new(),
        home_page_id: String::new(),
        bot: User {
            id: String::new(),
            name: "notion-sync (sim)".to_owned(),
            kind: UserKind::Bot,
        },
        people: Vec::new(),
        databases: Vec::new(),
        data_sources: Vec::new(),
        pages: HashMap::new(),
        next_seq: 0,
        block_index: HashMap::new(),
        cursors: HashMap::new(),
        cursor_order: VecDeque::new(),
        schema_gen: 0,
        tasks_data_source_id: String::new(),
        extra_task_data_source_ids: Vec::new(),
        other_data_source_id: String::new(),
        comments: Vec::new(),
        trashed_blocks: HashMap::new(),
    };
    w.workspace_id = w.new_id();
    w.integration_id = w.new_id();
    w.home_page_id = w.new_id();
    w.bot.id = w.new_id();
    for (name, email) in PEOPLE {
        let id = w.new_id();
        w.people.push(User {
            id,
            name: name.to_owned(),
            kind: UserKind::Person {
                email: email.to_owned(),
            },
        });
    }
    let owner = w.people[0].id.clone();
    let db_created = now - TimeDelta::days(90) + TimeDelta::milliseconds(417);

    // Tasks.
    let opts = [
        option(&mut w, STATUS_TODO, "default"),
        option(&mut w, STATUS_IN_PROGRESS, "blue"),
        option(&mut w, STATUS_OVERDUE, "red"),
        option(&mut w, STATUS_DONE, "green"),
    ];
    let groups = vec![
        StatusGroup {
            id: w.new_id(),
            name: "To-do".to_owned(),
            color: "gray".to_owned(),
            option_ids: vec![opts[0].id.clone()],
        },
        StatusGroup {
            id: w.new_id(),
            name: "In progress".to_owned(),
            color: "blue".to_owned(),
            option_ids: vec![opts[1].id.clone(), opts[2].id.clone()],
        },
        StatusGroup {
            id: w.new_id(),
            name: "Complete".to_owned(),
            color: "green".to_owned(),
            option_ids: vec![opts[3].id.clone()],
        },
    ];
    let priority = vec![
        option(&mut w, "Low", "gray"),
        option(&mut w, "Medium", "yellow"),
        option(&mut w, "High", "red"),
    ];
    let tags: Vec<SelectOption> = TAGS.iter().map(|(n, c)| option(&mut w, n, c)).collect();
    let tasks_db = w.new_id();
    let tasks_ds = w.new_id();
    let prop = |id: &str, name: &str, kind: PropKind| PropSchema {
        id: id.to_owned(),
        name: name.to_owned(),
        kind,
    };
    w.databases.push(Database {
        id: tasks_db.clone(),
        title: "Tasks".to_owned(),
        data_source_id: tasks_ds.clone(),
        created_time: db_created,
        last_edited_time: db_created,
    });
    w.data_sources.push(DataSource {
        id: tasks_ds.clone(),
        database_id: tasks_db,
        title: "Tasks".to_owned(),
        emoji: "\u{2705}".to_owned(),
        props: vec![
            prop("title", "Name", PropKind::Title),
            prop(
                PROP_STATUS,
                "Status",
                PropKind::Status {
                    options: opts.to_vec(),
                    groups,
                },
            ),
            prop(PROP_DUE, "Due Date", PropKind::Date),
            prop(PROP_ASSIGNEE, "Assignee", PropKind::People),
            prop(
                PROP_PRIORITY,
                "Priority",
                PropKind::Select(priority.clone()),
            ),
            prop(PROP_TAGS, "Tags", PropKind::MultiSelect(tags.clone())),
            prop(PROP_NOTES, "Notes", PropKind::RichText),
            prop(PROP_ESTIMATE, "Estimate", PropKind::Number),
            prop(PROP_BLOCKED, "Blocked", PropKind::Checkbox),
        ],
        created_time: floor_minute(db_created),
        last_edited_time: floor_minute(db_created),
        created_by: owner.clone(),
        last_edited_by: owner.clone(),
    });
    w.tasks_data_source_id = tasks_ds.clone();

    // Other.
    let kinds = vec![
        option(&mut w, "Memo", "blue"),
        option(&mut w, "Reference", "brown"),
    ];
    let other_db = w.new_id();
    let other_ds = w.new_id();
    w.databases.push(Database {
        id: other_db.clone(),
        title: "Other".to_owned(),
        data_source_id: other_ds.clone(),
        created_time: db_created,
        last_edited_time: db_created,
    });
    w.data_sources.push(DataSource {
        id: other_ds.clone(),
        database_id: other_db,
        title: "Other".to_owned(),
        emoji: "\u{1f4c4}".to_owned(),
        props: vec![
            prop("title", "Name", PropKind::Title),
            prop(PROP_KIND, "Kind", PropKind::Select(kinds.clone())),
        ],
        created_time: floor_minute(db_created),
        last_edited_time: floor_minute(db_created),
        created_by: owner.clone(),
        last_edited_by: owner.clone(),
    });
    w.other_data_source_id = other_ds.clone();

    // Generated tasks, oldest first.
    let mut drafts = Vec::new();
    for i in 0..pages {
        drafts.push(task(&mut w, i, now, &opts, &priority, &tags));
    }
    drafts.sort_by_key(|d| d.created);
    for d in drafts {
        insert(&mut w, &tasks_ds, d);
    }
    for (i, title) in ["Team handbook", "Meeting notes archive", "Vendor contacts"]
        .iter()
        .enumerate()
    {
        let created = floor_minute(now - TimeDelta::days(80 - i64::try_from(i).unwrap_or(0)));
        let mut props = HashMap::new();
        props.insert(
            "title".to_owned(),
            PropValue::Title(vec![Segment::plain(*title)]),
        );
        props.insert(
            PROP_KIND.to_owned(),
            PropValue::Select(Some(kinds[i % 2].id.clone())),
        );
        let body = vec![gen_block(
            &mut w,
            BlockKind::Paragraph,
            SENTENCES[i],
            created,
            &owner,
        )];
        let d = Draft {
            id: w.new_id(),
            created,
            edited: created,
            author: owner.clone(),
            props,
            body,
        };
        insert(&mut w, &other_ds, d);
    }
    let template = w.tasks().clone();
    for n in 2..2 + extra_tasks {
        let db = w.new_id();
        let ds = w.new_id();
        w.databases.push(Database {
            id: db.clone(),
            title: format!("Tasks {n}"),
            data_source_id: ds.clone(),
            created_time: db_created,
            last_edited_time: db_created,
        });
        w.data_sources.push(DataSource {
            id: ds.clone(),
            database_id: db,
            title: format!("Tasks {n}"),
            ..template.clone()
        });
        w.extra_task_data_source_ids.push(ds.clone());
        let mut drafts: Vec<Draft> = (0..pages)
            .map(|i| task(&mut w, i, now, &opts, &priority, &tags))
            .collect();
        drafts.sort_by_key(|d| d.created);
        for d in drafts {
            insert(&mut w, &ds, d);
        }
    }
    w
}

struct Draft {
    id: String,
    created: DateTime<Utc>,
    edited: DateTime<Utc>,
    author: String,
    props: HashMap<String, PropValue>,
    body: Vec<Block>,
}

fn insert(w: &mut World, ds: &str, d: Draft) {
    let seq = w.next_seq;
    w.next_seq += 1;
    w.index_blocks(&d.id, &d.body);
    let snap = PageSnapshot {
        last_edited_time: d.edited,
        last_edited_by: d.author.clone(),
        in_trash: false,
        is_locked: false,
        icon: Value::Null,
        cover: Value::Null,
        props: d.props,
        body: Arc::new(d.body),
        rendered: RenderCache::default(),
    };
    w.pages.insert(
        d.id.clone(),
        PageRecord {
            id: d.id,
            data_source_id: ds.to_owned(),
            seq,
            created_time: d.created,
            created_by: d.author,
            shared: true,
            versions: vec![Version {
                committed: None,
                snap: Arc::new(snap),
            }],
        },
    );
}

fn pick<'a, T>(w: &mut World, items: &'a [T]) -> &'a T {
    &items[w.rng_index(items.len())]
}

fn task(
    w: &mut World,
    index: usize,
    now: DateTime<Utc>,
    status: &[SelectOption],
    priority: &[SelectOption],
    tags: &[SelectOption],
) -> Draft {
    let id = w.new_id();
    let title = format!("{} {}", pick(w, &VERBS), pick(w, &OBJECTS));
    let age_minutes = w.rng.random_range(60..60 * 24 * 60);
    let created = floor_minute(now - TimeDelta::minutes(age_minutes));
    let since = w.rng.random_range(0..=age_minutes);
    let edited = floor_minute(created + TimeDelta::minutes(since)).min(floor_minute(now));
    let author = pick(w, &w.people.clone()).id.clone();

    let roll: f64 = w.rng.random();
    let st = if roll < 0.35 {
        &status[0]
    } else if roll < 0.65 {
        &status[1]
    } else if roll < 0.70 {
        &status[2]
    } else {
        &status[3]
    };
    let mut props = HashMap::new();
    props.insert(
        "title".to_owned(),
        PropValue::Title(vec![Segment::plain(title)]),
    );
    props.insert(
        PROP_STATUS.to_owned(),
        PropValue::Status(Some(st.id.clone())),
    );
    let due = if w.rng.random_bool(0.8) {
        let days = w.rng.random_range(-14..=21);
        let date = (now + TimeDelta::days(days)).date_naive();
        let start = if w.rng.random_bool(0.15) {
            let hour = w.rng.random_range(8..18);
            let offset = if w.rng.random_bool(0.5) { 0 } else { 2 * 3600 };
            chrono::FixedOffset::east_opt(offset)
                .and_then(|tz| {
                    date.and_hms_opt(hour, 0, 0)?
                        .and_local_timezone(tz)
                        .single()
                })
                .map_or(DatePoint::Date(date), DatePoint::DateTime)
        } else {
            DatePoint::Date(date)
        };
        Some(DateValue {
            start,
            end: None,
            time_zone: None,
        })
    } else {
        None
    };
    props.insert(PROP_DUE.to_owned(), PropValue::Date(due));
    let mut assignees = Vec::new();
    for _ in 0..w.rng.random_range(0..=2) {
        let p = pick(w, &w.people.clone()).id.clone();
        if !assignees.contains(&p) {
            assignees.push(p);
        }
    }
    props.insert(PROP_ASSIGNEE.to_owned(), PropValue::People(assignees));
    let prio = w.rng.random_bool(0.9).then(|| pick(w, priority).id.clone());
    props.insert(PROP_PRIORITY.to_owned(), PropValue::Select(prio));
    let mut tag_ids = Vec::new();
    for _ in 0..w.rng.random_range(0..=3) {
        let t = pick(w, tags).id.clone();
        if !tag_ids.contains(&t) {
            tag_ids.push(t);
        }
    }
    props.insert(PROP_TAGS.to_owned(), PropValue::MultiSelect(tag_ids));
    let notes = if w.rng.random_bool(0.6) {
        let mut bold = Segment::plain(pick(w, &["Ops", "Support", "Finance", "Legal"]).to_string());
        bold.bold = true;
        let mut link = Segment::plain("runbook");
        link.link = Some("https://example.com/runbook".to_owned());
        vec![
            Segment::plain("Coordinate with "),
            bold,
            Segment::plain(" before release; see the "),
            link,
            Segment::plain("."),
        ]
    } else {
        Vec::new()
    };
    props.insert(PROP_NOTES.to_owned(), PropValue::RichText(notes));
    let estimate = w
        .rng
        .random_bool(0.7)
        .then(|| *pick(w, &[0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0]));
    props.insert(PROP_ESTIMATE.to_owned(), PropValue::Number(estimate));
    let blocked = w.rng.random_bool(0.15);
    props.insert(PROP_BLOCKED.to_owned(), PropValue::Checkbox(blocked));

    let body = if index % 20 == 2 {
        long_body(w, edited, &author)
    } else {
        body(w, edited, &author)
    };
    Draft {
        id,
        created,
        edited,
        author,
        props,
        body,
    }
}

fn gen_block(w: &mut World, kind: BlockKind, text: &str, at: DateTime<Utc>, author: &str) -> Block {
    Block {
        id: w.new_id(),
        text: if kind.has_text() {
            vec![Segment::plain(text)]
        } else {
            Vec::new()
        },
        kind,
        children: Vec::new(),
        created_time: at,
        last_edited_time: at,
        created_by: author.to_owned(),
        last_edited_by: author.to_owned(),
    }
}

fn sentence(w: &mut World) -> String {
    (*pick(w, &SENTENCES)).to_owned()
}

/// A block of `kind` holding a random sentence.
fn said(w: &mut World, kind: BlockKind, at: DateTime<Utc>, author: &str) -> Block {
    let text = sentence(w);
    gen_block(w, kind, &text, at, author)
}

/// A realistic body: headings, rich paragraphs, nested lists, to-dos, toggles, code, quotes.
fn body(w: &mut World, at: DateTime<Utc>, author: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let n = w.rng.random_range(0..=9);
    if n == 0 {
        return out;
    }
    out.push(gen_block(w, BlockKind::Heading2, "Context", at, author));
    let mut para = gen_block(w, BlockKind::Paragraph, "", at, author);
    let mut em = Segment::plain("why");
    em.italic = true;
    let mut code = Segment::plain("notion-sync");
    code.code = true;
    let mut strike = Segment::plain("next week");
    strike.strikethrough = true;
    para.text = vec![
        Segment::plain("Explains "),
        em,
        Segment::plain(" we touch "),
        code,
        Segment::plain(" now, not "),
        strike,
        Segment::plain(". "),
        Segment::plain(sentence(w)),
    ];
    out.push(para);
    for _ in 0..n {
        let block = match w.rng.random_range(0..9) {
            0 => said(w, BlockKind::Paragraph, at, author),
            1 => {
                let mut b = said(w, BlockKind::Bulleted, at, author);
                for _ in 0..w.rng.random_range(1..=2) {
                    let mut child = said(w, BlockKind::Bulleted, at, author);
                    if w.rng.random_bool(0.3) {
                        child
                            .children
                            .push(said(w, BlockKind::Numbered, at, author));
                    }
                    b.children.push(child);
                }
                b
            }
            2 => said(w, BlockKind::Numbered, at, author),
            3 => {
                let checked = w.rng.random_bool(0.5);
                said(w, BlockKind::ToDo { checked }, at, author)
            }
            4 => {
                let mut t = gen_block(w, BlockKind::Toggle, "Details", at, author);
                t.children.push(said(w, BlockKind::Paragraph, at, author));
                t
            }
            5 => {
                let (lang, src) = *pick(w, &CODE);
                gen_block(
                    w,
                    BlockKind::Code {
                        language: lang.to_owned(),
                    },
                    src,
                    at,
                    author,
                )
            }
            6 => said(w, BlockKind::Quote, at, author),
            7 => said(w, BlockKind::Callout, at, author),
            _ => gen_block(w, BlockKind::Divider, "", at, author),
        };
        out.push(block);
    }
    out
}

/// A long checklist, so block-children pagination and markdown limits get exercised.
fn long_body(w: &mut World, at: DateTime<Utc>, author: &str) -> Vec<Block> {
    let mut out = vec![gen_block(
        w,
        BlockKind::Heading1,
        "Launch checklist",
        at,
        author,
    )];
    for i in 1..=130 {
        let checked = w.rng.random_bool(0.4);
        let text = format!("Step {i}: {}", sentence(w));
        out.push(gen_block(w, BlockKind::ToDo { checked }, &text, at, author));
    }
    out
}

/// Converts a public [`crate::SimBlock`] tree into stored blocks with fresh ids.
pub(crate) fn from_sim_blocks(
    w: &mut World,
    blocks: &[crate::SimBlock],
    at: DateTime<Utc>,
    author: &str,
) -> Vec<Block> {
    use crate::SimBlock as S;
    blocks
        .iter()
        .map(|b| {
            let (kind, text, children): (BlockKind, &str, &[S]) = match b {
                S::Paragraph(t) => (BlockKind::Paragraph, t, &[]),
                S::Heading1(t) => (BlockKind::Heading1, t, &[]),
                S::Heading2(t) => (BlockKind::Heading2, t, &[]),
                S::Heading3(t) => (BlockKind::Heading3, t, &[]),
                S::Bulleted(t, c) => (BlockKind::Bulleted, t, c),
                S::Numbered(t, c) => (BlockKind::Numbered, t, c),
                S::ToDo(t, checked) => (BlockKind::ToDo { checked: *checked }, t, &[]),
                S::Toggle(t, c) => (BlockKind::Toggle, t, c),
                S::Quote(t) => (BlockKind::Quote, t, &[]),
                S::Callout(t) => (BlockKind::Callout, t, &[]),
                S::Code { language, text } => (
                    BlockKind::Code {
                        language: language.clone(),
                    },
                    text,
                    &[],
                ),
                S::Divider => (BlockKind::Divider, "", &[]),
            };
            let mut block = gen_block(w, kind, text, at, author);
            if text.is_empty() {
                block.text.clear();
            }
            block.children = from_sim_blocks(w, children, at, author);
            block
        })
        .collect()
}
