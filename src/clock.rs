//! Time as people in Vietnam read it (+07:00 all year, no daylight saving).

/// Vietnam's UTC offset (+07:00, all year).
pub fn vietnam_offset() -> chrono::FixedOffset {
    use chrono::Offset;
    chrono::FixedOffset::east_opt(7 * 3600).unwrap_or_else(|| chrono::Utc.fix())
}

/// A time as shown to people: Vietnam time, to the minute.
pub fn local_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&vietnam_offset())
        .format("%Y-%m-%d %H:%M")
        .to_string()
}
