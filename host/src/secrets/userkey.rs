//! User secrets sealed from everyone but the user: per-user data keys in per-token key slots.
//!
//! Each user has a random 256-bit data key. User-scope values are encrypted under it
//! (AES-256-GCM, bound to the user and the secret's name) before they reach any backend, so the
//! embedded store and Vault alike hold only `ewsealed:v1:<key id>:<base64>` for them. The data key
//! itself is never stored: it is kept once per token that may open it, encrypted under a key
//! derived from that token (HKDF-SHA256), as LUKS keeps a volume key in key slots. The store
//! holds tokens only as SHA-256 hashes, from which the slot key cannot be derived.
//!
//! A slot is made only from a data key the minting token already opens (a user minting a token
//! with a token of theirs that holds a slot), or with a fresh data key (the first admin token at
//! bootstrap, and an enrollment code redeemed). A token an admin issues for someone else gets no
//! slot, and an enrollment redeemed for a user who already has a key makes a new key: neither
//! can open what the user already stored. See `docs/user-secrets.md` for the threat model.

use super::SecretValue;
pub use crate::store::KeySlot;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

/// The id of one-off wrap keys.
const WRAP_KEY_ID: &str = "wrap";

/// Sealed user-scope values start with this.
pub const SEALED_PREFIX: &str = "ewsealed:v1:";

/// A user's data key. Never printed, wiped on drop.
pub struct UserKey {
    id: String,
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for UserKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Why a user-scope value could not be opened. Never carries key material or a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The value was sealed under another data key of the user's.
    #[error(
        "this user secret was sealed under another data key of the user's ({0}); a token \
         minted from that key can read it, or set the secret again"
    )]
    OtherKey(String),
    /// The value is not sealed (written before user secrets were sealed) or is damaged.
    #[error(
        "this user secret is not sealed with a user data key (written before sealing, or \
         changed outside Edgeward); set it again"
    )]
    NotSealed,
}

fn slot_cipher(token: &str, user: &str) -> Aes256Gcm {
    let hk = hkdf::Hkdf::<Sha256>::new(Some(b"edgeward-user-key-slot-v1"), token.as_bytes());
    let mut kek = Zeroizing::new([0u8; 32]);
    // 32 bytes is always a valid HKDF-SHA256 output length.
    let _ = hk.expand(user.as_bytes(), kek.as_mut());
    Aes256Gcm::new((&*kek).into())
}

fn slot_aad(user: &str, token_id: &str, key_id: &str) -> String {
    format!("edgeward:key-slot:v1:{user}:{token_id}:{key_id}")
}

fn value_aad(user: &str, name: &str, key_id: &str) -> String {
    format!("edgeward:user-secret:v1:{user}:{name}:{key_id}")
}

impl UserKey {
    /// A fresh random data key.
    pub fn generate() -> UserKey {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(key.as_mut());
        let mut id = [0u8; 8];
        rand::rng().fill_bytes(&mut id);
        UserKey {
            id: format!("key_{}", hex::encode(id)),
            key,
        }
    }

    /// A one-off key for a single wrapped user secret: the backend keeps only what it seals,
    /// and the key travels in the wrapping token the user hands over.
    pub fn for_wrap() -> UserKey {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(key.as_mut());
        UserKey {
            id: WRAP_KEY_ID.into(),
            key,
        }
    }

