//! AWS CloudTrail: `POST /v1/ingest/cloudtrail`.
//!
//! Accepts a CloudTrail log file (`{"Records": [...]}`, as delivered to S3), a bare array
//! of records, one record, or EventBridge's "AWS API Call via CloudTrail" envelope
//! (the record under `detail`). Ids are `cloudtrail:<eventID>`, so overlapping log files
//! and EventBridge copies of the same call are stored once.
//!
//! Which accounts are "ours" comes from `[cloudtrail] org_accounts` (plus the account the
//! record was delivered to); sharing a snapshot or a bucket with any other account, or
//! with everyone, is `snapshot.shared` / `s3.bucket.policy.shared` with the external
//! accounts as `destination`.

use std::collections::{BTreeMap, BTreeSet};

use http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::adapter::{Adapter, Delivery, IngestError, Mapped, Memory, SourceAuth};
use super::map::{
    actor, at, event, items, json_body, keep_payload, parse_time, s, segment, set, strings, u,
    PAYLOAD_BUDGET,
};
use plumbline_event::{Actor, ActorType, Environment, Event, Source, Volume};

const SRC: Source = Source::Cloudtrail;

/// The prefix the record's own fields are kept under (docs/packs.md, "Sigma rules").
pub const RAW: &str = "raw";

/// `[cloudtrail]`: which AWS accounts are the company's own, and their environments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudtrailConfig {
    pub org_accounts: Vec<String>,
    pub account_environments: BTreeMap<String, String>,
}

/// CloudTrail log files, records and EventBridge envelopes.
pub struct CloudtrailAdapter {
    config: CloudtrailConfig,
}

impl CloudtrailAdapter {
    pub fn new(config: CloudtrailConfig) -> Self {
        CloudtrailAdapter { config }
    }
}

impl Adapter for CloudtrailAdapter {
    fn source(&self) -> Source {
        SRC
    }

    /// CloudTrail forwarders have no secret of their own: the API-token rules apply.
    fn verify(&self, _headers: &HeaderMap, _body: &[u8]) -> SourceAuth {
        SourceAuth::NotConfigured
    }

    fn map(&self, d: &Delivery<'_>, _memory: &dyn Memory) -> Result<Mapped, IngestError> {
        let payload = json_body(d.body)?;
        if payload.is_object()
            && at(&payload, "Records").is_none()
            && at(&payload, "eventID").is_none()
            && at(&payload, "detail.eventID").is_none()
        {
            return Err(IngestError::malformed(
                "Records",
                "expected a CloudTrail log file ({\"Records\": [...]}), an array of records, or one record",
            ));
        }
        if !payload.is_object() && !payload.is_array() {
            return Err(IngestError::malformed(
                "(body)",
                "a CloudTrail log file is a JSON object",
            ));
        }
        let mut out = Mapped::default();
        for (i, record) in items(&payload, &["Records"]).into_iter().enumerate() {
            let record = at(record, "detail")
                .filter(|d| d.get("eventID").is_some())
                .unwrap_or(record);
            map_record(record, i, &self.config, &mut out);
        }
        Ok(out)
    }
}

/// Who made the call. IAM Identity Center (SSO) roles, IAM users, root and federated
/// users are people; other assumed roles and AWS services are services.
fn identity(r: &Value) -> Actor {
    let kind = s(r, "userIdentity.type");
    let arn = s(r, "userIdentity.arn");
    let issuer = s(r, "userIdentity.sessionContext.sessionIssuer.userName");
    let (id, display, ty) = match kind.as_str() {
        "Root" => (arn.clone(), "root".to_string(), ActorType::Human),
        "IAMUser" => {
            let name = s(r, "userIdentity.userName");
            (
                if arn.is_empty() {
                    name.clone()
                } else {
                    arn.clone()
                },
                name,
                ActorType::Human,
            )
        }
        "AssumedRole" => {
            let session = arn.rsplit('/').next().unwrap_or("").to_string();
            let human = issuer.starts_with("AWSReservedSSO_") || session.contains('@');
            let ty = if human {
                ActorType::Human
            } else if super::map::is_ai_agent_login(&issuer)
                || super::map::is_ai_agent_login(&session)
            {
                ActorType::AiAgent
            } else {
                ActorType::Service
            };
            (arn.clone(), session, ty)
        }
        "FederatedUser" | "IdentityCenterUser" | "SAMLUser" | "WebIdentityUser" => {
            let name = match s(r, "userIdentity.userName") {
                n if n.is_empty() => s(r, "userIdentity.principalId"),
                n => n,
            };
            (
                if arn.is_empty() {
                    name.clone()
                } else {
                    arn.clone()
                },
                name,
                ActorType::Human,
            )
        }
        "AWSService" | "AWSAccount" => {
            let who = match s(r, "userIdentity.invokedBy") {
                x if x.is_empty() => s(r, "userIdentity.accountId"),
                x => x,
            };
            (who.clone(), who, ActorType::Service)
        }
        _ => {
            let who = if arn.is_empty() {
                s(r, "userIdentity.principalId")
            } else {
                arn.clone()
            };
            (who.clone(), who, ActorType::Service)
        }
    };
    actor(&id, ty, &display)
}

