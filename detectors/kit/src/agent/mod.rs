//! AI coding agents' sessions (Claude Code, Codex, Cursor): one implementation of each rule
//! the `coding-agent` pack shares — which tool events are one call, which paths hold
//! secrets, which shell commands send data out and to which host, which download and run
//! code, which change files (CI configuration, tests, agent settings), which push.
//!
//! The vocabulary (docs/actions.md): actions `agent.tool.shell` (`tool.command`),
//! `agent.tool.file.read` / `agent.tool.file.write` (`file.path`, `file.content`,
//! `file.old`), `agent.tool.web.fetch` (`url`, destination = host), `agent.tool.mcp`
//! (`mcp.server`, `mcp.tool`), …; on tool events `tool.call_id`, `tool.phase`
//! (`requested` by a pre-tool hook, then `completed`), `tool.success`, `tool.output`.
//! The same call may arrive twice, requested then completed: [`calls`] folds them into
//! one [`Call`], so a rule counts it once and still judges a call that is only pending.
//!
//! Host classes (the company's own, allow-listed) are the SDK's `Destinations`; the kit
//! only says which host a call reaches.

pub mod memo;
pub mod shell;

use std::collections::BTreeMap;

use plumbline_contract::config::{ConfigSource, FromConfig};
use plumbline_contract::{glob, AnalyzeError, Event, Info, Trajectory};

pub use memo::{cite, for_title, forget_over, remember, History, Memo, Remembered, Step, BUDGET};
use shell::{basename, Simple};

pub const SHELL: &str = "agent.tool.shell";
pub const FILE_READ: &str = "agent.tool.file.read";
pub const FILE_WRITE: &str = "agent.tool.file.write";
pub const WEB_FETCH: &str = "agent.tool.web.fetch";
pub const MCP: &str = "agent.tool.mcp";

/// One tool call: its `requested` and `completed` events (either may be missing).
#[derive(Debug, Clone)]
pub struct Call<'a> {
    /// In time order; every one is evidence for the call.
    pub events: Vec<&'a Event>,
}

impl<'a> Call<'a> {
    /// The first event (the request when there was a pre-tool hook).
    pub fn first(&self) -> &'a Event {
        self.events[0]
    }

    pub fn action(&self) -> &'a str {
        &self.first().action
    }

    pub fn is(&self, pattern: &str) -> bool {
        self.first().is(pattern)
    }

    pub fn time(&self) -> i64 {
        self.first().time
    }

    /// A text attribute from the latest event that has it.
    pub fn attr_str(&self, key: &str) -> Option<&'a str> {
        self.events
            .iter()
            .rev()
            .find_map(|e| e.attr_str(key).filter(|v| !v.is_empty()))
    }

    /// Only the pre-tool hook has been seen: the call has not run (yet).
    pub fn pending(&self) -> bool {
        self.events
            .iter()
            .all(|e| e.attr_str("tool.phase") == Some("requested"))
    }

    /// `tool.success` of the completed call, if reported.
    pub fn success(&self) -> Option<bool> {
        self.events
            .iter()
            .rev()
            .find_map(|e| e.attr_bool("tool.success"))
    }

    /// The shell command line (`agent.tool.shell`).
    pub fn command(&self) -> Option<&'a str> {
        self.is(SHELL)
            .then(|| self.attr_str("tool.command"))
            .flatten()
    }

    /// The file a file tool read or wrote (`file.path`, else the resource).
    pub fn path(&self) -> Option<&'a str> {
        self.attr_str("file.path").or_else(|| {
            let r = self.first().resource.as_str();
            (!r.is_empty()).then_some(r)
        })
    }

    /// The tool's response text (fetched content, command output), when sent.
    pub fn output(&self) -> Option<&'a str> {
        self.attr_str("tool.output")
    }

    /// The session's human (`agent.user`).
    pub fn user(&self) -> &'a str {
        self.attr_str("agent.user").unwrap_or("")
    }

    /// Whose agent acted, for titles: `dana@acme.com's agent`, else the actor id.
    pub fn who(&self) -> String {
        match self.user() {
            "" => self.first().actor.id.clone(),
            u => format!("{u}'s agent"),
        }
    }

    /// The agent session (`agent.session`), for next steps.
    pub fn session(&self) -> &'a str {
        self.attr_str("agent.session").unwrap_or("?")
    }

    /// The simple commands of a shell call, substitutions and `sh -c` strings included.
    pub fn simples(&self) -> Vec<Simple> {
        self.command().map(shell::simples).unwrap_or_default()
    }
}

