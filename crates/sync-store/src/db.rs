//! The two database engines behind one small query API: a connection, a pool and a row
//! that are SQLite or PostgreSQL, and statements written once, with `$n` placeholders
//! (both engines read them). Values are bound as integers or text only, the two types the
//! schema uses; a statement whose text differs by engine picks it with [`Backend::pick`].

use std::borrow::Cow;
use std::marker::PhantomData;

use sqlx::postgres::{PgArguments, PgConnection, PgPool, PgRow};
use sqlx::sqlite::{SqliteArguments, SqliteConnection, SqlitePool, SqliteRow};
use sqlx::{Arguments, AssertSqlSafe, Connection, Row as _};

/// Which engine a connection talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// A subquery answering the elements of the JSON array of strings bound at `$n`.
    pub(crate) fn json_strings(self, n: usize) -> String {
        match self {
            Self::Sqlite => format!("SELECT value FROM json_each(${n})"),
            Self::Postgres => format!("SELECT json_array_elements_text(${n}::json)"),
        }
    }

    /// The statement text for this engine (where the dialects differ).
    pub(crate) fn pick(self, sqlite: &'static str, postgres: &'static str) -> &'static str {
        match self {
            Self::Sqlite => sqlite,
            Self::Postgres => postgres,
        }
    }
}

/// One connection (the writer's).
pub(crate) enum Conn {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

impl Conn {
    pub(crate) fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    pub(crate) async fn close(self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(c) => c.close().await,
            Self::Postgres(c) => c.close().await,
        }
    }
}

/// The reader pool.
#[derive(Clone, Debug)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Pool {
    pub(crate) async fn close(&self) {
        match self {
            Self::Sqlite(p) => p.close().await,
            Self::Postgres(p) => p.close().await,
        }
    }
}

/// Where a statement runs: the writer's connection or a pooled reader.
pub(crate) enum Target<'a> {
    Conn(&'a mut Conn),
    Pool(&'a Pool),
}

impl<'a> From<&'a mut Conn> for Target<'a> {
    fn from(c: &'a mut Conn) -> Self {
        Self::Conn(c)
    }
}

impl<'a> From<&'a Pool> for Target<'a> {
    fn from(p: &'a Pool) -> Self {
        Self::Pool(p)
    }
}

/// A bound value: the schema stores integers and text (booleans as 0/1).
#[derive(Clone, Debug)]
pub(crate) enum Value {
    Int(Option<i64>),
    Text(Option<String>),
}

/// What can be bound to a placeholder.
pub(crate) trait Bind {
    fn value(self) -> Value;
}

impl Bind for i64 {
    fn value(self) -> Value {
        Value::Int(Some(self))
    }
}

impl Bind for Option<i64> {
    fn value(self) -> Value {
        Value::Int(self)
    }
}

impl Bind for bool {
    fn value(self) -> Value {
        Value::Int(Some(i64::from(self)))
    }
}

impl Bind for String {
    fn value(self) -> Value {
        Value::Text(Some(self))
    }
}

impl Bind for &str {
    fn value(self) -> Value {
        Value::Text(Some(self.to_owned()))
    }
}

impl Bind for &String {
    fn value(self) -> Value {
        Value::Text(Some(self.clone()))
    }
}

impl Bind for Option<String> {
    fn value(self) -> Value {
        Value::Text(self)
    }
}

impl Bind for Option<&str> {
    fn value(self) -> Value {
        Value::Text(self.map(str::to_owned))
    }
}

impl Bind for &Option<String> {
    fn value(self) -> Value {
        Value::Text(self.clone())
    }
}

impl Bind for Option<&String> {
    fn value(self) -> Value {
        Value::Text(self.cloned())
    }
}

/// A statement with its bound values.
pub(crate) struct Query {
    sql: Cow<'static, str>,
    args: Vec<Value>,
    persistent: bool,
}

