//! The `repair` section: the opt-in background repair (`repair.auto`).
//!
//! Off by default because it writes to the nodes on its own. Bounds: a run
//! at most once a second and at least once a day; a lookback of at least
//! one interval (a shorter one would leave the data between two runs never
//! verified) and at most 30 days (every run reads the whole window's
//! digests from every node).

use super::key::Key;
use super::{DAY, Problem, secs};
use crate::config::RepairConfig;
use crate::config::raw::RawRepair;

pub fn repair(section: Key<RawRepair>) -> Result<RepairConfig, Problem> {
    let s = section.path.as_str();
    let mut r = section.raw.unwrap_or_default();
    let auto = r.auto.take().unwrap_or(false);
    let interval = key!(s, r.interval).duration(secs(600), secs(1)..=DAY)?;
    let lookback_key = key!(s, r.lookback);
    let path = lookback_key.path.clone();
    let lookback = lookback_key.duration(secs(3600), secs(1)..=30 * DAY)?;
    if lookback < interval {
        let f = humantime::format_duration;
        return Err((
            path,
            format!(
                "{} is shorter than repair.interval ({}): data between two runs would never be verified",
                f(lookback),
                f(interval)
            ),
        ));
    }
    Ok(RepairConfig {
        auto,
        interval,
        lookback,
    })
}