/// The tool calls of a session in order, each call's `requested` and `completed` events
/// folded by `tool.call_id` (an event without one is a call of its own).
/// `agent.tool.decision` events are answers about calls, not calls.
pub fn calls(t: &Trajectory) -> Vec<Call<'_>> {
    let mut by_id: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut out: Vec<Call> = Vec::new();
    for e in t.with_action("agent.tool.*") {
        if e.is("agent.tool.decision") {
            continue;
        }
        let id = e.attr_str("tool.call_id").filter(|id| !id.is_empty());
        let session = e.attr_str("agent.session").unwrap_or("");
        match id.and_then(|id| by_id.get(&(session, id))) {
            Some(&i) => out[i].events.push(e),
            None => {
                if let Some(id) = id {
                    by_id.insert((session, id), out.len());
                }
                out.push(Call { events: vec![e] });
            }
        }
    }
    out
}

/// Every event of the calls, for a finding's evidence.
pub fn evidence<'a>(calls: &[&Call<'a>]) -> Vec<&'a Event> {
    let mut out: Vec<&Event> = calls
        .iter()
        .flat_map(|c| c.events.iter().copied())
        .collect();
    out.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
    out.dedup_by(|a, b| a.id == b.id);
    out
}

/// A command or value shortened for a title (`…` when cut).
pub fn short(text: &str, max: usize) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut out: String = one_line.trim().chars().take(max).collect();
    if one_line.trim().chars().count() > max {
        out.push('…');
    }
    out
}

// ---------------------------------------------------------------------------------------
// Paths

/// A path as written: quotes and `@`/`<` prefixes off, `\` as `/`, `~`/`$HOME` kept.
pub fn clean_path(raw: &str) -> String {
    let p = raw.trim().trim_matches(['"', '\'']);
    let p = p.rsplit_once("=@").map(|(_, f)| f).unwrap_or(p);
    let p = p.trim_start_matches(['@', '<']);
    p.replace('\\', "/").trim_end_matches('/').to_string()
}

/// True if `path` matches one of the `patterns` (comma-separated in config): a pattern
/// without `/` is matched against the file name, one with `/` against the path's last
/// segments (`.aws/credentials`, `.github/workflows/*`; `**` spans segments). Case is
/// ignored: agents run on case-insensitive file systems too.
pub fn path_matches_any(path: &str, patterns: &[String]) -> bool {
    let path = clean_path(path).to_ascii_lowercase();
    let path = path.trim_start_matches("./");
    if path.is_empty() {
        return false;
    }
    let segments: Vec<&str> = path.split('/').collect();
    patterns.iter().any(|p| {
        let p = p.to_ascii_lowercase();
        if !p.contains('/') {
            return glob::matches(&p, segments[segments.len() - 1]);
        }
        if p.starts_with("**/") || p.starts_with('/') {
            return glob::path_matches(p.trim_start_matches('/'), path)
                || glob::path_matches(&p, &format!("/{path}"));
        }
        // The pattern's segments anchored anywhere in the path (`.github/workflows/*`
        // covers `/home/dev/app/.github/workflows/ci.yml`).
        (0..segments.len()).any(|i| glob::path_matches(&p, &segments[i..].join("/")))
    })
}

/// Files that hold secrets or credentials (`secret_paths`).
pub const SECRET_PATHS: &str = ".env,.env.*,*.env,.envrc,.ssh/*,id_rsa*,id_dsa*,id_ecdsa*,id_ed25519*,*.pem,*.key,*.p12,*.pfx,.aws/credentials,.npmrc,.yarnrc.yml,.netrc,_netrc,.pypirc,.git-credentials,.kube/config,kubeconfig,*.kubeconfig,.config/gcloud/*credentials*,.config/gcloud/*.db,.config/gh/hosts.yml,.docker/config.json,.vault-token,credentials.json,service-account*.json,terraform.tfvars,*.tfstate,secrets.y*ml";
/// Look-alikes of secret files that hold none (`secret_path_exceptions`).
pub const SECRET_EXCEPTIONS: &str = ".env.example,.env.sample,.env.template,.env.dist,.env.defaults,*.example.env,*.pub,.ssh/known_hosts*,.ssh/config,.ssh/authorized_keys,*.pem.example";

/// Which paths hold secrets: the `secret_paths` and `secret_path_exceptions` keys.
#[derive(Debug, Clone)]
pub struct SecretPaths {
    pub patterns: Vec<String>,
    pub exceptions: Vec<String>,
}

