//! The config keys the kit reads, declared with their defaults. A detector adds the
//! groups it uses to its `info()`, so every built-in detector is tuned with the same
//! names (`known_domains`, `service_accounts`, `change_windows`, …).

use plumbline_sdk::Info;

/// Personal mailbox providers: an export there leaves the company's control.
pub const PERSONAL_MAIL: &str = "gmail.com,googlemail.com,outlook.com,hotmail.com,live.com,msn.com,yahoo.com,ymail.com,icloud.com,me.com,mac.com,aol.com,proton.me,protonmail.com,pm.me,gmx.com,gmx.de,gmx.net,web.de,mail.com,mail.ru,yandex.ru,yandex.com,tutanota.com,tuta.io,fastmail.com,hey.com";

/// Consumer file-sharing and storage hosts.
pub const CONSUMER_DRIVES: &str = "drive.google.com,docs.google.com,drive.usercontent.google.com,dropbox.com,dropboxusercontent.com,db.tt,onedrive.live.com,1drv.ms,sharepoint-df.com,mega.nz,mega.io,wetransfer.com,we.tl,mediafire.com,pcloud.com,sendspace.com,file.io,transfer.sh,gofile.io,filebin.net,icloud.com,box.net,anonfiles.com,catbox.moe";

/// Request catchers, tunnels and paste sites: built to receive data from anywhere.
pub const CATCHERS: &str = "webhook.site,requestbin.com,requestbin.net,pipedream.net,pipedream.com,beeceptor.com,hookbin.com,requestcatcher.com,postb.in,ptsv2.com,ptsv3.com,mockbin.org,ngrok.io,ngrok.app,ngrok-free.app,ngrok-free.dev,trycloudflare.com,loca.lt,localtunnel.me,serveo.net,localhost.run,interact.sh,oast.fun,oast.me,oast.pro,oast.site,burpcollaborator.net,pastebin.com,paste.ee,hastebin.com,ghostbin.com,dpaste.org,0x0.st,termbin.com";

/// Declares `known_domains`, `known_buckets` and the three destination class lists.
pub fn destinations(info: Info) -> Info {
    info.config(
        "known_domains",
        "",
        "Allow-listed destination domains (comma-separated; a domain covers its subdomains): your own and your vendors'",
    )
    .config(
        "known_buckets",
        "",
        "Allow-listed storage buckets (comma-separated names, `*` wildcards)",
    )
    .config(
        "personal_mail_domains",
        PERSONAL_MAIL,
        "Personal mailbox providers",
    )
    .config(
        "consumer_drive_domains",
        CONSUMER_DRIVES,
        "Consumer file-sharing and storage hosts",
    )
    .config(
        "catcher_domains",
        CATCHERS,
        "Request catchers, tunnels and paste sites",
    )
}

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
