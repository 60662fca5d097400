//! Query-side logic: understanding InfluxQL well enough to route it.
//!
//! The gateway never executes queries; it only has to decide where one goes
//! (one node for a read, every node through the log for a mutation) and make
//! mutations replay identically later (`now()` rewritten). That is the job of
//! [`influxql`]. Routing itself lives in `server::query`.

pub mod influxql;