impl SecretPaths {
    /// Declares `secret_paths` and `secret_path_exceptions`.
    pub fn declare(info: Info) -> Info {
        info.config(
            "secret_paths",
            SECRET_PATHS,
            "Files holding secrets or credentials (comma-separated; a name, or trailing path segments such as `.aws/credentials`; `*` wildcards)",
        )
        .config(
            "secret_path_exceptions",
            SECRET_EXCEPTIONS,
            "Look-alikes that hold no secret (`.env.example`, public keys)",
        )
    }

    pub fn is_secret(&self, path: &str) -> bool {
        path_matches_any(path, &self.patterns) && !path_matches_any(path, &self.exceptions)
    }

    /// The secret files a call reads: a file-read tool's path, or the secret paths a shell
    /// command reads (`cat`, `grep`, `base64`, `cp`, `source`, an upload's `@file`, a
    /// `< file` redirect).
    pub fn read_by(&self, call: &Call) -> Vec<String> {
        if call.is(FILE_READ) {
            return call
                .path()
                .filter(|p| self.is_secret(p))
                .map(|p| vec![p.to_string()])
                .unwrap_or_default();
        }
        let mut out = Vec::new();
        for s in call.simples() {
            let reads =
                READERS.contains(&s.program().as_str()) || NETWORK.contains(&s.program().as_str());
            let redirected = s
                .redirects
                .iter()
                .filter(|(op, _)| op == "<")
                .map(|(_, t)| t.as_str());
            // A copy's or move's target is written, not read (`cp .env.example .env`).
            let ops = s.operands().count();
            let target = matches!(s.program().as_str(), "cp" | "mv") && ops > 1;
            let mut seen = 0;
            let words = s.args().iter().map(String::as_str).filter(|a| {
                seen += usize::from(!a.starts_with('-'));
                reads && !(target && !a.starts_with('-') && seen == ops)
            });
            for w in words.chain(redirected) {
                // `scp`/`rsync` remote paths (`host:path`) are not local reads.
                if w.contains(':') && !w.contains("://") && NETWORK.contains(&s.program().as_str())
                {
                    continue;
                }
                let p = clean_path(w);
                if self.is_secret(&p) && !out.contains(&p) {
                    out.push(p);
                }
            }
        }
        out
    }
}

impl FromConfig for SecretPaths {
    fn from_config(cfg: &dyn ConfigSource) -> Result<Self, AnalyzeError> {
        Ok(SecretPaths {
            patterns: cfg.list("secret_paths"),
            exceptions: cfg.list("secret_path_exceptions"),
        })
    }
}

/// Programs that read the files they are given.
const READERS: [&str; 32] = [
    "cat",
    "less",
    "more",
    "head",
    "tail",
    "grep",
    "egrep",
    "rg",
    "ag",
    "base64",
    "xxd",
    "od",
    "hexdump",
    "strings",
    "cp",
    "mv",
    "tar",
    "zip",
    "gzip",
    "7z",
    "openssl",
    "gpg",
    "awk",
    "sed",
    "jq",
    "yq",
    "source",
    ".",
    "type",
    "get-content",
    "gc",
    "bat",
];

/// CI configuration, build hooks and code owners (`ci_paths`).
pub const CI_PATHS: &str = ".github/workflows/*,.github/actions/**,.gitlab-ci.yml,.gitlab/ci/**,Jenkinsfile,.circleci/*,azure-pipelines.yml,.azure-pipelines/*,.buildkite/*,bitbucket-pipelines.yml,.travis.yml,.drone.yml,.git/hooks/*,.husky/*,.pre-commit-config.yaml,lefthook.yml,CODEOWNERS,.github/CODEOWNERS,docs/CODEOWNERS";

/// Declares `ci_paths`.
pub fn declare_ci_paths(info: Info) -> Info {
    info.config(
        "ci_paths",
        CI_PATHS,
        "CI configuration, git hooks and code-owner files (comma-separated; a name or trailing path segments, `*`/`**` wildcards)",
    )
}

// ---------------------------------------------------------------------------------------
// Hosts