    /// The key of [`UserKey::for_wrap`] as hex, for the wrapping token.
    pub fn wrap_key_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.key.as_ref()))
    }

    /// A wrap key back from its hex.
    pub fn from_wrap_key_hex(text: &str) -> Option<UserKey> {
        let mut key = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text, key.as_mut()).ok()?;
        Some(UserKey {
            id: WRAP_KEY_ID.into(),
            key,
        })
    }

    /// The key's public id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The slot that lets `token` (of `user`, with id `token_id`) open this key.
    pub fn slot_for(&self, user: &str, token_id: &str, token: &str) -> KeySlot {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let wrapped = slot_cipher(token, user)
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &self.key[..],
                    aad: slot_aad(user, token_id, &self.id).as_bytes(),
                },
            )
            .unwrap_or_default();
        KeySlot {
            key_id: self.id.clone(),
            nonce: nonce.to_vec(),
            wrapped,
        }
    }

    /// Opens `slot` with `token`; `None` if it does not open (another token, or damaged).
    pub fn open_slot(user: &str, token_id: &str, token: &str, slot: &KeySlot) -> Option<UserKey> {
        if slot.nonce.len() != 12 {
            return None;
        }
        let plain = Zeroizing::new(
            slot_cipher(token, user)
                .decrypt(
                    Nonce::from_slice(&slot.nonce),
                    Payload {
                        msg: &slot.wrapped,
                        aad: slot_aad(user, token_id, &slot.key_id).as_bytes(),
                    },
                )
                .ok()?,
        );
        let mut key = Zeroizing::new([0u8; 32]);
        if plain.len() != 32 {
            return None;
        }
        key.copy_from_slice(&plain);
        Some(UserKey {
            id: slot.key_id.clone(),
            key,
        })
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new((&*self.key).into())
    }

    /// `value` sealed for `user`'s secret `name`: the text a backend stores.
    pub fn seal(&self, user: &str, name: &str, value: &SecretValue) -> SecretValue {
        let plain = super::tagged(value);
        let blob = self.encrypt(&value_aad(user, name, &self.id), &plain);
        SecretValue::text(format!(
            "{SEALED_PREFIX}{}:{}",
            self.id,
            base64::engine::general_purpose::STANDARD.encode(blob)
        ))
    }

    /// A random nonce, then `msg` encrypted under this key with `aad`.
    fn encrypt(&self, aad: &str, msg: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg,
                    aad: aad.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ciphertext);
        blob
    }

    /// What [`UserKey::encrypt`] made with `aad`, opened; `None` if it does not open.
    fn decrypt(&self, aad: &str, blob: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if blob.len() < 12 {
            return None;
        }
        let (nonce, ciphertext) = blob.split_at(12);
        self.cipher()
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: aad.as_bytes(),
                },
            )
            .ok()
            .map(Zeroizing::new)
    }

    /// Opens a value [`UserKey::seal`] made.
    pub fn open(
        &self,
        user: &str,
        name: &str,
        stored: &SecretValue,
    ) -> Result<SecretValue, SealError> {
        let (key_id, blob) = parse_sealed(stored).ok_or(SealError::NotSealed)?;
        if key_id != self.id {
            return Err(SealError::OtherKey(key_id.to_string()));
        }
        let blob = base64::engine::general_purpose::STANDARD
            .decode(blob)
            .map_err(|_| SealError::NotSealed)?;
        let plain = self
            .decrypt(&value_aad(user, name, &self.id), &blob)
            .ok_or(SealError::NotSealed)?;
        super::untagged(&plain).ok_or(SealError::NotSealed)
    }
}

impl UserKey {
    /// HMAC-SHA256 of `message` under a key derived from this data key for `domain`: a tag only
    /// a token that opens the key can make or check (a user's grants are authenticated so).
    pub fn mac(&self, domain: &str, message: &[u8]) -> [u8; 32] {
        use hmac::Mac as _;
        self.hmac(domain, message)
            .map_or([0; 32], |mac| mac.finalize().into_bytes().into())
    }

    /// Whether `tag` is [`UserKey::mac`] of `message` for `domain` (HMAC's own constant-time
    /// comparison).
    pub fn verify_mac(&self, domain: &str, message: &[u8], tag: &[u8]) -> bool {
        use hmac::Mac as _;
        self.hmac(domain, message)
            .is_some_and(|mac| mac.verify_slice(tag).is_ok())
    }

    /// HMAC-SHA256 over `message` under this key's MAC key for `domain` (HKDF-SHA256).
    fn hmac(&self, domain: &str, message: &[u8]) -> Option<hmac::Hmac<Sha256>> {
        use hmac::Mac as _;
        let hk = hkdf::Hkdf::<Sha256>::new(Some(b"edgeward-user-key-mac-v1"), &self.key[..]);
        let mut mac_key = Zeroizing::new([0u8; 32]);
        // 32 bytes is always a valid HKDF-SHA256 output length.
        let _ = hk.expand(domain.as_bytes(), mac_key.as_mut());
        // HMAC takes a key of any length.
        let mut mac = <hmac::Hmac<Sha256> as hmac::Mac>::new_from_slice(&mac_key[..]).ok()?;
        mac.update(message);
        Some(mac)
    }

    /// `bytes` sealed under this key, bound to `context` (an execution's output and which
    /// stream): `ewsealed:v1:<key id>:` then the nonce and the ciphertext, raw.
    pub fn seal_bytes(&self, context: &str, bytes: &[u8]) -> Vec<u8> {
        let mut out = format!("{SEALED_PREFIX}{}:", self.id).into_bytes();
        out.extend_from_slice(&self.encrypt(&bytes_aad(context, &self.id), bytes));
        out
    }

