//! Where data goes. Sources name destinations in many shapes (`https://host/path`,
//! `mailto:a@b.com`, `s3://bucket/key`, `bucket.s3.amazonaws.com`, a bare host); this
//! reduces them to what an allow-list compares (a host, a mail domain, a bucket) and to a
//! class a reviewer understands at a glance.
//!
//! The team's lists are config keys ([`declare`] adds them to `info()` with their
//! defaults); [`Destinations`] is their typed form, parsed once per detector instance with
//! `cx.settings::<Destinations>()`.

use plumbline_contract::config::{ConfigSource, FromConfig};
use plumbline_contract::{glob, AnalyzeError, Info};

/// Personal mailbox providers: an export there leaves the company's control.
pub const PERSONAL_MAIL: &str = "gmail.com,googlemail.com,outlook.com,hotmail.com,live.com,msn.com,yahoo.com,ymail.com,icloud.com,me.com,mac.com,aol.com,proton.me,protonmail.com,pm.me,gmx.com,gmx.de,gmx.net,web.de,mail.com,mail.ru,yandex.ru,yandex.com,tutanota.com,tuta.io,fastmail.com,hey.com";

/// Consumer file-sharing and storage hosts.
pub const CONSUMER_DRIVES: &str = "drive.google.com,docs.google.com,drive.usercontent.google.com,dropbox.com,dropboxusercontent.com,db.tt,onedrive.live.com,1drv.ms,sharepoint-df.com,mega.nz,mega.io,wetransfer.com,we.tl,mediafire.com,pcloud.com,sendspace.com,file.io,transfer.sh,gofile.io,filebin.net,icloud.com,box.net,anonfiles.com,catbox.moe";

/// Request catchers, tunnels and paste sites: built to receive data from anywhere.
pub const CATCHERS: &str = "webhook.site,requestbin.com,requestbin.net,pipedream.net,pipedream.com,beeceptor.com,hookbin.com,requestcatcher.com,postb.in,ptsv2.com,ptsv3.com,mockbin.org,ngrok.io,ngrok.app,ngrok-free.app,ngrok-free.dev,trycloudflare.com,loca.lt,localtunnel.me,serveo.net,localhost.run,interact.sh,oast.fun,oast.me,oast.pro,oast.site,burpcollaborator.net,pastebin.com,paste.ee,hastebin.com,ghostbin.com,dpaste.org,0x0.st,termbin.com";

/// Declares `known_domains`, `known_buckets` and the three destination class lists.
pub fn declare(info: Info) -> Info {
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

/// What kind of place a destination is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DestinationClass {
    /// On the team's allow-list (`known_domains`, `known_buckets`).
    Known,
    /// A host or mail domain on no list: new to us, not known to be bad.
    Unknown,
    /// A storage bucket not on `known_buckets`.
    UnknownBucket,
    /// A bare IP address: nobody allow-lists those by accident.
    IpAddress,
    /// A personal mailbox provider.
    PersonalMail,
    /// A consumer file-sharing or storage service.
    ConsumerDrive,
    /// A request catcher, tunnel or paste site.
    Catcher,
}

impl DestinationClass {
    /// A place built for, or typical of, taking data out: personal mail, consumer drives,
    /// catchers and bare IPs.
    pub fn is_personal_or_anonymous(self) -> bool {
        matches!(
            self,
            DestinationClass::PersonalMail
                | DestinationClass::ConsumerDrive
                | DestinationClass::Catcher
                | DestinationClass::IpAddress
        )
    }

    pub fn describe(self) -> &'static str {
        match self {
            DestinationClass::Known => "an allow-listed destination",
            DestinationClass::Unknown => "a destination on no allow-list",
            DestinationClass::UnknownBucket => "a bucket on no allow-list",
            DestinationClass::IpAddress => "a bare IP address",
            DestinationClass::PersonalMail => "a personal mailbox",
            DestinationClass::ConsumerDrive => "a consumer file-sharing service",
            DestinationClass::Catcher => "a request catcher / tunnel / paste site",
        }
    }
}

/// A destination reduced to the part allow-lists compare.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Place {
    /// A mail address's domain.
    Mail(String),
    /// A storage bucket name.
    Bucket(String),
    /// A host name or IP.
    Host(String),
}