/// The host of a URL (`https://user@Host:443/p` → `host`), or of a scheme-less
/// `host.tld/path` as curl accepts it; `None` for anything else.
pub fn url_host(raw: &str) -> Option<String> {
    let s = raw.trim().trim_matches(['"', '\'', '(', ')', ',']);
    let (scheme, rest) = match s.split_once("://") {
        Some((scheme, rest)) => (Some(scheme.to_ascii_lowercase()), rest),
        None => (None, s),
    };
    if let Some(sc) = &scheme {
        if !matches!(
            sc.as_str(),
            "http" | "https" | "ftp" | "ftps" | "ws" | "wss" | "sftp"
        ) {
            return None;
        }
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?;
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => host_port.split(':').next()?,
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let hostlike = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_:".contains(c));
    if !hostlike {
        return None;
    }
    if scheme.is_none() {
        // Without a scheme only `name.tld/…` counts: a file such as `install.sh` does not.
        let tld = host.rsplit('.').next().unwrap_or("");
        let ok = rest.contains('/')
            && host.contains('.')
            && tld.len() >= 2
            && tld.chars().all(|c| c.is_ascii_alphabetic())
            && !rest.starts_with('.');
        if !ok {
            return None;
        }
    }
    Some(host)
}

/// Loopback, private and link-local addresses and `localhost`: reaching them is not
/// sending anything out of the machine or the network.
pub fn is_local_host(host: &str) -> bool {
    let h = host.to_ascii_lowercase();
    if h == "localhost" || h.ends_with(".localhost") || h.ends_with(".local") {
        return true;
    }
    match h.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => {
            v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified()
        }
        Ok(std::net::IpAddr::V6(v6)) => v6.is_loopback() || v6.is_unspecified(),
        Err(_) => false,
    }
}

/// Programs that reach the network.
const NETWORK: [&str; 18] = [
    "curl",
    "wget",
    "nc",
    "ncat",
    "netcat",
    "socat",
    "scp",
    "rsync",
    "ssh",
    "sftp",
    "ftp",
    "http",
    "https",
    "xh",
    "iwr",
    "irm",
    "invoke-webrequest",
    "invoke-restmethod",
];

/// One network egress of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Egress {
    pub host: String,
    /// The call sends a payload (a file, a body, piped data), not only a request.
    pub carries: bool,
    /// What reached it: the simple command, the URL or the MCP server.
    pub what: String,
}

/// Where a call sends data or requests, hosts that are local left out: a web fetch
/// (destination or `url`), a remote MCP server, or a shell command (curl, wget, nc, scp,
/// rsync, ssh, `gh gist create`, PowerShell's web cmdlets).
pub fn egress(call: &Call) -> Vec<Egress> {
    let mut out = Vec::new();
    if call.is(WEB_FETCH) || call.is(MCP) {
        let url = call.attr_str("url").unwrap_or("");
        let host = call
            .first()
            .destination
            .as_deref()
            .and_then(|d| url_host(d).or_else(|| Some(d.to_ascii_lowercase())))
            .filter(|d| !d.is_empty())
            .or_else(|| url_host(url));
        if let Some(host) = host {
            out.push(Egress {
                carries: call.is(WEB_FETCH) && carries_in_url(url),
                what: if url.is_empty() {
                    host.clone()
                } else {
                    url.to_string()
                },
                host,
            });
        }
    } else if call.is(SHELL) {
        let simples = call.simples();
        for (i, s) in simples.iter().enumerate() {
            let fed = i > 0 && simples[i - 1].piped;
            out.extend(shell_egress(s, fed));
        }
    }
    out.retain(|e| !is_local_host(&e.host));
    out
}

/// A long encoded value in a URL's query (`?d=c2tfbGl2ZV8…`): data carried by a GET.
fn carries_in_url(url: &str) -> bool {
    let Some((_, query)) = url.split_once('?') else {
        return false;
    };
    query.split('&').any(|pair| {
        let v = pair.split_once('=').map_or(pair, |(_, v)| v);
        v.len() >= 32
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+/=_%-".contains(c))
    })
}

