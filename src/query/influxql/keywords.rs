//! The InfluxQL keyword table.
//!
//! Why a table of its own: whether a bare word is a keyword changes how the
//! next characters are scanned (a keyword followed by `(` is never a function
//! call, `FROM` opens a regex context, `INTO` turns a read into a write), so
//! the lexer needs the exact list InfluxDB uses (influxql `token.go`). Quoted
//! identifiers (`"into"`) are never keywords.

/// A keyword the classifier or the regex-context tracker cares about.
/// Every other keyword maps to [`Kw::Other`]: it is still "not an
/// identifier", which matters for call detection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kw {
    Alter,
    Analyze,
    By,
    Cardinality,
    Continuous,
    Create,
    Database,
    Databases,
    Delete,
    Diagnostics,
    Distinct,
    Drop,
    Exact,
    Explain,
    Field,
    For,
    From,
    Grant,
    Grants,
    Group,
    Groups,
    Into,
    Key,
    Keys,
    Kill,
    Limit,
    Measurement,
    Measurements,
    Offset,
    Order,
    Password,
    Policies,
    Policy,
    Queries,
    Query,
    Retention,
    Revoke,
    Select,
    Series,
    Set,
    Shard,
    Shards,
    Show,
    Slimit,
    Soffset,
    Stats,
    Subscription,
    Subscriptions,
    Tag,
    User,
    Users,
    Values,
    Verbose,
    Where,
    With,
    Other,
}

/// Longest keyword ("SUBSCRIPTIONS") in bytes; longer words are identifiers.
const MAX_KEYWORD_LEN: usize = 13;

/// Looks a bare word up case-insensitively; `None` means "identifier".
pub(crate) fn lookup(word: &str) -> Option<Kw> {
    if word.len() > MAX_KEYWORD_LEN {
        return None;
    }
    // Upper-case into a stack buffer: no allocation on the hot path.
    let mut buf = [0u8; MAX_KEYWORD_LEN];
    for (dst, src) in buf.iter_mut().zip(word.bytes()) {
        *dst = src.to_ascii_uppercase();
    }
    let kw = match &buf[..word.len()] {
        b"ALTER" => Kw::Alter,
        b"ANALYZE" => Kw::Analyze,
        b"BY" => Kw::By,
        b"CARDINALITY" => Kw::Cardinality,
        b"CONTINUOUS" => Kw::Continuous,
        b"CREATE" => Kw::Create,
        b"DATABASE" => Kw::Database,
        b"DATABASES" => Kw::Databases,
        b"DELETE" => Kw::Delete,
        b"DIAGNOSTICS" => Kw::Diagnostics,
        b"DISTINCT" => Kw::Distinct,
        b"DROP" => Kw::Drop,
        b"EXACT" => Kw::Exact,
        b"EXPLAIN" => Kw::Explain,
        b"FIELD" => Kw::Field,
        b"FOR" => Kw::For,
        b"FROM" => Kw::From,
        b"GRANT" => Kw::Grant,
        b"GRANTS" => Kw::Grants,
        b"GROUP" => Kw::Group,
        b"GROUPS" => Kw::Groups,
        b"INTO" => Kw::Into,
        b"KEY" => Kw::Key,
        b"KEYS" => Kw::Keys,
        b"KILL" => Kw::Kill,
        b"LIMIT" => Kw::Limit,
        b"MEASUREMENT" => Kw::Measurement,
        b"MEASUREMENTS" => Kw::Measurements,
        b"OFFSET" => Kw::Offset,
        b"ORDER" => Kw::Order,
        b"PASSWORD" => Kw::Password,
        b"POLICIES" => Kw::Policies,
        b"POLICY" => Kw::Policy,
        b"QUERIES" => Kw::Queries,
        b"QUERY" => Kw::Query,
        b"RETENTION" => Kw::Retention,
        b"REVOKE" => Kw::Revoke,
        b"SELECT" => Kw::Select,
        b"SERIES" => Kw::Series,
        b"SET" => Kw::Set,
        b"SHARD" => Kw::Shard,
        b"SHARDS" => Kw::Shards,
        b"SHOW" => Kw::Show,
        b"SLIMIT" => Kw::Slimit,
        b"SOFFSET" => Kw::Soffset,
        b"STATS" => Kw::Stats,
        b"SUBSCRIPTION" => Kw::Subscription,
        b"SUBSCRIPTIONS" => Kw::Subscriptions,
        b"TAG" => Kw::Tag,
        b"USER" => Kw::User,
        b"USERS" => Kw::Users,
        b"VALUES" => Kw::Values,
        b"VERBOSE" => Kw::Verbose,
        b"WHERE" => Kw::Where,
        b"WITH" => Kw::With,
        // The rest of token.go's keywords (plus AND/OR/TRUE/FALSE).
        b"ALL" | b"AND" | b"ANY" | b"AS" | b"ASC" | b"BEGIN" | b"DEFAULT" | b"DESC"
        | b"DESTINATIONS" | b"DURATION" | b"END" | b"EVERY" | b"FALSE" | b"FUTURE" | b"IN"
        | b"INF" | b"INSERT" | b"NAME" | b"ON" | b"OR" | b"PAST" | b"PRIVILEGES" | b"READ"
        | b"REPLICATION" | b"RESAMPLE" | b"TO" | b"TRUE" | b"WRITE" => Kw::Other,
        _ => return None,
    };
    Some(kw)
}