    /// Opens what [`UserKey::seal_bytes`] made for `context`.
    pub fn open_bytes(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        let (key_id, blob) = split_sealed_bytes(sealed).ok_or(SealError::NotSealed)?;
        if key_id != self.id {
            return Err(SealError::OtherKey(key_id.to_string()));
        }
        self.decrypt(&bytes_aad(context, &self.id), blob)
            .map(|plain| plain.to_vec())
            .ok_or(SealError::NotSealed)
    }
}

fn bytes_aad(context: &str, key_id: &str) -> String {
    format!("edgeward:sealed-bytes:v1:{context}:{key_id}")
}

/// The key id and the nonce-and-ciphertext of what [`UserKey::seal_bytes`] made.
fn split_sealed_bytes(sealed: &[u8]) -> Option<(&str, &[u8])> {
    let rest = sealed.strip_prefix(SEALED_PREFIX.as_bytes())?;
    let colon = rest.iter().position(|b| *b == b':')?;
    let key_id = std::str::from_utf8(&rest[..colon]).ok()?;
    let blob = &rest[colon + 1..];
    (blob.len() >= 12 + 16).then_some((key_id, blob))
}

/// How many bytes of plaintext [`UserKey::seal_bytes`] sealed into `sealed` (what a viewer who
/// cannot open it is told); 0 for anything else.
pub fn sealed_len(sealed: &[u8]) -> usize {
    split_sealed_bytes(sealed).map_or(0, |(_, blob)| blob.len() - 12 - 16)
}

/// The key id and payload of a sealed value, if it is one.
fn parse_sealed(stored: &SecretValue) -> Option<(&str, &str)> {
    if stored.is_object() {
        return None;
    }
    stored.expose().strip_prefix(SEALED_PREFIX)?.split_once(':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_opens_with_its_token_only_and_values_with_their_key_only() {
        let key = UserKey::generate();
        let slot = key.slot_for("alice", "tok_1", "ew_aaaa");
        assert!(UserKey::open_slot("alice", "tok_1", "ew_bbbb", &slot).is_none());
        assert!(UserKey::open_slot("bob", "tok_1", "ew_aaaa", &slot).is_none());
        assert!(UserKey::open_slot("alice", "tok_2", "ew_aaaa", &slot).is_none());
        let opened = UserKey::open_slot("alice", "tok_1", "ew_aaaa", &slot).unwrap();
        assert_eq!(opened.id(), key.id());

        let value = SecretValue::object(r#"{"pw":"hunter2"}"#.into());
        let sealed = key.seal("alice", "DB", &value);
        assert!(!sealed.expose().contains("hunter2"));
        assert!(sealed.expose().starts_with(SEALED_PREFIX));
        let back = opened.open("alice", "DB", &sealed).unwrap();
        assert!(back.is_object() && back.expose() == value.expose());
        // Bound to the user and the name: a copied value does not open elsewhere.
        assert_eq!(
            opened.open("alice", "OTHER", &sealed).unwrap_err(),
            SealError::NotSealed
        );
        let other = UserKey::generate();
        assert!(matches!(
            other.open("alice", "DB", &sealed),
            Err(SealError::OtherKey(_))
        ));
        assert_eq!(
            opened
                .open("alice", "DB", &SecretValue::text("plain".into()))
                .unwrap_err(),
            SealError::NotSealed
        );
        assert!(!format!("{opened:?} {slot:?}").contains("wrapped"));
    }

    #[test]
    fn macs_and_sealed_bytes_need_the_key() {
        let key = UserKey::generate();
        let tag = key.mac("grant", b"alice acme/tool sha");
        assert!(key.verify_mac("grant", b"alice acme/tool sha", &tag));
        assert!(!key.verify_mac("grant", b"alice acme/tool sha2", &tag));
        assert!(!key.verify_mac("other", b"alice acme/tool sha", &tag));
        assert!(!UserKey::generate().verify_mac("grant", b"alice acme/tool sha", &tag));
        assert!(!key.verify_mac("grant", b"alice acme/tool sha", &tag[..31]));

        let sealed = key.seal_bytes("exec:1:stdout", b"hunter2 \xff");
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(sealed_len(&sealed), 9);
        assert_eq!(
            key.open_bytes("exec:1:stdout", &sealed).unwrap(),
            b"hunter2 \xff"
        );
        assert!(key.open_bytes("exec:2:stdout", &sealed).is_err());
        assert!(matches!(
            UserKey::generate().open_bytes("exec:1:stdout", &sealed),
            Err(SealError::OtherKey(_))
        ));
        assert_eq!(sealed_len(b"plain"), 0);
        assert!(
            key.open_bytes("exec:1:stdout", b"ewsealed:v1:key_x:short")
                .is_err()
        );
    }
}