/// Account ids in an IAM principal (`"*"`, `"123456789012"`, an ARN, or lists of them,
/// under `AWS` or directly).
fn principal_accounts(p: &Value, out: &mut BTreeSet<String>) {
    match p {
        Value::String(x) if x == "*" => {
            out.insert("*".into());
        }
        Value::String(x) => {
            let acct = x.split(':').nth(4).unwrap_or(x);
            if acct.len() == 12 && acct.bytes().all(|b| b.is_ascii_digit()) {
                out.insert(acct.to_string());
            }
        }
        Value::Array(a) => a.iter().for_each(|x| principal_accounts(x, out)),
        Value::Object(m) => {
            if let Some(aws) = m.get("AWS") {
                principal_accounts(aws, out);
            }
        }
        _ => {}
    }
}

fn policy_statements(policy: &Value) -> Vec<Value> {
    // CloudTrail logs the policy as an object; some tools send it as a JSON string.
    let policy = match policy {
        Value::String(text) => serde_json::from_str(text).unwrap_or(Value::Null),
        other => other.clone(),
    };
    match at(&policy, "Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

/// Accounts (or `*`) a resource is shared with that are not the company's.
fn external(accounts: BTreeSet<String>, own: &str, config: &CloudtrailConfig) -> Vec<String> {
    accounts
        .into_iter()
        .filter(|a| a != own && !config.org_accounts.iter().any(|o| o == a))
        .collect()
}

fn map_record(r: &Value, index: usize, config: &CloudtrailConfig, out: &mut Mapped) {
    let event_id = s(r, "eventID");
    if event_id.is_empty() {
        out.reject(index, "eventID", "a CloudTrail record carries its eventID");
        return;
    }
    let Some(time) = at(r, "eventTime").and_then(parse_time) else {
        out.reject(index, "eventTime", "missing or not an ISO 8601 time");
        return;
    };
    let name = s(r, "eventName");
    if name.is_empty() {
        out.reject(index, "eventName", "a CloudTrail record names its API call");
        return;
    }
    let source = s(r, "eventSource");
    let service = source.split('.').next().unwrap_or("aws").to_string();
    let account = match s(r, "recipientAccountId") {
        a if a.is_empty() => s(r, "userIdentity.accountId"),
        a => a,
    };
    let error = s(r, "errorCode");
    let denied = error.contains("AccessDenied") || error.contains("Unauthorized");
    let rp = at(r, "requestParameters").cloned().unwrap_or(Value::Null);
    // The call by its own name: for calls the vocabulary does not name, and failed ones.
    let own_name = || format!("cloudtrail.{}.{}", segment(&service), segment(&name));
    let mut e = event(
        SRC,
        format!("cloudtrail:{event_id}"),
        time,
        identity(r),
        &format!("aws/{account}"),
        "cloudtrail.unknown",
    );
    e.environment = config
        .account_environments
        .get(&account)
        .map(|env| super::map::environment_named(env))
        .unwrap_or(Environment::Unknown);
    set(&mut e, "source_event", name.clone());
    set(&mut e, "event_source", source.clone());
    set(&mut e, "region", s(r, "awsRegion"));
    set(&mut e, "account", account.clone());
    set(&mut e, "ip", s(r, "sourceIPAddress"));
    set(&mut e, "user_agent", s(r, "userAgent"));
    set(&mut e, "event_type", s(r, "eventType"));
    set(&mut e, "event_category", s(r, "eventCategory"));
    set(
        &mut e,
        "read_only",
        at(r, "readOnly").cloned().unwrap_or(Value::Null),
    );
    set(&mut e, "request_id", s(r, "requestID"));
    set(&mut e, "vpc_endpoint", s(r, "vpcEndpointId"));
    set(&mut e, "identity.type", s(r, "userIdentity.type"));
    set(
        &mut e,
        "identity.access_key_id",
        s(r, "userIdentity.accessKeyId"),
    );
    set(
        &mut e,
        "identity.role",
        s(r, "userIdentity.sessionContext.sessionIssuer.userName"),
    );
    set(
        &mut e,
        "mfa",
        s(r, "userIdentity.sessionContext.attributes.mfaAuthenticated"),
    );
    set(
        &mut e,
        "outcome",
        if error.is_empty() {
            "success"
        } else {
            "failure"
        },
    );
    set(&mut e, "error.code", error.clone());
    set(&mut e, "error.message", s(r, "errorMessage"));
    let first_arn = at(r, "resources.0.ARN")
        .map(|_| s(r, "resources.0.ARN"))
        .unwrap_or_default();
    e.resource = first_arn;

    let action: String = match (service.as_str(), name.as_str()) {
        ("s3", "GetObject")
        | ("s3", "PutObject")
        | ("s3", "CopyObject")
        | ("s3", "DeleteObject") => {
            let bucket = s(&rp, "bucketName");
            let key = s(&rp, "key");
            e.resource = format!("s3://{bucket}/{key}");
            set(&mut e, "bucket", bucket);
            set(&mut e, "key", key);
            let bytes = match name.as_str() {
                "GetObject" => u(r, "additionalEventData.bytesTransferredOut"),
                "PutObject" => u(r, "additionalEventData.bytesTransferredIn"),
                _ => None,
            };
            if let Some(b) = bytes {
                e.volume = Some(Volume {
                    bytes: Some(b),
                    files: Some(1),
                    ..Volume::default()
                });
            } else if error.is_empty() {
                e.volume = Some(Volume {
                    files: Some(1),
                    ..Volume::default()
                });
            }
            if name == "GetObject" {
                // The object left S3 towards the caller.
                let to = match s(r, "vpcEndpointId") {
                    v if v.is_empty() => s(r, "sourceIPAddress"),
                    v => v,
                };
                if !to.is_empty() {
                    e.destination = Some(to);
                }
            }
            format!(
                "s3.object.{}",
                match name.as_str() {
                    "GetObject" => "get",
                    "PutObject" => "put",
                    "CopyObject" => "copy",
                    _ => "delete",
                }
            )
        }
        ("s3", "PutBucketPolicy") => {
            let bucket = s(&rp, "bucketName");
            e.resource = format!("s3://{bucket}");
            set(&mut e, "bucket", bucket);
            let mut accounts = BTreeSet::new();
            let mut public = false;
            for st in policy_statements(at(&rp, "bucketPolicy").unwrap_or(&Value::Null)) {
                if s(&st, "Effect") != "Allow" {
                    continue;
                }
                let mut found = BTreeSet::new();
                principal_accounts(at(&st, "Principal").unwrap_or(&Value::Null), &mut found);
                public |= found.contains("*") && at(&st, "Condition").is_none();
                accounts.extend(found);
            }
            let ext = external(accounts, &account, config);
            share(&mut e, &ext, public);
            if ext.is_empty() {
                "s3.bucket.policy.changed"
            } else {
                "s3.bucket.policy.shared"
            }
            .into()
        }
        ("s3", "DeleteBucketPolicy") => {
            e.resource = format!("s3://{}", s(&rp, "bucketName"));
            "s3.bucket.policy.deleted".into()
        }
        ("s3", "PutBucketAcl") => {
            e.resource = format!("s3://{}", s(&rp, "bucketName"));
            let text = rp.to_string();
            let public = text.contains("AllUsers") || text.contains("AuthenticatedUsers");
            set(&mut e, "public", public);
            if public {
                e.destination = Some("public".into());
                "s3.bucket.acl.shared".into()
            } else {
                "s3.bucket.acl.changed".into()
            }
        }
        ("s3", "PutBucketPublicAccessBlock") | ("s3", "DeleteBucketPublicAccessBlock") => {
            e.resource = format!("s3://{}", s(&rp, "bucketName"));
            if name.starts_with("Delete") {
                "s3.public_access_block.deleted".into()
            } else {
                "s3.public_access_block.changed".into()
            }
        }
        ("ec2", "ModifySnapshotAttribute") | ("ec2", "ModifyImageAttribute") => {
            let (res, perm) = if name == "ModifySnapshotAttribute" {
                (s(&rp, "snapshotId"), "createVolumePermission")
            } else {
                (s(&rp, "imageId"), "launchPermission")
            };
            e.resource = res;
            let mut accounts = BTreeSet::new();
            for item in at(&rp, &format!("{perm}.add.items"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let user = s(item, "userId");
                if !user.is_empty() {
                    accounts.insert(user);
                }
                if s(item, "group") == "all" {
                    accounts.insert("*".into());
                }
            }
            let public = accounts.contains("*");
            let ext = external(accounts, &account, config);
            share(&mut e, &ext, public);
            let what = if name == "ModifySnapshotAttribute" {
                "snapshot"
            } else {
                "image"
            };
            if ext.is_empty() {
                format!("{what}.permission.changed")
            } else {
                format!("{what}.shared")
            }
        }
        ("rds", "ModifyDBSnapshotAttribute") | ("rds", "ModifyDBClusterSnapshotAttribute") => {
            e.resource = match s(&rp, "dBSnapshotIdentifier") {
                x if x.is_empty() => s(&rp, "dBClusterSnapshotIdentifier"),
                x => x,
            };
            let mut accounts: BTreeSet<String> = strings(&rp, "valuesToAdd")
                .into_iter()
                .map(|a| if a == "all" { "*".to_string() } else { a })
                .collect();
            if s(&rp, "attributeName") != "restore" {
                accounts.clear();
            }
            let public = accounts.contains("*");
            let ext = external(accounts, &account, config);
            share(&mut e, &ext, public);
            if ext.is_empty() {
                "snapshot.permission.changed"
            } else {
                "snapshot.shared"
            }
            .into()
        }
        ("iam", "CreateAccessKey") => {
            e.resource = s(&rp, "userName");
            set(
                &mut e,
                "access_key_id",
                s(r, "responseElements.accessKey.accessKeyId"),
            );
            "api_key.created".into()
        }
        // The other half of a key rotation: without it a scheduled rotation looked like a
        // new key for another user. (The key id is a credential: the redaction pass keeps
        // only its keyed marker, as for CreateAccessKey.)
        ("iam", "DeleteAccessKey") => {
            e.resource = s(&rp, "userName");
            set(&mut e, "access_key_id", s(&rp, "accessKeyId"));
            "api_key.deleted".into()
        }
        ("iam", "UpdateAccessKey") if s(&rp, "status") == "Inactive" => {
            e.resource = s(&rp, "userName");
            set(&mut e, "access_key_id", s(&rp, "accessKeyId"));
            "api_key.revoked".into()
        }
        ("iam", "AttachUserPolicy")
        | ("iam", "AttachRolePolicy")
        | ("iam", "AttachGroupPolicy") => {
            let policy = s(&rp, "policyArn");
            e.resource = [s(&rp, "userName"), s(&rp, "roleName"), s(&rp, "groupName")]
                .into_iter()
                .find(|x| !x.is_empty())
                .unwrap_or_default();
            set(&mut e, "policy", policy.clone());
            let admin =
                policy.ends_with("/AdministratorAccess") || policy.ends_with("/IAMFullAccess");
            set(&mut e, "admin", admin);
            if admin {
                "admin.role.granted"
            } else {
                "iam.policy.attached"
            }
            .into()
        }
        ("iam", "PutUserPolicy") | ("iam", "PutRolePolicy") | ("iam", "PutGroupPolicy") => {
            e.resource = [s(&rp, "userName"), s(&rp, "roleName"), s(&rp, "groupName")]
                .into_iter()
                .find(|x| !x.is_empty())
                .unwrap_or_default();
            let doc = s(&rp, "policyDocument");
            let admin = doc.contains("\"*\"") && doc.contains("Allow");
            set(&mut e, "policy.name", s(&rp, "policyName"));
            set(&mut e, "admin", admin);
            if admin {
                "admin.role.granted"
            } else {
                "iam.policy.changed"
            }
            .into()
        }
        ("iam", "CreateUser") => {
            e.resource = s(&rp, "userName");
            "user.created".into()
        }
        ("iam", "AddUserToGroup") => {
            e.resource = s(&rp, "groupName");
            set(&mut e, "member", s(&rp, "userName"));
            "member.added".into()
        }
        ("signin", "ConsoleLogin") => {
            let ok = s(r, "responseElements.ConsoleLogin") == "Success";
            set(&mut e, "mfa_used", s(r, "additionalEventData.MFAUsed"));
            e.resource = "console".into();
            if ok {
                "auth.login"
            } else {
                "auth.login.failed"
            }
            .into()
        }
        ("secretsmanager", "GetSecretValue")
        | ("ssm", "GetParameter")
        | ("ssm", "GetParameters") => {
            e.resource = [
                s(&rp, "secretId"),
                s(&rp, "name"),
                strings(&rp, "names").join(","),
            ]
            .into_iter()
            .find(|x| !x.is_empty())
            .unwrap_or_default();
            if denied {
                "secret.permission_denied"
            } else {
                "secret.read"
            }
            .into()
        }
        ("rds", "StartExportTask") | ("dynamodb", "ExportTableToPointInTime") => {
            // A snapshot or table copied out to S3, in bulk.
            let bucket = match s(&rp, "s3BucketName") {
                b if b.is_empty() => s(&rp, "s3Bucket"),
                b => b,
            };
            e.resource = match s(&rp, "sourceArn") {
                x if x.is_empty() => s(&rp, "tableArn"),
                x => x,
            };
            if !bucket.is_empty() {
                e.destination = Some(format!("s3://{bucket}"));
            }
            set(&mut e, "export.bucket_owner", s(&rp, "s3BucketOwner"));
            "data.export".into()
        }
        ("cloudtrail", "StopLogging") | ("cloudtrail", "DeleteTrail") => {
            e.resource = s(&rp, "name");
            "audit.disabled".into()
        }
        _ => {
            // Keep what was asked for (bounded), so unknown calls are still searchable.
            if !rp.is_null() {
                keep_payload(&mut e, "request", &rp, 48);
            }
            own_name()
        }
    };
    // A call that failed changed nothing: it does not take the vocabulary of the change it
    // asked for (a key not created is no `api_key.created`, a refused share no share). It
    // keeps the call's own name, `outcome: failure` and `error.code`, so searches, rules on
    // the record and detectors of refused attempts still see it; a refused secret read is
    // the one failure the vocabulary names.
    e.action = if error.is_empty() || action == "secret.permission_denied" {
        action
    } else {
        own_name()
    };
    if e.resource.is_empty() {
        e.resource = format!("{service}:{name}");
    }
    // The record itself under `raw.` (its own field names: `raw.eventName`,
    // `raw.userIdentity.arn`, `raw.requestParameters.userName`, …), for rules written
    // against CloudTrail's format (Sigma). Bounded; ingest's redaction pass still runs over
    // every value, so a credential in the record is kept only as its marker.
    keep_payload(&mut e, RAW, r, PAYLOAD_BUDGET);
    push(out, index, e);
}

fn share(e: &mut Event, external: &[String], public: bool) {
    set(e, "public", public);
    set(e, "shared_with", external.join(","));
    set(e, "shared_with.count", external.len() as u64);
    if !external.is_empty() {
        e.destination = Some(if public {
            "public".to_string()
        } else {
            external.join(",")
        });
    }
}

fn push(out: &mut Mapped, index: usize, e: Event) {
    out.push(index, e);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn principals_yield_account_ids_and_public() {
        let mut out = BTreeSet::new();
        principal_accounts(
            &json!({"AWS": ["arn:aws:iam::999988887777:root", "444455556666"]}),
            &mut out,
        );
        principal_accounts(&json!("*"), &mut out);
        assert_eq!(
            out.into_iter().collect::<Vec<_>>(),
            vec!["*", "444455556666", "999988887777"]
        );
        let cfg = CloudtrailConfig {
            org_accounts: vec!["444455556666".into()],
            account_environments: Default::default(),
        };
        let ext = external(
            ["111122223333", "444455556666", "999988887777"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            "111122223333",
            &cfg,
        );
        assert_eq!(ext, vec!["999988887777"]);
    }
}