fn shell_egress(s: &Simple, fed: bool) -> Vec<Egress> {
    let prog = s.program();
    let what = s.text();
    let mut out = Vec::new();
    let mut push = |host: String, carries: bool| {
        out.push(Egress {
            host,
            carries,
            what: what.clone(),
        })
    };
    let hosts_in_args = || -> Vec<String> {
        let mut hs: Vec<String> = Vec::new();
        for a in s.args() {
            if let Some(h) = url_host(a) {
                if !hs.contains(&h) {
                    hs.push(h);
                }
            }
        }
        hs
    };
    match prog.as_str() {
        "curl" | "http" | "https" | "xh" => {
            let body = s.has_flag(&[
                "-d",
                "--data",
                "--data-binary",
                "--data-raw",
                "--data-urlencode",
                "-F",
                "--form",
                "-T",
                "--upload-file",
                "--json",
            ]) || s
                .args()
                .iter()
                .any(|a| a.starts_with('@') || a.contains("=@"));
            let carries = body || fed || s.args().iter().any(|a| a.contains("$("));
            for h in hosts_in_args() {
                push(h, carries);
            }
        }
        "wget" => {
            let carries = s.has_flag(&["--post-file", "--post-data", "--body-file", "--body-data"])
                || fed
                || s.args().iter().any(|a| a.contains("$("));
            for h in hosts_in_args() {
                push(h, carries);
            }
        }
        "iwr" | "irm" | "invoke-webrequest" | "invoke-restmethod" => {
            let lower: Vec<String> = s.args().iter().map(|a| a.to_ascii_lowercase()).collect();
            let carries = fed || lower.iter().any(|a| a == "-body" || a == "-infile");
            for h in hosts_in_args() {
                push(h, carries);
            }
        }
        "nc" | "ncat" | "netcat" | "socat" => {
            let listening = s.has_flag(&["-l", "--listen"]);
            let host = s
                .operands()
                .find(|a| !a.chars().all(|c| c.is_ascii_digit()))
                .map(|h| {
                    h.trim_start_matches("tcp:")
                        .split(':')
                        .next()
                        .unwrap_or(h)
                        .to_ascii_lowercase()
                });
            let redirected = s.redirects.iter().any(|(op, _)| op == "<");
            if let (false, Some(h)) = (listening, host) {
                push(h, fed || redirected);
            }
        }
        "scp" | "rsync" | "sftp" => {
            // `user@host:path`: the last operand remote means files go out.
            let ops: Vec<&str> = s.operands().collect();
            for (i, a) in ops.iter().enumerate() {
                if let Some((left, _)) = a.split_once(':').filter(|_| !a.contains("://")) {
                    let host = left.rsplit('@').next().unwrap_or(left).to_ascii_lowercase();
                    if !host.is_empty() && !host.contains('/') {
                        push(host, i == ops.len() - 1 && ops.len() > 1);
                    }
                } else if let Some(h) = url_host(a) {
                    push(h, i == ops.len() - 1 && ops.len() > 1);
                }
            }
        }
        "ssh" => {
            if let Some(dest) = s.operands().next() {
                let host = dest.rsplit('@').next().unwrap_or(dest).to_ascii_lowercase();
                push(host, fed);
            }
        }
        "gh" => {
            let a: Vec<&str> = s.args().iter().map(String::as_str).collect();
            if a.starts_with(&["gist", "create"]) {
                push("gist.github.com".into(), true);
            }
        }
        _ => {}
    }
    out
}

// ---------------------------------------------------------------------------------------
// Downloads and execution

/// Programs that fetch a URL.
const DOWNLOADERS: [&str; 8] = [
    "curl",
    "wget",
    "iwr",
    "irm",
    "invoke-webrequest",
    "invoke-restmethod",
    "fetch",
    "aria2c",
];
/// Programs that run the code they are given.
const INTERPRETERS: [&str; 20] = [
    "sh",
    "bash",
    "zsh",
    "dash",
    "ksh",
    "fish",
    "python",
    "python3",
    "python2",
    "perl",
    "ruby",
    "node",
    "php",
    "iex",
    "invoke-expression",
    "pwsh",
    "powershell",
    "eval",
    "source",
    ".",
];

/// Code downloaded and run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadExec {
    pub url: String,
    pub host: String,
    /// How: `piped to sh`, `run from a substitution`, `saved to x.sh and run`.
    pub how: String,
}

/// The URL a downloader simple command fetches, if any.
fn fetched_url(s: &Simple) -> Option<(String, String)> {
    let prog = s.program();
    let is_downloader = DOWNLOADERS.contains(&prog.as_str())
        || s.words
            .iter()
            .any(|w| w.to_ascii_lowercase().contains("downloadstring"));
    if !is_downloader {
        return None;
    }
    s.words.iter().find_map(|a| {
        let a = a.trim_matches(['\'', '"']);
        url_host(a).map(|h| (a.to_string(), h))
    })
}