impl Place {
    pub fn parse(raw: &str) -> Option<Place> {
        let s = raw.trim().to_ascii_lowercase();
        let s = s.trim_start_matches('=');
        if s.is_empty() {
            return None;
        }
        if let Some(rest) = s.strip_prefix("arn:aws:s3:::") {
            return bucket(rest.split('/').next()?);
        }
        for scheme in ["s3://", "s3a://", "gs://", "az://", "abfs://", "wasbs://"] {
            if let Some(rest) = s.strip_prefix(scheme) {
                return bucket(rest.split(['/', '@']).next()?);
            }
        }
        let s = s.strip_prefix("mailto:").unwrap_or(s);
        let (has_scheme, rest) = match s.split_once("://") {
            Some((_, r)) => (true, r),
            None => (false, s),
        };
        let authority = rest.split(['/', '?', '#']).next()?;
        if !has_scheme && authority.contains('@') {
            let domain = authority.rsplit('@').next()?;
            return (!domain.is_empty()).then(|| Place::Mail(domain.to_string()));
        }
        let host_port = authority.rsplit('@').next()?;
        let host = if let Some(v6) = host_port.strip_prefix('[') {
            v6.split(']').next()?
        } else {
            host_port.split(':').next()?
        };
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-_:".contains(c))
        {
            return None;
        }
        // Virtual-hosted and path-style S3 addresses name the bucket.
        if let Some(b) = host.strip_suffix(".amazonaws.com") {
            if let Some((name, rest)) = b.split_once(".s3") {
                if rest.is_empty() || rest.starts_with('.') || rest.starts_with('-') {
                    return bucket(name);
                }
            }
            if b == "s3" || b.starts_with("s3.") || b.starts_with("s3-") {
                if let Some(name) = rest.split('/').nth(1) {
                    return bucket(name);
                }
            }
        }
        if host == "storage.googleapis.com" {
            if let Some(name) = rest.split('/').nth(1) {
                return bucket(name);
            }
        }
        Some(Place::Host(host.trim_end_matches('.').to_string()))
    }

    /// The name shown in titles.
    pub fn name(&self) -> &str {
        match self {
            Place::Mail(d) | Place::Bucket(d) | Place::Host(d) => d,
        }
    }
}

fn bucket(name: &str) -> Option<Place> {
    (!name.is_empty()).then(|| Place::Bucket(name.to_string()))
}

/// True if `host` is `domain` or one of its subdomains.
pub fn domain_matches(domain: &str, host: &str) -> bool {
    let d = domain
        .trim()
        .trim_start_matches("*.")
        .trim_start_matches('.');
    !d.is_empty()
        && (host.eq_ignore_ascii_case(d)
            || (host.len() > d.len()
                && host.as_bytes()[host.len() - d.len() - 1] == b'.'
                && host[host.len() - d.len()..].eq_ignore_ascii_case(d)))
}

/// The mail domain of an actor id that is a work address (`dana@acme.example` →
/// `acme.example`): not a personal provider, not a role session or path.
fn work_domain<'a>(actor_id: &'a str, personal: &[String]) -> Option<&'a str> {
    let (local, domain) = actor_id.rsplit_once('@')?;
    let plain = !local.is_empty()
        && domain.contains('.')
        && !actor_id.contains(['/', ':', ' '])
        && !Destinations::listed(personal, domain);
    plain.then_some(domain)
}

fn is_ip(host: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_ok()
}

/// The team's destination lists (see [`destinations`]).
#[derive(Debug, Clone, Default)]
pub struct Destinations {
    pub known_domains: Vec<String>,
    pub known_buckets: Vec<String>,
    pub personal_mail: Vec<String>,
    pub consumer_drives: Vec<String>,
    pub catchers: Vec<String>,
}

impl Destinations {
    /// The lists from the config keys [`declare`] adds (an undeclared key is an empty list).
    pub fn from_config(cfg: &dyn ConfigSource) -> Destinations {
        Destinations {
            known_domains: cfg.list("known_domains"),
            // Bucket names are lower case by nature and `Place::parse` lower-cases them.
            known_buckets: cfg
                .list("known_buckets")
                .into_iter()
                .map(|b| b.to_ascii_lowercase())
                .collect(),
            personal_mail: cfg.list("personal_mail_domains"),
            consumer_drives: cfg.list("consumer_drive_domains"),
            catchers: cfg.list("catcher_domains"),
        }
    }

    fn listed(list: &[String], host: &str) -> bool {
        list.iter().any(|d| domain_matches(d, host))
    }

    pub fn classify_place(&self, place: &Place) -> DestinationClass {
        match place {
            Place::Bucket(b) => {
                // An allow-list: exact case (bucket names are lower-cased by `Place::parse`).
                if self.known_buckets.iter().any(|p| glob::matches(p, b)) {
                    DestinationClass::Known
                } else {
                    DestinationClass::UnknownBucket
                }
            }
            Place::Mail(d) => {
                if Self::listed(&self.known_domains, d) {
                    DestinationClass::Known
                } else if Self::listed(&self.personal_mail, d) {
                    DestinationClass::PersonalMail
                } else {
                    DestinationClass::Unknown
                }
            }
            Place::Host(h) => {
                if Self::listed(&self.known_domains, h) {
                    DestinationClass::Known
                } else if is_ip(h) {
                    DestinationClass::IpAddress
                } else if Self::listed(&self.catchers, h) {
                    DestinationClass::Catcher
                } else if Self::listed(&self.consumer_drives, h) {
                    DestinationClass::ConsumerDrive
                } else if Self::listed(&self.personal_mail, h) {
                    DestinationClass::PersonalMail
                } else {
                    DestinationClass::Unknown
                }
            }
        }
    }

    /// The place and class of a raw destination; `None` when it names no place
    /// (an expression, a bare path).
    pub fn classify(&self, raw: &str) -> Option<(Place, DestinationClass)> {
        let place = Place::parse(raw)?;
        let class = self.classify_place(&place);
        Some((place, class))
    }

