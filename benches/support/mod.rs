//! The input shared by the scanner benchmark (`benches/lineproto.rs`) and
//! its instruction-count harness (`examples/scan_count.rs`), so both
//! measure the same lines.

/// ~1 MiB of Telegraf-style cpu lines, every one timestamped; and how
/// many lines that is.
pub fn telegraf_batch() -> (String, u64) {
    let mut s = String::new();
    let mut i = 0u64;
    while s.len() < 1 << 20 {
        s.push_str(&format!(
            "cpu,host=server{:02},region=us-west,cpu=cpu{} usage_user=0.5,usage_system=0.25,\
             usage_idle=99.1,usage_iowait=0i {}\n",
            i % 50,
            i % 8,
            1_700_000_000_000_000_000u64 + i
        ));
        i += 1;
    }
    (s, i)
}