/// A file a downloader saved (`curl -o f`, `curl -O url`, `wget url`, `wget -O f`,
/// `iwr -OutFile f`), with the URL.
fn saved_file(s: &Simple) -> Option<(String, String, String)> {
    let (url, host) = fetched_url(s)?;
    let prog = s.program();
    let file = match prog.as_str() {
        "curl" => s
            .option(&["-o", "--output"])
            .map(String::from)
            .or_else(|| s.has_flag(&["-O", "--remote-name"]).then(|| url_file(&url))),
        "wget" => match s.option(&["-O", "--output-document"]) {
            Some("-") => None,
            Some(f) => Some(f.to_string()),
            None if s.piped => None,
            None => Some(url_file(&url)),
        },
        _ => {
            let lower: Vec<String> = s.words.iter().map(|w| w.to_ascii_lowercase()).collect();
            lower
                .iter()
                .position(|w| w == "-outfile")
                .and_then(|i| s.words.get(i + 1).cloned())
        }
    }?;
    (!file.is_empty() && file != "-" && file != "/dev/null").then_some((basename(&file), url, host))
}

fn url_file(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    basename(path)
}

/// The files `s` runs, by name (a basename): `./x.sh`, `/tmp/x`, `bash x.sh`.
fn files_run(s: &Simple) -> Vec<String> {
    let Some(w) = s.program_word() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if w.contains('/') {
        out.push(basename(w));
    }
    if INTERPRETERS.contains(&s.program().as_str()) {
        out.extend(s.operands().next().map(basename));
    }
    out
}

/// Whether `s` runs the file named `file` (a basename).
fn runs_file(s: &Simple, file: &str) -> bool {
    files_run(s).iter().any(|f| f == file)
}

/// Download-and-execute in one command line: a downloader piped into an interpreter
/// (`curl … | sh`, `iwr … | iex`), an interpreter running a substitution that downloads
/// (`bash <(curl …)`, `sh -c "$(curl …)"`, `python -c "$(curl …)"`, `iex (iwr …)`), or a
/// download saved to a file that the same line then runs. [`downloads`] and
/// [`runs_download`] find the last shape across calls.
pub fn download_exec(command: &str) -> Vec<DownloadExec> {
    let mut out = Vec::new();
    let mut found = |url: String, host: String, how: String| {
        if !out.iter().any(|d: &DownloadExec| d.url == url) {
            out.push(DownloadExec { url, host, how });
        }
    };
    let all = shell::simples(command);
    for pipeline in shell::parse(command) {
        for (i, s) in pipeline.iter().enumerate() {
            if let Some((url, host)) = fetched_url(s) {
                let runner = pipeline[i + 1..]
                    .iter()
                    .map(Simple::program)
                    .find(|p| INTERPRETERS.contains(&p.as_str()));
                if let (true, Some(p)) = (s.piped, runner) {
                    found(url, host, format!("piped to {p}"));
                }
            }
        }
    }
    for s in &all {
        let prog = s.program();
        if !INTERPRETERS.contains(&prog.as_str()) {
            continue;
        }
        // The code comes from a substitution (`$(curl …)`, `<(curl …)`) or, in PowerShell,
        // from a download in the same expression (`iex (iwr …)`).
        for inner in &s.inner {
            for d in shell::simples(inner) {
                if let Some((url, host)) = fetched_url(&d) {
                    found(url, host, format!("run by {prog} from a substitution"));
                }
            }
        }
        if matches!(prog.as_str(), "iex" | "invoke-expression") {
            let mut rest = s.clone();
            rest.words.remove(0);
            if let Some((url, host)) = fetched_url(&rest) {
                found(url, host, format!("run by {prog}"));
            }
        }
    }
    for (i, s) in all.iter().enumerate() {
        if let Some((file, url, host)) = saved_file(s) {
            if all[i + 1..].iter().any(|r| runs_file(r, &file)) {
                found(url, host, format!("saved to {file} and run"));
            }
        }
    }
    out
}

/// Files a command line downloads: (file name, URL, host).
pub fn downloads(command: &str) -> Vec<(String, String, String)> {
    shell::simples(command)
        .iter()
        .filter_map(saved_file)
        .collect()
}

/// True if the command line runs a file of that name (`./x.sh`, `bash x.sh`).
pub fn runs_download(command: &str, file: &str) -> bool {
    shell::simples(command).iter().any(|s| runs_file(s, file))
}