    /// As [`classify`](Self::classify), for data sent by `actor_id`: a host or mail domain
    /// under the actor's own work mail domain (`dana@acme.example` → `files.acme.example`)
    /// is the organisation's own, so a team that has not listed its domains yet is not
    /// told that its own systems are new. Personal mail providers never count.
    pub fn classify_from(&self, raw: &str, actor_id: &str) -> Option<(Place, DestinationClass)> {
        let (place, class) = self.classify(raw)?;
        let own = work_domain(actor_id, &self.personal_mail).is_some_and(|d| match &place {
            Place::Host(h) | Place::Mail(h) => domain_matches(d, h),
            Place::Bucket(_) => false,
        });
        Some((place, if own { DestinationClass::Known } else { class }))
    }
}

impl FromConfig for Destinations {
    fn from_config(cfg: &dyn ConfigSource) -> Result<Self, AnalyzeError> {
        Ok(Destinations::from_config(cfg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lists() -> Destinations {
        let split = |s: &str| s.split(',').map(String::from).collect::<Vec<_>>();
        Destinations {
            known_domains: split("acme.com,vendor-crm.io"),
            known_buckets: split("acme-backups-*"),
            personal_mail: split(PERSONAL_MAIL),
            consumer_drives: split(CONSUMER_DRIVES),
            catchers: split(CATCHERS),
        }
    }

    #[test]
    fn the_actors_own_work_domain_is_known() {
        let l = lists();
        let class = |raw: &str, actor: &str| l.classify_from(raw, actor).map(|(_, c)| c);
        let known = Some(DestinationClass::Known);
        assert_eq!(
            class("https://files.beta.example/u", "dana@beta.example"),
            known
        );
        assert_eq!(class("ops@beta.example", "dana@beta.example"), known);
        let unknown = Some(DestinationClass::Unknown);
        assert_eq!(
            class("https://beta.example.evil.net/u", "dana@beta.example"),
            unknown
        );
        assert_eq!(
            class(
                "https://files.beta.example/u",
                "arn:aws:iam::1:user/dana@beta.example"
            ),
            unknown
        );
        assert_eq!(class("https://files.beta.example/u", "svc-export"), unknown);
        // A personal address says nothing about whose the destination is.
        assert_eq!(
            class("https://drive.gmail.com/x", "mallory@gmail.com"),
            Some(DestinationClass::PersonalMail)
        );
    }

    #[test]
    fn places_from_every_shape() {
        let p = |s: &str| Place::parse(s);
        assert_eq!(
            p("https://User@API.Vendor-CRM.io:443/x"),
            Some(Place::Host("api.vendor-crm.io".into()))
        );
        assert_eq!(
            p("mailto:me@Gmail.com"),
            Some(Place::Mail("gmail.com".into()))
        );
        assert_eq!(p("me@gmail.com"), Some(Place::Mail("gmail.com".into())));
        assert_eq!(
            p("s3://exfil-bucket/dump.csv"),
            Some(Place::Bucket("exfil-bucket".into()))
        );
        assert_eq!(
            p("arn:aws:s3:::data-lake/x"),
            Some(Place::Bucket("data-lake".into()))
        );
        assert_eq!(
            p("https://drop.s3.us-east-1.amazonaws.com/k"),
            Some(Place::Bucket("drop".into()))
        );
        assert_eq!(
            p("https://s3.amazonaws.com/drop/k"),
            Some(Place::Bucket("drop".into()))
        );
        assert_eq!(
            p("webhook.site/abc"),
            Some(Place::Host("webhook.site".into()))
        );
        assert_eq!(p("http://[::1]:8080/"), Some(Place::Host("::1".into())));
        assert_eq!(p("={{ $json.url }}"), None);
        assert_eq!(p(""), None);
    }

    #[test]
    fn classes_with_allow_list_first() {
        let d = lists();
        let c = |s: &str| d.classify(s).map(|(_, c)| c);
        assert_eq!(
            c("https://eu.vendor-crm.io/upload"),
            Some(DestinationClass::Known)
        );
        assert_eq!(
            c("https://notvendor-crm.io/upload"),
            Some(DestinationClass::Unknown)
        );
        assert_eq!(c("me@gmail.com"), Some(DestinationClass::PersonalMail));
        assert_eq!(
            c("https://www.dropbox.com/s/x"),
            Some(DestinationClass::ConsumerDrive)
        );
        assert_eq!(
            c("https://webhook.site/123"),
            Some(DestinationClass::Catcher)
        );
        assert_eq!(
            c("https://abc.ngrok-free.app/in"),
            Some(DestinationClass::Catcher)
        );
        assert_eq!(
            c("http://203.0.113.9/in"),
            Some(DestinationClass::IpAddress)
        );
        assert_eq!(c("s3://acme-backups-2024/x"), Some(DestinationClass::Known));
        assert_eq!(
            c("s3://random-drop/x"),
            Some(DestinationClass::UnknownBucket)
        );
        assert!(domain_matches("acme.com", "ACME.com"));
        assert!(!domain_matches("acme.com", "notacme.com"));
    }
}
