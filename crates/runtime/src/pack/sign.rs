//! Ed25519 signatures over a pack's manifest bytes (which pin every other file by sha256),
//! team keys, and the host's trust store (`[packs] trusted_keys`).

use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::PackError;

/// A public key the host trusts, as configured under `[[packs.trusted_keys]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedKey {
    /// Whose key (a team); shown as who signed a pack.
    pub name: String,
    /// The ed25519 public key, 64 hex digits (`plumbline keygen` prints it).
    pub key: String,
}

/// `pack.sig`: who signed (their public key) and the signature over `pack.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackSignature {
    pub key: String,
    pub signature: String,
}

/// How a pack came to be trusted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trust {
    /// Part of this release: its components' hashes are pinned in the binary.
    Builtin,
    /// Signed by a key in the trust store.
    Signed { key_name: String, key: String },
    /// Unsigned or signed by an unknown key, accepted because `allow_unsigned = true`.
    Unverified { why: String },
}

/// A team's signing key (the 32-byte ed25519 seed).
pub struct PackKey(SigningKey);

impl PackKey {
    pub fn generate() -> Result<PackKey, PackError> {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed)
            .map_err(|e| PackError::Key(format!("no randomness from the OS: {e}")))?;
        Ok(PackKey(SigningKey::from_bytes(&seed)))
    }

    pub fn public_hex(&self) -> String {
        hex::encode(self.0.verifying_key().as_bytes())
    }

    pub fn secret_hex(&self) -> String {
        hex::encode(self.0.to_bytes())
    }

    /// Reads a secret key file written by `plumbline keygen` (64 hex digits).
    pub fn load(path: &Path) -> Result<PackKey, PackError> {
        let text = std::fs::read_to_string(path).map_err(|e| PackError::Io(path.into(), e))?;
        let seed: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                PackError::Key(format!(
                    "{} is not a secret key (64 hex digits)",
                    path.display()
                ))
            })?;
        Ok(PackKey(SigningKey::from_bytes(&seed)))
    }

    pub fn sign(&self, manifest: &[u8]) -> PackSignature {
        PackSignature {
            key: self.public_hex(),
            signature: hex::encode(self.0.sign(manifest).to_bytes()),
        }
    }
}

impl PackSignature {
    pub fn parse(bytes: &[u8]) -> Result<PackSignature, PackError> {
        std::str::from_utf8(bytes)
            .ok()
            .and_then(|t| toml::from_str(t).ok())
            .ok_or_else(|| PackError::Signature("pack.sig is not a signature file".into()))
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        toml::to_string(self).expect("serialises").into_bytes()
    }

    /// Checks the signature over `manifest` with the key it names (not yet whether that
    /// key is trusted).
    pub fn verify(&self, manifest: &[u8]) -> Result<(), PackError> {
        let key = parse_public(&self.key)?;
        let sig: [u8; 64] = hex::decode(&self.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| PackError::Signature("signature is not 128 hex digits".into()))?;
        key.verify(manifest, &Signature::from_bytes(&sig))
            .map_err(|_| {
                PackError::Signature(
                    "signature does not match pack.toml (the manifest or a file it pins was changed after signing)"
                        .into(),
                )
            })
    }
}

pub fn parse_public(hex_key: &str) -> Result<VerifyingKey, PackError> {
    let bytes: [u8; 32] = hex::decode(hex_key.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            PackError::Key(format!("`{hex_key}` is not a public key (64 hex digits)"))
        })?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|_| PackError::Key(format!("`{hex_key}` is not an ed25519 public key")))
}

/// Decides whether a pack's manifest + signature is trusted by `keys`. Unsigned or
/// untrusted packs pass only with `allow_unsigned`; a signature that does not verify never
/// passes (tampering is not an "unsigned" pack).
pub fn check(
    manifest: &[u8],
    signature: Option<&[u8]>,
    keys: &[TrustedKey],
    allow_unsigned: bool,
) -> Result<Trust, PackError> {
    let Some(sig) = signature else {
        return if allow_unsigned {
            Ok(Trust::Unverified {
                why: "unsigned".into(),
            })
        } else {
            Err(PackError::Untrusted(
                "the pack is unsigned (sign it with `plumbline pack sign`, or set [packs] allow_unsigned = true for development)".into(),
            ))
        };
    };
    let sig = PackSignature::parse(sig)?;
    sig.verify(manifest)?;
    let signer = parse_public(&sig.key)?;
    let trusted = keys
        .iter()
        .find(|k| parse_public(&k.key).is_ok_and(|k| k == signer));
    match trusted {
        Some(k) => Ok(Trust::Signed {
            key_name: k.name.clone(),
            key: sig.key,
        }),
        None if allow_unsigned => Ok(Trust::Unverified {
            why: format!("signed by an unknown key {}", sig.key),
        }),
        None => Err(PackError::Untrusted(format!(
            "signed by key {} which is not in [packs] trusted_keys",
            sig.key
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_wrong_key_tampered_and_unsigned() {
        let team = PackKey::generate().unwrap();
        let other = PackKey::generate().unwrap();
        let store = vec![TrustedKey {
            name: "secops".into(),
            key: team.public_hex(),
        }];
        let m = b"name = \"p\"";
        let sig = team.sign(m).to_bytes();
        assert!(matches!(
            check(m, Some(&sig), &store, false).unwrap(),
            Trust::Signed { key_name, .. } if key_name == "secops"
        ));
        let wrong = other.sign(m).to_bytes();
        let e = check(m, Some(&wrong), &store, false).unwrap_err();
        assert!(e.to_string().contains("not in [packs] trusted_keys"), "{e}");
        // allow_unsigned admits an unknown key but never a broken signature.
        assert!(check(m, Some(&wrong), &store, true).is_ok());
        let e = check(b"name = \"q\"", Some(&sig), &store, true).unwrap_err();
        assert!(e.to_string().contains("does not match"), "{e}");
        assert!(check(m, None, &store, false)
            .unwrap_err()
            .to_string()
            .contains("unsigned"));
    }

    #[test]
    fn keys_round_trip_through_files() {
        let dir = tempfile::tempdir().unwrap();
        let k = PackKey::generate().unwrap();
        let p = dir.path().join("team.key");
        std::fs::write(&p, k.secret_hex()).unwrap();
        assert_eq!(PackKey::load(&p).unwrap().public_hex(), k.public_hex());
    }
}