/// The names of the files a command line runs (`./x.sh`, `/tmp/x`, `bash x.sh`), each
/// once: a file is in it exactly when [`runs_download`] says the line runs it.
pub fn files_run_by(command: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in shell::simples(command).iter().flat_map(files_run) {
        if !out.contains(&f) {
            out.push(f);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// File changes

/// A file created, changed or deleted by a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    pub path: String,
    pub deleted: bool,
    /// The new text, when known (`file.content`, a here-document, `echo … >`).
    pub content: Option<String>,
    /// The text replaced (`file.old`), when known.
    pub old: Option<String>,
    /// How: `write`, the shell line's program (`sed -i`, `rm`, `tee`, `>`).
    pub how: String,
}

/// The files a call changes: a write tool's file, or what a shell line writes through
/// `>`/`>>`, `tee`, `sed -i`/`perl -pi`, `cp`/`mv`/`install` targets, or deletes with
/// `rm`, `git rm`, `unlink` and `mv` sources.
pub fn file_changes(call: &Call) -> Vec<FileChange> {
    if call.is(FILE_WRITE) {
        return call
            .path()
            .map(|p| FileChange {
                path: clean_path(p),
                deleted: false,
                content: call.attr_str("file.content").map(String::from),
                old: call.attr_str("file.old").map(String::from),
                how: "write".into(),
            })
            .into_iter()
            .collect();
    }
    let mut out = Vec::new();
    for s in call.simples() {
        let heredoc = s
            .redirects
            .iter()
            .find(|(op, _)| op == "<<")
            .map(|(_, b)| b.clone());
        let echoed = matches!(s.program().as_str(), "echo" | "printf")
            .then(|| s.operands().collect::<Vec<_>>().join(" "));
        let body = heredoc.or(echoed);
        let mut change = |path: &str, deleted: bool, content: Option<String>, how: &str| {
            let path = clean_path(path);
            if !path.is_empty() && !path.starts_with("/dev/") {
                out.push(FileChange {
                    path,
                    deleted,
                    content,
                    old: None,
                    how: how.to_string(),
                });
            }
        };
        for (op, target) in &s.redirects {
            if op == ">" || op == ">>" {
                change(target, false, body.clone(), op);
            }
        }
        let prog = s.program();
        let ops: Vec<&str> = s.operands().collect();
        match prog.as_str() {
            "tee" => ops
                .iter()
                .for_each(|p| change(p, false, body.clone(), "tee")),
            "sed" | "perl"
                if s.args()
                    .iter()
                    .any(|a| a.starts_with("-i") || a.starts_with("-pi")) =>
            {
                // The script is the first operand (unless given with -e); files follow.
                let skip = usize::from(!s.has_flag(&["-e"]));
                let script = if skip == 1 {
                    ops.first().map(|x| x.to_string())
                } else {
                    s.option(&["-e"]).map(String::from)
                };
                ops.iter()
                    .skip(skip)
                    .for_each(|p| change(p, false, script.clone(), &format!("{prog} -i")));
            }
            "cp" | "install" | "ln" if ops.len() >= 2 => {
                change(ops[ops.len() - 1], false, None, &prog);
            }
            "mv" if ops.len() >= 2 => {
                ops[..ops.len() - 1]
                    .iter()
                    .for_each(|p| change(p, true, None, "mv"));
                change(ops[ops.len() - 1], false, None, "mv");
            }
            "rm" | "unlink" | "shred" => ops.iter().for_each(|p| change(p, true, None, &prog)),
            "git" if ops.first() == Some(&"rm") => {
                ops[1..]
                    .iter()
                    .for_each(|p| change(p, true, None, "git rm"));
            }
            "truncate" => ops
                .iter()
                .for_each(|p| change(p, false, Some(String::new()), "truncate")),
            _ => {}
        }
    }
    out
}

/// Lines of `new` that are not in `old` (as a multiset), trimmed, blank lines left out.
pub fn added_lines<'a>(old: &str, new: &'a str) -> Vec<&'a str> {
    let mut pool: BTreeMap<&str, usize> = BTreeMap::new();
    for l in old.lines().map(str::trim) {
        *pool.entry(l).or_default() += 1;
    }
    new.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter(|l| match pool.get_mut(l) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Git

/// A `git push` in a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitPush {
    /// `--force`, `-f`, `--force-with-lease`, `--force-if-includes` or a `+refspec`.
    pub force: bool,
    pub no_verify: bool,
    /// Branches named by the refspecs (`HEAD:main` → `main`); empty = the current branch.
    pub branches: Vec<String>,
    pub text: String,
}

/// The `git push`es of a command line.
pub fn git_pushes(command: &str) -> Vec<GitPush> {
    shell::simples(command)
        .iter()
        .filter(|s| s.program() == "git")
        .filter_map(|s| {
            let args = git_args(s);
            if args.first().map(String::as_str) != Some("push") {
                return None;
            }
            let ops: Vec<&str> = args[1..]
                .iter()
                .map(String::as_str)
                .filter(|a| !a.starts_with('-'))
                .collect();
            let refspecs = ops.get(1..).unwrap_or(&[]);
            let force = args.iter().any(|a| {
                a == "-f"
                    || a == "--force"
                    || a.starts_with("--force-with-lease")
                    || a == "--force-if-includes"
                    || (a.starts_with('-') && !a.starts_with("--") && a.contains('f'))
            }) || refspecs.iter().any(|r| r.starts_with('+'));
            let branches = refspecs
                .iter()
                .map(|r| {
                    let r = r.trim_start_matches('+');
                    let dst = r.rsplit(':').next().unwrap_or(r);
                    dst.trim_start_matches("refs/heads/").to_string()
                })
                .filter(|b| !b.is_empty() && b != "HEAD")
                .collect();
            Some(GitPush {
                force,
                no_verify: args.iter().any(|a| a == "--no-verify" || a == "-n"),
                branches,
                text: s.text(),
            })
        })
        .collect()
}

/// A git command's arguments after global options (`git -C dir -c k=v push …` → `push …`).
pub fn git_args(s: &Simple) -> Vec<String> {
    let args = s.args();
    let mut i = 0;
    while let Some(a) = args.get(i) {
        match a.as_str() {
            "-C" | "-c" | "--git-dir" | "--work-tree" | "--namespace" => i += 2,
            a if a.starts_with('-') => i += 1,
            _ => break,
        }
    }
    args[i.min(args.len())..].to_vec()
}

/// The branch a command line switches to (`git checkout -b x`, `git switch main`).
pub fn switched_branch(command: &str) -> Option<String> {
    shell::simples(command)
        .iter()
        .filter(|s| s.program() == "git")
        .filter_map(|s| {
            let args = git_args(s);
            let verb = args.first()?.as_str();
            if verb != "checkout" && verb != "switch" {
                return None;
            }
            let ops: Vec<&String> = args[1..].iter().filter(|a| !a.starts_with('-')).collect();
            // `git checkout -- file` restores files: not a switch.
            if args.iter().any(|a| a == "--")
                || ops.len() > 1
                    && verb == "checkout"
                    && !args.iter().any(|a| a == "-b" || a == "-B")
            {
                return None;
            }
            ops.first().map(|b| b.to_string())
        })
        .next_back()
}

// ---------------------------------------------------------------------------------------
// Sensitive actions

/// What a sensitive call does, for titles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sensitive {
    SecretRead(String),
    Egress(Egress),
    DownloadExec(DownloadExec),
    Push(GitPush),
    CiWrite(String),
}