/// A statement with `$n` placeholders.
pub(crate) fn query(sql: &'static str) -> Query {
    Query {
        sql: Cow::Borrowed(sql),
        args: Vec::new(),
        persistent: true,
    }
}

/// A statement built at run time (from one engine's fragments).
pub(crate) fn query_text(sql: String) -> Query {
    Query {
        sql: Cow::Owned(sql),
        args: Vec::new(),
        persistent: true,
    }
}

/// A statement whose answer is its first column.
pub(crate) fn query_scalar<T: FromDb>(sql: &'static str) -> Scalar<T> {
    Scalar {
        query: query(sql),
        _t: PhantomData,
    }
}

/// What an `execute` did.
pub(crate) struct Done {
    rows: u64,
}

impl Done {
    pub(crate) fn rows_affected(&self) -> u64 {
        self.rows
    }
}

fn sqlite_args(values: Vec<Value>) -> Result<SqliteArguments, sqlx::Error> {
    let mut args = SqliteArguments::default();
    for v in values {
        match v {
            Value::Int(i) => args.add(i),
            Value::Text(t) => args.add(t),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(args)
}

fn pg_args(values: Vec<Value>) -> Result<PgArguments, sqlx::Error> {
    let mut args = PgArguments::default();
    for v in values {
        match v {
            Value::Int(i) => args.add(i),
            Value::Text(t) => args.add(t),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(args)
}

/// Runs `$q` (a `Query`) on `$target` with the sqlx call `$method`, mapping the
/// engine's answer with `$sqlite` / `$pg`.
macro_rules! run {
    ($q:expr, $target:expr, $method:ident, $sqlite:expr, $pg:expr) => {{
        let Query {
            sql,
            args,
            persistent,
        } = $q;
        let sql = AssertSqlSafe(sql);
        let target: Target<'_> = $target.into();
        match target {
            Target::Conn(Conn::Sqlite(c)) => {
                let q = sqlx::query_with(sql, sqlite_args(args)?).persistent(persistent);
                q.$method(c).await.map($sqlite)
            }
            Target::Pool(Pool::Sqlite(p)) => {
                let q = sqlx::query_with(sql, sqlite_args(args)?).persistent(persistent);
                q.$method(p).await.map($sqlite)
            }
            Target::Conn(Conn::Postgres(c)) => {
                let q = sqlx::query_with(sql, pg_args(args)?).persistent(persistent);
                q.$method(c).await.map($pg)
            }
            Target::Pool(Pool::Postgres(p)) => {
                let q = sqlx::query_with(sql, pg_args(args)?).persistent(persistent);
                q.$method(p).await.map($pg)
            }
        }
    }};
}

impl Query {
    pub(crate) fn bind(mut self, v: impl Bind) -> Self {
        self.args.push(v.value());
        self
    }

    /// Whether the prepared statement is cached on the connection (default yes).
    pub(crate) fn persistent(mut self, persistent: bool) -> Self {
        self.persistent = persistent;
        self
    }

    pub(crate) async fn execute<'a>(self, t: impl Into<Target<'a>>) -> Result<Done, sqlx::Error> {
        run!(
            self,
            t,
            execute,
            |r: sqlx::sqlite::SqliteQueryResult| Done {
                rows: r.rows_affected()
            },
            |r: sqlx::postgres::PgQueryResult| Done {
                rows: r.rows_affected()
            }
        )
    }

    pub(crate) async fn fetch_all<'a>(
        self,
        t: impl Into<Target<'a>>,
    ) -> Result<Vec<Row>, sqlx::Error> {
        run!(
            self,
            t,
            fetch_all,
            |rows: Vec<SqliteRow>| rows.into_iter().map(Row::Sqlite).collect(),
            |rows: Vec<PgRow>| rows.into_iter().map(Row::Postgres).collect()
        )
    }

    pub(crate) async fn fetch_optional<'a>(
        self,
        t: impl Into<Target<'a>>,
    ) -> Result<Option<Row>, sqlx::Error> {
        run!(
            self,
            t,
            fetch_optional,
            |r: Option<SqliteRow>| r.map(Row::Sqlite),
            |r: Option<PgRow>| r.map(Row::Postgres)
        )
    }

    pub(crate) async fn fetch_one<'a>(self, t: impl Into<Target<'a>>) -> Result<Row, sqlx::Error> {
        run!(self, t, fetch_one, Row::Sqlite, Row::Postgres)
    }
}

