//! The config keys the kit reads, declared with their defaults. A detector adds the
//! groups it uses to its `info()`, so every built-in detector is tuned with the same
//! names (`service_accounts`, `change_windows`, …). The destination keys
//! (`known_domains`, …) are the SDK's: `plumbline_sdk::destination::declare`.

use plumbline_contract::Info;

/// Declares `service_accounts` and `change_windows`.
pub fn planned_work(info: Info) -> Info {
    info.config(
        "service_accounts",
        "",
        "Actor ids (comma-separated, `*` wildcards) that run planned work such as migrations",
    )
    .config(
        "change_windows",
        "",
        "Declared change windows (comma-separated): `2024-06-01T22:00:00Z/2024-06-02T04:00:00Z` or weekly `sat 22:00-04:00`, `mon-fri 01:00-02:00` (local time)",
    )
}

/// Declares the working-hours keys (also used by weekly change windows).
pub fn working_hours(info: Info) -> Info {
    info.config("work_start_hour", "8", "Start of working hours, local")
        .config(
            "work_end_hour",
            "19",
            "End of working hours, local (exclusive)",
        )
        .config(
            "utc_offset_hours",
            "0",
            "Local time offset from UTC for working hours and weekly windows",
        )
}

/// Declares `ignore_environments`.
pub fn environments(info: Info, default: &str) -> Info {
    info.config(
        "ignore_environments",
        default,
        "Environments whose events never rise above informational (comma-separated: prod, staging, test, unknown)",
    )
}