impl Sensitive {
    pub fn describe(&self) -> String {
        match self {
            Sensitive::SecretRead(p) => format!("read {p}"),
            Sensitive::Egress(e) => format!(
                "{} {}",
                if e.carries { "sent data to" } else { "reached" },
                e.host
            ),
            Sensitive::DownloadExec(d) => format!("ran code from {} ({})", d.host, d.how),
            Sensitive::Push(p) => format!("pushed (`{}`)", short(&p.text, 60)),
            Sensitive::CiWrite(p) => format!("changed {p}"),
        }
    }
}

/// Declares the keys [`sensitive`] reads: `secret_paths`, `secret_path_exceptions` and
/// `ci_paths` (the destination keys are the SDK's: `destination::declare`).
pub fn declare_sensitive(info: Info) -> Info {
    declare_ci_paths(SecretPaths::declare(info))
}

/// What makes a call sensitive after safety was lowered or instructions were injected: a
/// secret read, egress to a host `outside` says is not the company's, code downloaded from
/// such a host and run, a `git push`, a change to CI configuration.
pub fn sensitive(
    call: &Call,
    secrets: &SecretPaths,
    ci_paths: &[String],
    outside: &dyn Fn(&str) -> bool,
) -> Vec<Sensitive> {
    let mut out: Vec<Sensitive> = secrets
        .read_by(call)
        .into_iter()
        .map(Sensitive::SecretRead)
        .collect();
    if let Some(cmd) = call.command() {
        out.extend(
            download_exec(cmd)
                .into_iter()
                .filter(|d| outside(&d.host))
                .map(Sensitive::DownloadExec),
        );
        out.extend(git_pushes(cmd).into_iter().map(Sensitive::Push));
    }
    out.extend(
        egress(call)
            .into_iter()
            .filter(|e| outside(&e.host))
            .map(Sensitive::Egress),
    );
    out.extend(
        file_changes(call)
            .into_iter()
            .filter(|c| path_matches_any(&c.path, ci_paths))
            .map(|c| Sensitive::CiWrite(c.path)),
    );
    out
}

#[cfg(test)]
mod tests;