/// A [`Query`] answered by its first column.
pub(crate) struct Scalar<T> {
    query: Query,
    _t: PhantomData<T>,
}

impl<T: FromDb> Scalar<T> {
    pub(crate) fn bind(mut self, v: impl Bind) -> Self {
        self.query = self.query.bind(v);
        self
    }

    pub(crate) fn persistent(mut self, persistent: bool) -> Self {
        self.query = self.query.persistent(persistent);
        self
    }

    pub(crate) async fn fetch_one<'a>(self, t: impl Into<Target<'a>>) -> Result<T, sqlx::Error> {
        self.query.fetch_one(t).await?.try_get(0)
    }

    pub(crate) async fn fetch_optional<'a>(
        self,
        t: impl Into<Target<'a>>,
    ) -> Result<Option<T>, sqlx::Error> {
        self.query
            .fetch_optional(t)
            .await?
            .map(|r| r.try_get(0))
            .transpose()
    }

    pub(crate) async fn fetch_all<'a>(
        self,
        t: impl Into<Target<'a>>,
    ) -> Result<Vec<T>, sqlx::Error> {
        self.query
            .fetch_all(t)
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect()
    }
}

/// A statement built piece by piece (multi-row inserts, `IN (…)` lists): every
/// [`push_bind`](Builder::push_bind) appends the next `$n`.
pub(crate) struct Builder {
    sql: String,
    args: Vec<Value>,
}

impl Builder {
    pub(crate) fn new(sql: &str) -> Self {
        Self {
            sql: sql.to_owned(),
            args: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    pub(crate) fn push_bind(&mut self, v: impl Bind) -> &mut Self {
        self.args.push(v.value());
        self.sql.push('$');
        self.sql.push_str(&self.args.len().to_string());
        self
    }

    /// `(…), (…)`: one parenthesised, comma-separated group per item, filled by `row`.
    pub(crate) fn push_rows<I, F>(&mut self, items: I, mut row: F) -> &mut Self
    where
        I: IntoIterator,
        F: FnMut(&mut Row_<'_>, I::Item),
    {
        for (n, item) in items.into_iter().enumerate() {
            self.push(if n == 0 { "(" } else { ", (" });
            row(
                &mut Row_ {
                    builder: self,
                    first: true,
                },
                item,
            );
            self.push(")");
        }
        self
    }

    /// `a, b, c`: the values bound, comma-separated.
    pub(crate) fn push_list<I: IntoIterator<Item = V>, V: Bind>(&mut self, values: I) -> &mut Self {
        for (n, v) in values.into_iter().enumerate() {
            if n > 0 {
                self.push(", ");
            }
            self.push_bind(v);
        }
        self
    }

    pub(crate) fn build(self) -> Query {
        Query {
            sql: Cow::Owned(self.sql),
            args: self.args,
            persistent: true,
        }
    }

    pub(crate) fn build_query_scalar<T: FromDb>(self) -> Scalar<T> {
        Scalar {
            query: self.build(),
            _t: PhantomData,
        }
    }
}

/// One row of [`Builder::push_rows`]: values and literal SQL, comma-separated.
#[allow(non_camel_case_types)]
pub(crate) struct Row_<'b> {
    builder: &'b mut Builder,
    first: bool,
}

impl Row_<'_> {
    fn sep(&mut self) {
        if !self.first {
            self.builder.push(", ");
        }
        self.first = false;
    }

    pub(crate) fn push_bind(&mut self, v: impl Bind) -> &mut Self {
        self.sep();
        self.builder.push_bind(v);
        self
    }

    pub(crate) fn push(&mut self, sql: &str) -> &mut Self {
        self.sep();
        self.builder.push(sql);
        self
    }
}

/// A result row of either engine.
pub(crate) enum Row {
    Sqlite(SqliteRow),
    Postgres(PgRow),
}

impl Row {
    /// Column `i` as `T`. Panics when the column does not decode as `T` (a statement and
    /// its reader disagree: a bug, as with sqlx's `Row::get`).
    #[track_caller]
    pub(crate) fn get<T: FromDb>(&self, i: impl Column) -> T {
        match self.try_get(i) {
            Ok(v) => v,
            Err(e) => panic!("column {i:?}: {e}"),
        }
    }

