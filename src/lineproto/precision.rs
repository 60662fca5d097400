//! Timestamp precision of a write request.
//!
//! Exists because the gateway stamps points that arrive without a timestamp,
//! and the stamp must be written in the unit the client declared (the node
//! applies that same unit when it parses the body we forward). It also bounds
//! explicit timestamps: InfluxDB multiplies them by the unit and rejects the
//! ones that leave the int64-nanosecond range.

/// The unit of the integer timestamps in a write body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    #[default]
    Nanosecond,
    Microsecond,
    Millisecond,
    Second,
    Minute,
    Hour,
}

impl Precision {
    /// Parses the 1.x `/write?precision=` parameter.
    ///
    /// 1.x accepts exactly `""`, `n`, `ns`, `u`, `ms`, `s`, `m`, `h`
    /// (`serveWriteV1`); anything else, including `us`, is a 400
    /// `invalid precision "x" (use n, u, ms, s, m or h)`, so it is `None` here.
    pub fn parse_v1(s: &str) -> Option<Precision> {
        Some(match s {
            "" | "n" | "ns" => Precision::Nanosecond,
            "u" => Precision::Microsecond,
            "ms" => Precision::Millisecond,
            "s" => Precision::Second,
            "m" => Precision::Minute,
            "h" => Precision::Hour,
            _ => return None,
        })
    }

    /// Parses the 2.x `/api/v2/write?precision=` parameter: `""`, `ns`, `us`,
    /// `ms`, `s`. 2.x has no minute or hour precision.
    pub fn parse_v2(s: &str) -> Option<Precision> {
        Some(match s {
            "" | "ns" => Precision::Nanosecond,
            "us" => Precision::Microsecond,
            "ms" => Precision::Millisecond,
            "s" => Precision::Second,
            _ => return None,
        })
    }

    /// The value to send as `precision=` to a 1.x node.
    pub fn as_v1_param(&self) -> &'static str {
        match self {
            Precision::Nanosecond => "n",
            Precision::Microsecond => "u",
            Precision::Millisecond => "ms",
            Precision::Second => "s",
            Precision::Minute => "m",
            Precision::Hour => "h",
        }
    }

    /// The value to send as `precision=` to a 2.x node. 2.x cannot express
    /// minutes or hours; callers converting a 1.x `m`/`h` request for a 2.x
    /// node must rewrite timestamps first, so those map to `s` only as the
    /// least-wrong fallback (documented, not silently relied upon).
    pub fn as_v2_param(&self) -> &'static str {
        match self {
            Precision::Nanosecond => "ns",
            Precision::Microsecond => "us",
            Precision::Millisecond => "ms",
            Precision::Second | Precision::Minute | Precision::Hour => "s",
        }
    }

    /// Nanoseconds per unit of this precision.
    pub fn nanos_per_unit(&self) -> i64 {
        match self {
            Precision::Nanosecond => 1,
            Precision::Microsecond => 1_000,
            Precision::Millisecond => 1_000_000,
            Precision::Second => 1_000_000_000,
            Precision::Minute => 60_000_000_000,
            Precision::Hour => 3_600_000_000_000,
        }
    }

    /// Converts a Unix time in nanoseconds to a count of this precision's
    /// units, truncating like InfluxDB's `SetPrecision` (`time.Truncate`, i.e.
    /// towards the start of the unit, also for pre-1970 times).
    pub fn from_unix_nanos(&self, now_ns: i64) -> i64 {
        now_ns.div_euclid(self.nanos_per_unit())
    }

    /// The request's receive time in this precision, taken from the system
    /// clock. Call once per request (InfluxDB does the same), so every
    /// untimestamped line of one batch gets the same stamp.
    pub fn now(&self) -> i64 {
        let ns = match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX - 1),
            // A clock before 1970 is a broken host; stamp the epoch rather than fail writes.
            Err(_) => 0,
        };
        self.from_unix_nanos(ns)
    }
}