    pub(crate) fn try_get<T: FromDb>(&self, i: impl Column) -> Result<T, sqlx::Error> {
        match self {
            Self::Sqlite(r) => T::sqlite(r, i),
            Self::Postgres(r) => T::postgres(r, i),
        }
    }
}

/// What a column decodes to. Postgres integers are read whatever their width (`COUNT` is
/// `bigint`, `length` is `integer`), and booleans from `boolean` or 0/1 integers.
pub(crate) trait FromDb: Sized {
    fn sqlite(r: &SqliteRow, i: impl Column) -> Result<Self, sqlx::Error>;
    fn postgres(r: &PgRow, i: impl Column) -> Result<Self, sqlx::Error>;
}

/// A column by position or name.
pub(crate) trait Column:
    sqlx::ColumnIndex<SqliteRow> + sqlx::ColumnIndex<PgRow> + Copy + std::fmt::Debug
{
}

impl Column for usize {}
impl Column for &str {}

fn pg_int(r: &PgRow, i: impl Column) -> Result<Option<i64>, sqlx::Error> {
    match r.try_get::<Option<i64>, _>(i) {
        Ok(v) => Ok(v),
        Err(sqlx::Error::ColumnDecode { .. }) => match r.try_get::<Option<i32>, _>(i) {
            Ok(v) => Ok(v.map(i64::from)),
            Err(_) => r.try_get::<Option<bool>, _>(i).map(|b| b.map(i64::from)),
        },
        Err(e) => Err(e),
    }
}

fn null(i: impl Column) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: format!("{i:?}"),
        source: "unexpected NULL".into(),
    }
}

impl FromDb for Option<i64> {
    fn sqlite(r: &SqliteRow, i: impl Column) -> Result<Self, sqlx::Error> {
        r.try_get(i)
    }
    fn postgres(r: &PgRow, i: impl Column) -> Result<Self, sqlx::Error> {
        pg_int(r, i)
    }
}

impl FromDb for i64 {
    fn sqlite(r: &SqliteRow, i: impl Column) -> Result<Self, sqlx::Error> {
        r.try_get(i)
    }
    fn postgres(r: &PgRow, i: impl Column) -> Result<Self, sqlx::Error> {
        pg_int(r, i)?.ok_or_else(|| null(i))
    }
}

impl FromDb for bool {
    fn sqlite(r: &SqliteRow, i: impl Column) -> Result<Self, sqlx::Error> {
        r.try_get(i)
    }
    fn postgres(r: &PgRow, i: impl Column) -> Result<Self, sqlx::Error> {
        Ok(pg_int(r, i)?.ok_or_else(|| null(i))? != 0)
    }
}

impl FromDb for Option<String> {
    fn sqlite(r: &SqliteRow, i: impl Column) -> Result<Self, sqlx::Error> {
        r.try_get(i)
    }
    fn postgres(r: &PgRow, i: impl Column) -> Result<Self, sqlx::Error> {
        r.try_get(i)
    }
}

impl FromDb for String {
    fn sqlite(r: &SqliteRow, i: impl Column) -> Result<Self, sqlx::Error> {
        r.try_get(i)
    }
    fn postgres(r: &PgRow, i: impl Column) -> Result<Self, sqlx::Error> {
        r.try_get(i)
    }
}
