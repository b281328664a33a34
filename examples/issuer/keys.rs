//! Signing keys: generation, persistence, the JWK Set, JWT signing and
//! checking, and rotation.
//!
//! # Rotation timeline
//!
//! Every key carries the instant it starts signing (`activates`). At any
//! moment the signer is the key with the latest `activates` in the past.
//!
//! ```text
//! rotate()        publish_lead        the new key signs   access_ttl + retire_grace
//!    |------------------------------------|-----------------------------------|
//!    new key in the JWKS, unused          old key in the JWKS, unused          old key removed
//! ```
//!
//! - A new key is published `publish_lead` before it signs (by default twice
//!   the JWKS `max-age`), so every downstream that refreshes on time already
//!   has it when the first token signed by it arrives.
//! - The previous key stops signing at that instant and stays published for
//!   `access_ttl + retire_grace`: until every token it signed has expired,
//!   plus the downstream clock leeway.
//! - Only one key waits at a time: rotating again while a key is pending
//!   returns the pending one.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{self as sig, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::Notify;

use super::audit::Audit;
use super::pg::{Db, KeyRow};

/// The algorithms this issuer signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256, RSA 2048.
    RS256,
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// Ed25519.
    EdDSA,
}

impl SigningAlg {
    /// Parses a JOSE algorithm name (exact, as in a JWS header).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "RS256" => Some(Self::RS256),
            "ES256" => Some(Self::ES256),
            "EdDSA" => Some(Self::EdDSA),
            _ => None,
        }
    }

    /// The JOSE name.
    pub fn name(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
        }
    }

    fn verification(self) -> &'static dyn sig::VerificationAlgorithm {
        match self {
            Self::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
            Self::ES256 => &sig::ECDSA_P256_SHA256_FIXED,
            Self::EdDSA => &sig::ED25519,
        }
    }
}

/// Something went wrong with keys: generation, signing or the key directory.
#[derive(Debug)]
pub struct KeyError(pub String);

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeyError {}

/// `ISSUER_KEY_ENCRYPTION_KEY`: the AES-256-GCM key that encrypts signing
/// keys at rest in the database.
#[derive(Clone)]
pub struct KeyCipher([u8; 32]);

// Hand-written so that the key never reaches a log line.
impl std::fmt::Debug for KeyCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyCipher(..)")
    }
}

/// How a private key is stored: `none` or this.
const SEALED: &str = "aes-256-gcm";

impl KeyCipher {
    /// Parses the base64 (standard or URL-safe, padded or not) of exactly
    /// 32 bytes, e.g. the output of `openssl rand -base64 32`.
    pub fn from_base64(text: &str) -> Result<Self, String> {
        use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE};
        let text = text.trim();
        let bytes = [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(text).ok())
            .ok_or(
                "ISSUER_KEY_ENCRYPTION_KEY is not base64 (make one with `openssl rand -base64 32`)",
            )?;
        let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            format!(
                "ISSUER_KEY_ENCRYPTION_KEY must be 32 bytes (base64 of them), not {}",
                b.len()
            )
        })?;
        Ok(Self(key))
    }

    fn aead(&self) -> Result<aws_lc_rs::aead::LessSafeKey, KeyError> {
        aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, &self.0)
            .map(aws_lc_rs::aead::LessSafeKey::new)
            .map_err(key_err("AES key setup"))
    }

    /// `nonce || ciphertext || tag`, bound to `kid`.
    // SECURITY: the key id is the associated data, so a sealed key moved to
    // another row (another kid, another schedule) no longer opens.
    fn seal(&self, kid: &str, plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut nonce = [0u8; aws_lc_rs::aead::NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(key_err("random nonce"))?;
        let mut sealed = plaintext.to_vec();
        self.aead()?
            .seal_in_place_append_tag(
                aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce),
                aws_lc_rs::aead::Aad::from(kid.as_bytes()),
                &mut sealed,
            )
            .map_err(key_err("key encryption"))?;
        let mut out = nonce.to_vec();
        out.append(&mut sealed);
        Ok(out)
    }

    fn open(&self, kid: &str, sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
        let wrong = || {
            KeyError(format!(
                "cannot decrypt signing key {kid}: ISSUER_KEY_ENCRYPTION_KEY is not the key it \
                 was encrypted with (or the row was altered)"
            ))
        };
        if sealed.len() < aws_lc_rs::aead::NONCE_LEN {
            return Err(wrong());
        }
        let (nonce, body) = sealed.split_at(aws_lc_rs::aead::NONCE_LEN);
        let nonce =
            aws_lc_rs::aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| wrong())?;
        let mut body = body.to_vec();
        let plain = self
            .aead()?
            .open_in_place(nonce, aws_lc_rs::aead::Aad::from(kid.as_bytes()), &mut body)
            .map_err(|_| wrong())?;
        Ok(plain.to_vec())
    }
}

/// The keys' home in the database, and the cipher for their private parts.
struct DbKeys {
    db: Db,
    cipher: Option<KeyCipher>,
    /// How often every replica rereads the keys.
    reload_every: Duration,
}

impl DbKeys {
    /// The row for `key` (its PKCS#8 document `pkcs8`), sealed when a
    /// cipher is set.
    fn row(&self, key: &Key, pkcs8: &[u8]) -> Result<KeyRow, KeyError> {
        let (encryption, private_key) = match &self.cipher {
            Some(cipher) => (SEALED, cipher.seal(&key.meta.kid, pkcs8)?),
            None => ("none", pkcs8.to_vec()),
        };
        Ok(KeyRow {
            kid: key.meta.kid.clone(),
            alg: key.meta.alg.name().to_owned(),
            created_ms: key.meta.created_ms,
            activates_ms: key.meta.activates_ms,
            ttl_ms: key.meta.ttl_ms,
            encryption: encryption.to_owned(),
            private_key,
        })
    }

    /// The key of `row`: one of `known` if it is there already, else
    /// decrypted and parsed.
    fn key(&self, row: &KeyRow, ttl_ms: i64, known: &[Arc<Key>]) -> Result<Arc<Key>, KeyError> {
        if let Some(key) = known
            .iter()
            .find(|k| k.meta.kid == row.kid && k.meta.activates_ms == row.activates_ms)
        {
            return Ok(Arc::clone(key));
        }
        let alg = SigningAlg::parse(&row.alg).ok_or_else(|| {
            KeyError(format!(
                "signing key {}: unknown algorithm {:?}",
                row.kid, row.alg
            ))
        })?;
        let der = match (row.encryption.as_str(), &self.cipher) {
            ("none", _) => row.private_key.clone(),
            (SEALED, Some(cipher)) => cipher.open(&row.kid, &row.private_key)?,
            (SEALED, None) => {
                return Err(KeyError(format!(
                    "the database holds encrypted signing keys (key {}); set \
                     ISSUER_KEY_ENCRYPTION_KEY to the key they were encrypted with",
                    row.kid
                )));
            }
            (other, _) => {
                return Err(KeyError(format!(
                    "signing key {}: unknown encryption {other:?}",
                    row.kid
                )));
            }
        };
        let meta = KeyMeta {
            kid: row.kid.clone(),
            alg,
            created_ms: row.created_ms,
            activates_ms: row.activates_ms,
            ttl_ms: row.ttl_ms.max(ttl_ms),
        };
        Key::from_pkcs8(meta, &der).map(Arc::new)
    }
}

enum Signer {
    Rsa(aws_lc_rs::rsa::KeyPair),
    Ec(sig::EcdsaKeyPair),
    Ed(sig::Ed25519KeyPair),
}

/// One signing key and its schedule.
pub struct Key {
    meta: KeyMeta,
    signer: Signer,
    public: Vec<u8>,
    jwk: Value,
}

/// What is persisted about a key besides its private part.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeyMeta {
    kid: String,
    alg: SigningAlg,
    created_ms: i64,
    activates_ms: i64,
    /// The longest access-token lifetime in force while the key could sign.
    ttl_ms: i64,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn key_err(what: &str) -> impl Fn(aws_lc_rs::error::Unspecified) -> KeyError + '_ {
    move |_| KeyError(format!("{what} failed in the crypto library"))
}

impl Key {
    /// Generates a key; returns it with its PKCS#8 document for persistence.
    fn generate(meta: KeyMeta) -> Result<(Self, Vec<u8>), KeyError> {
        let (signer, pkcs8) = match meta.alg {
            SigningAlg::RS256 => {
                let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(key_err("RSA key generation"))?;
                let der = kp.as_der().map_err(key_err("RSA key encoding"))?;
                let der = der.as_ref().to_vec();
                (Signer::Rsa(kp), der)
            }
            SigningAlg::ES256 => {
                let kp = sig::EcdsaKeyPair::generate(&sig::ECDSA_P256_SHA256_FIXED_SIGNING)
                    .map_err(key_err("P-256 key generation"))?;
                let der = kp.to_pkcs8v1().map_err(key_err("P-256 key encoding"))?;
                let der = der.as_ref().to_vec();
                (Signer::Ec(kp), der)
            }
            SigningAlg::EdDSA => {
                let kp =
                    sig::Ed25519KeyPair::generate().map_err(key_err("Ed25519 key generation"))?;
                let der = kp.to_pkcs8().map_err(key_err("Ed25519 key encoding"))?;
                let der = der.as_ref().to_vec();
                (Signer::Ed(kp), der)
            }
        };
        Ok((Self::assemble(meta, signer), pkcs8))
    }

    fn from_pkcs8(meta: KeyMeta, der: &[u8]) -> Result<Self, KeyError> {
        let rejected = |e: aws_lc_rs::error::KeyRejected| {
            KeyError(format!(
                "key {}: not a valid {} key: {e}",
                meta.kid,
                meta.alg.name()
            ))
        };
        let signer = match meta.alg {
            SigningAlg::RS256 => {
                Signer::Rsa(aws_lc_rs::rsa::KeyPair::from_pkcs8(der).map_err(rejected)?)
            }
            SigningAlg::ES256 => Signer::Ec(
                sig::EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(rejected)?,
            ),
            SigningAlg::EdDSA => {
                Signer::Ed(sig::Ed25519KeyPair::from_pkcs8(der).map_err(rejected)?)
            }
        };
        Ok(Self::assemble(meta, signer))
    }

    fn assemble(meta: KeyMeta, signer: Signer) -> Self {
        let (public, mut jwk) = match &signer {
            Signer::Rsa(kp) => {
                let c = sig::RsaPublicKeyComponents::<Vec<u8>>::from(kp.public_key());
                (
                    kp.public_key().as_ref().to_vec(),
                    json!({"kty": "RSA", "n": b64(&c.n), "e": b64(&c.e)}),
                )
            }
            Signer::Ec(kp) => {
                // Uncompressed point: 0x04 || x (32) || y (32).
                let point = kp.public_key().as_ref().to_vec();
                let (x, y) = point
                    .get(1..)
                    .map_or((&[][..], &[][..]), |p| p.split_at(p.len() / 2));
                let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y)});
                (point, jwk)
            }
            Signer::Ed(kp) => {
                let public = kp.public_key().as_ref().to_vec();
                let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&public)});
                (public, jwk)
            }
        };
        jwk["kid"] = json!(meta.kid);
        jwk["use"] = json!("sig");
        jwk["alg"] = json!(meta.alg.name());
        Self {
            meta,
            signer,
            public,
            jwk,
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.signer {
            Signer::Rsa(kp) => {
                let mut out = vec![0; kp.public_modulus_len()];
                kp.sign(
                    &sig::RSA_PKCS1_SHA256,
                    &aws_lc_rs::rand::SystemRandom::new(),
                    message,
                    &mut out,
                )
                .map_err(key_err("RSA signing"))?;
                Ok(out)
            }
            Signer::Ec(kp) => kp
                .sign(&aws_lc_rs::rand::SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(key_err("ECDSA signing")),
            Signer::Ed(kp) => Ok(kp.sign(message).as_ref().to_vec()),
        }
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        sig::UnparsedPublicKey::new(self.meta.alg.verification(), &self.public)
            .verify(message, signature)
            .is_ok()
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.meta.kid
    }
}

#[derive(Deserialize)]
struct JwsHeader {
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
    crit: Option<Value>,
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// A key's place in the timeline, for `/admin/keys` and logs.
#[derive(Debug, Clone, Serialize)]
pub struct KeyStatus {
    /// Key id.
    pub kid: String,
    /// Algorithm.
    pub alg: &'static str,
    /// `pending` (published, not signing yet), `active` (signing) or
    /// `retiring` (published for tokens it signed, not signing).
    pub state: &'static str,
    /// When it starts (or started) signing, ms since the epoch.
    pub activates_ms: i64,
    /// When it leaves the JWK Set, if a successor is scheduled.
    pub removed_ms: Option<i64>,
}

/// The outcome of a rotation request.
#[derive(Debug, Clone, Serialize)]
pub struct Rotation {
    /// The new (or already pending) key.
    pub kid: String,
    /// When it starts signing, ms since the epoch.
    pub activates_ms: i64,
    /// The key signing now, which it replaces.
    pub replaces: Option<String>,
    /// `true` when a rotation was already in progress and nothing new was made.
    pub already_pending: bool,
}

/// The issuer's keys. All methods are cheap except `open` and `rotate`,
/// which generate keys and write files off the async threads.
pub struct KeyManager {
    keys: RwLock<Arc<Vec<Arc<Key>>>>,
    dir: Option<PathBuf>,
    db: Option<DbKeys>,
    alg: SigningAlg,
    ttl_ms: i64,
    grace_ms: i64,
    lead: Duration,
    wake: Notify,
    // Serializes rotations and housekeeping (both rewrite the key list).
    writer: tokio::sync::Mutex<()>,
    announced: Mutex<Option<String>>,
}

const META_FILE: &str = "keys.json";

#[derive(Serialize, Deserialize)]
struct MetaFile {
    keys: Vec<KeyMeta>,
}

impl KeyManager {
    /// Loads the keys from `dir` (if any) or generates a first key that
    /// signs at once: nobody can hold a token of this issuer yet, so there
    /// is nothing to wait for.
    pub async fn open(
        dir: Option<PathBuf>,
        alg: SigningAlg,
        access_ttl: Duration,
        retire_grace: Duration,
        publish_lead: Duration,
    ) -> Result<Arc<Self>, KeyError> {
        let ttl_ms = ms(access_ttl);
        let manager = Arc::new(Self {
            keys: RwLock::new(Arc::new(Vec::new())),
            dir: dir.clone(),
            db: None,
            alg,
            ttl_ms,
            grace_ms: ms(retire_grace),
            lead: publish_lead,
            wake: Notify::new(),
            writer: tokio::sync::Mutex::new(()),
            announced: Mutex::new(None),
        });
        let loaded = match &dir {
            Some(dir) => {
                let dir = dir.clone();
                blocking(move || load_dir(&dir, ttl_ms)).await?
            }
            None => Vec::new(),
        };
        let now = now_ms();
        let mut keys: Vec<Arc<Key>> = loaded.into_iter().map(Arc::new).collect();
        keys.sort_by_key(|k| k.meta.activates_ms);
        manager.set(keys);
        manager.housekeeping().await?;
        if manager.signer(now).is_none() {
            manager.add_key(now).await?;
            if let Some(dir) = &manager.dir {
                tracing::info!(dir = %dir.display(), "no usable key in the key directory: generated one");
            }
        } else if manager.signer(now).is_some_and(|k| k.meta.alg != alg)
            && manager.pending(now).is_none()
        {
            // SIGNING_ALG changed: move to a key of the new kind, the usual way.
            let rotation = manager.rotate(publish_lead).await?;
            tracing::info!(kid = %rotation.kid, alg = alg.name(), "SIGNING_ALG changed: rotating to a new key");
        }
        if let Some(dir) = &manager.dir {
            manager.persist_meta(dir).await?;
        }
        Ok(manager)
    }

    /// Loads the keys from the database, or generates the first one there;
    /// with `cipher`, private keys are encrypted at rest (and keys found
    /// unencrypted are encrypted now). Replicas share these keys: each
    /// rereads them every `reload_every`, and one at a time decides on new
    /// ones (start-up, rotation) under an advisory lock.
    pub async fn open_db(
        db: Db,
        cipher: Option<KeyCipher>,
        reload_every: Duration,
        alg: SigningAlg,
        access_ttl: Duration,
        retire_grace: Duration,
        publish_lead: Duration,
    ) -> Result<Arc<Self>, KeyError> {
        let manager = Arc::new(Self {
            keys: RwLock::new(Arc::new(Vec::new())),
            dir: None,
            db: Some(DbKeys {
                db,
                cipher,
                reload_every,
            }),
            alg,
            ttl_ms: ms(access_ttl),
            grace_ms: ms(retire_grace),
            lead: publish_lead,
            wake: Notify::new(),
            writer: tokio::sync::Mutex::new(()),
            announced: Mutex::new(None),
        });
        manager.db_decide(None).await?;
        manager.housekeeping().await?;
        Ok(manager)
    }

    /// Under the keys' advisory lock: reads the keys, encrypts any stored
    /// in the clear when a cipher is set, and adds a key when one is due.
    /// With `rotate_lead`, a rotation (unless a key is pending); without,
    /// start-up (a first key that signs at once if none signs, or a
    /// rotation to a key of `SIGNING_ALG` if it changed).
    async fn db_decide(&self, rotate_lead: Option<Duration>) -> Result<Option<Rotation>, KeyError> {
        let Some(db) = &self.db else {
            return Ok(None);
        };
        let _writer = self.writer.lock().await;
        let store = |e: super::store::StoreError| KeyError(e.0);
        let mut conn = db.db.conn().await.map_err(store)?;
        let tx = super::pg::keys_transaction(&mut conn)
            .await
            .map_err(store)?;
        let rows = super::pg::load_keys(&tx).await.map_err(store)?;
        let known = self.snapshot();
        let mut keys = Vec::new();
        for row in &rows {
            let key = db.key(row, self.ttl_ms, &known)?;
            if row.encryption == "none"
                && let Some(cipher) = &db.cipher
            {
                let sealed = cipher.seal(&row.kid, &pkcs8_of(&key)?)?;
                super::pg::seal_key(&tx, &row.kid, SEALED, &sealed)
                    .await
                    .map_err(store)?;
                tracing::info!(kid = %row.kid, "signing key encrypted at rest (ISSUER_KEY_ENCRYPTION_KEY)");
            }
            keys.push(key);
        }
        keys.sort_by_key(|k| k.meta.activates_ms);
        self.set(keys);
        let now = now_ms();
        let replaces = self.signer(now).map(|k| k.meta.kid.clone());
        let activates_ms = match rotate_lead {
            Some(lead) => {
                if let Some(pending) = self.pending(now) {
                    return Ok(Some(Rotation {
                        kid: pending.meta.kid.clone(),
                        activates_ms: pending.meta.activates_ms,
                        replaces,
                        already_pending: true,
                    }));
                }
                now.saturating_add(ms(lead))
            }
            None if replaces.is_none() => now,
            None if self.signer(now).is_some_and(|k| k.meta.alg != self.alg)
                && self.pending(now).is_none() =>
            {
                tracing::info!(
                    alg = self.alg.name(),
                    "SIGNING_ALG changed: rotating to a new key"
                );
                now.saturating_add(ms(self.lead))
            }
            None => {
                tx.commit()
                    .await
                    .map_err(|e| KeyError(format!("cannot commit the keys: {e}")))?;
                return Ok(None);
            }
        };
        let meta = self.new_meta(now, activates_ms)?;
        let (key, pkcs8) = blocking(move || Key::generate(meta)).await?;
        super::pg::insert_key(&tx, &db.row(&key, &pkcs8)?)
            .await
            .map_err(store)?;
        tx.commit()
            .await
            .map_err(|e| KeyError(format!("cannot commit the new key: {e}")))?;
        let key = Arc::new(key);
        let mut keys: Vec<Arc<Key>> = self.snapshot().iter().cloned().collect();
        keys.push(Arc::clone(&key));
        keys.sort_by_key(|k| k.meta.activates_ms);
        self.set(keys);
        tracing::info!(
            kid = %key.meta.kid,
            alg = key.meta.alg.name(),
            replaces = replaces.as_deref().unwrap_or("-"),
            "new signing key stored in the database"
        );
        self.wake.notify_one();
        Ok(Some(Rotation {
            kid: key.meta.kid.clone(),
            activates_ms,
            replaces,
            already_pending: false,
        }))
    }

    /// Rereads the keys from the database (no lock: reading needs none). A
    /// key that cannot be read is an error and the keys in memory stay.
    pub async fn reload(&self) -> Result<(), KeyError> {
        let Some(db) = &self.db else {
            return Ok(());
        };
        let rows = db
            .db
            .timed(async {
                let conn = db.db.conn().await?;
                super::pg::load_keys_from(&conn).await
            })
            .await
            .map_err(|e| KeyError(e.0))?;
        if rows.is_empty() {
            return Err(KeyError(
                "the database holds no signing key; keeping the keys in memory".into(),
            ));
        }
        let known = self.snapshot();
        let mut keys = rows
            .iter()
            .map(|row| db.key(row, self.ttl_ms, &known))
            .collect::<Result<Vec<_>, _>>()?;
        keys.sort_by_key(|k| k.meta.activates_ms);
        self.set(keys);
        Ok(())
    }

    fn snapshot(&self) -> Arc<Vec<Arc<Key>>> {
        Arc::clone(&self.keys.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn set(&self, keys: Vec<Arc<Key>>) {
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
    }

    /// The key that signs at `now`: the latest one activated.
    fn signer(&self, now: i64) -> Option<Arc<Key>> {
        self.snapshot()
            .iter()
            .rev()
            .find(|k| k.meta.activates_ms <= now)
            .cloned()
    }

    fn pending(&self, now: i64) -> Option<Arc<Key>> {
        self.snapshot()
            .iter()
            .find(|k| k.meta.activates_ms > now)
            .cloned()
    }

    /// When key `i` leaves the JWK Set: its successor's activation plus the
    /// longest lifetime of a token it signed plus the grace.
    fn removal(&self, keys: &[Arc<Key>], i: usize) -> Option<i64> {
        let next = keys.get(i + 1)?;
        Some(
            next.meta
                .activates_ms
                .saturating_add(keys[i].meta.ttl_ms.max(self.ttl_ms))
                .saturating_add(self.grace_ms),
        )
    }

    fn published(&self, now: i64) -> Vec<Arc<Key>> {
        let keys = self.snapshot();
        (0..keys.len())
            .filter(|&i| self.removal(&keys, i).is_none_or(|t| t > now))
            .map(|i| Arc::clone(&keys[i]))
            .collect()
    }

    /// The JWK Set: pending, active and retiring keys.
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .published(now_ms())
            .iter()
            .map(|k| k.jwk.clone())
            .collect();
        json!({ "keys": keys })
    }

    /// The algorithms of the published keys.
    pub fn algorithms(&self) -> Vec<&'static str> {
        let mut algs: Vec<&'static str> = self
            .published(now_ms())
            .iter()
            .map(|k| k.meta.alg.name())
            .collect();
        algs.sort_unstable();
        algs.dedup();
        algs
    }

    /// Signs `claims` as an RFC 9068 access token (`typ: at+jwt`) with the
    /// current key; returns the compact JWS.
    pub fn sign_access_token(&self, claims: &Value) -> Result<String, KeyError> {
        let key = self
            .signer(now_ms())
            .ok_or_else(|| KeyError("no signing key".into()))?;
        let header = json!({"alg": key.meta.alg.name(), "typ": "at+jwt", "kid": key.meta.kid});
        let message = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = key.sign(message.as_bytes())?;
        Ok(format!("{message}.{}", b64(&signature)))
    }

    /// The claims of `token` if one of the published keys signed it, else
    /// `None`. Checks only the signature and the header; the caller checks
    /// the claims.
    pub fn verify_jwt(&self, token: &str) -> Option<Map<String, Value>> {
        // SECURITY (DoS): bound the work before decoding anything.
        if token.len() > 16 * 1024 {
            return None;
        }
        let (message, signature) = token.rsplit_once('.')?;
        let (header, payload) = message.split_once('.')?;
        if payload.contains('.') {
            return None;
        }
        let header: JwsHeader =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
        if header.crit.is_some() || !header.typ.is_some_and(|t| t.eq_ignore_ascii_case("at+jwt")) {
            return None;
        }
        let kid = header.kid?;
        let key = self
            .published(now_ms())
            .into_iter()
            .find(|k| k.meta.kid == kid)?;
        // SECURITY (RFC 8725 §3.1): the key decides the algorithm; the header
        // must name exactly it, so no alg confusion is possible.
        if header.alg != key.meta.alg.name() {
            return None;
        }
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        if !key.verify(message.as_bytes(), &signature) {
            return None;
        }
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
    }

    /// Where each key stands now.
    pub fn status(&self) -> Vec<KeyStatus> {
        let now = now_ms();
        let keys = self.snapshot();
        let signer = self.signer(now).map(|k| k.meta.kid.clone());
        (0..keys.len())
            .filter_map(|i| {
                let k = &keys[i];
                let removed_ms = self.removal(&keys, i);
                if removed_ms.is_some_and(|t| t <= now) {
                    return None;
                }
                let state = if k.meta.activates_ms > now {
                    "pending"
                } else if signer.as_deref() == Some(k.meta.kid.as_str()) {
                    "active"
                } else {
                    "retiring"
                };
                Some(KeyStatus {
                    kid: k.meta.kid.clone(),
                    alg: k.meta.alg.name(),
                    state,
                    activates_ms: k.meta.activates_ms,
                    removed_ms,
                })
            })
            .collect()
    }

    /// Starts a rotation: a new key is published now and signs after `lead`.
    /// If a key is already pending, returns it instead.
    pub async fn rotate(&self, lead: Duration) -> Result<Rotation, KeyError> {
        if self.db.is_some() {
            return self
                .db_decide(Some(lead))
                .await?
                .ok_or_else(|| KeyError("no rotation was made".into()));
        }
        let _writer = self.writer.lock().await;
        let now = now_ms();
        let replaces = self.signer(now).map(|k| k.meta.kid.clone());
        if let Some(pending) = self.pending(now) {
            return Ok(Rotation {
                kid: pending.meta.kid.clone(),
                activates_ms: pending.meta.activates_ms,
                replaces,
                already_pending: true,
            });
        }
        let activates_ms = now.saturating_add(ms(lead));
        let key = self.add_key(activates_ms).await?;
        tracing::info!(
            kid = %key.meta.kid,
            alg = key.meta.alg.name(),
            replaces = replaces.as_deref().unwrap_or("-"),
            lead_ms = ms(lead),
            "key rotation: new key published; it signs after the lead time"
        );
        self.wake.notify_one();
        Ok(Rotation {
            kid: key.meta.kid.clone(),
            activates_ms,
            replaces,
            already_pending: false,
        })
    }

    /// The configured publication lead.
    pub fn lead(&self) -> Duration {
        self.lead
    }

    fn new_meta(&self, now: i64, activates_ms: i64) -> Result<KeyMeta, KeyError> {
        let mut id = [0u8; 6];
        aws_lc_rs::rand::fill(&mut id).map_err(key_err("random key id"))?;
        Ok(KeyMeta {
            kid: format!(
                "{}-{:x}-{}",
                self.alg.name().to_ascii_lowercase(),
                now / 1000,
                hex(&id)
            ),
            alg: self.alg,
            created_ms: now,
            activates_ms,
            ttl_ms: self.ttl_ms,
        })
    }

    async fn add_key(&self, activates_ms: i64) -> Result<Arc<Key>, KeyError> {
        let meta = self.new_meta(now_ms(), activates_ms)?;
        let dir = self.dir.clone();
        let key = blocking(move || {
            let (key, pkcs8) = Key::generate(meta)?;
            if let Some(dir) = dir {
                write_private_key(&dir, &key.meta.kid, &pkcs8)?;
            }
            Ok(key)
        })
        .await?;
        let key = Arc::new(key);
        let mut keys: Vec<Arc<Key>> = self.snapshot().iter().cloned().collect();
        keys.push(Arc::clone(&key));
        keys.sort_by_key(|k| k.meta.activates_ms);
        self.set(keys);
        if let Some(dir) = &self.dir {
            self.persist_meta(dir).await?;
        }
        Ok(key)
    }

    async fn persist_meta(&self, dir: &Path) -> Result<(), KeyError> {
        let meta = MetaFile {
            keys: self.snapshot().iter().map(|k| k.meta.clone()).collect(),
        };
        let dir = dir.to_path_buf();
        blocking(move || write_meta(&dir, &meta)).await
    }

    /// Drops keys whose tokens have all expired (from memory and disk) and
    /// logs when a new key has started signing.
    pub async fn housekeeping(&self) -> Result<(), KeyError> {
        self.housekeeping_audited(None).await
    }

    /// [`housekeeping`](Self::housekeeping); a key that starts signing in
    /// place of another is an audit record of issuer `iss`, when given.
    async fn housekeeping_audited(&self, iss: Option<&str>) -> Result<(), KeyError> {
        self.reload().await?;
        let _writer = self.writer.lock().await;
        let now = now_ms();
        let keys = self.snapshot();
        let (keep, gone): (Vec<usize>, Vec<usize>) =
            (0..keys.len()).partition(|&i| self.removal(&keys, i).is_none_or(|t| t > now));
        if !gone.is_empty() {
            self.set(keep.iter().map(|&i| Arc::clone(&keys[i])).collect());
            for &i in &gone {
                tracing::info!(kid = %keys[i].meta.kid, "key retired: every token it signed has expired; removed from the JWK Set");
            }
            if let Some(db) = &self.db {
                let kids: Vec<String> = gone.iter().map(|&i| keys[i].meta.kid.clone()).collect();
                db.db
                    .timed(async {
                        let conn = db.db.conn().await?;
                        super::pg::delete_keys(&conn, &kids).await
                    })
                    .await
                    .map_err(|e| KeyError(e.0))?;
            }
            if let Some(dir) = &self.dir {
                self.persist_meta(dir).await?;
                let dir = dir.clone();
                let kids: Vec<String> = gone.iter().map(|&i| keys[i].meta.kid.clone()).collect();
                blocking(move || {
                    for kid in kids {
                        let _ = std::fs::remove_file(dir.join(format!("{kid}.pk8")));
                    }
                    Ok(())
                })
                .await?;
            }
        }
        if let Some(signer) = self.signer(now) {
            let mut announced = self
                .announced
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if announced.as_deref() != Some(signer.meta.kid.as_str()) {
                tracing::info!(kid = %signer.meta.kid, alg = signer.meta.alg.name(), "key now signs new tokens");
                // The first key to sign after start-up is no rotation.
                if let (Some(iss), Some(_)) = (iss, announced.as_deref()) {
                    Audit::event("key_rotation", "timer", iss).record(
                        "allow",
                        "key_activated",
                        None,
                    );
                }
                *announced = Some(signer.meta.kid.clone());
            }
        }
        Ok(())
    }

    /// The next instant something changes: a pending key activates, a key
    /// retires, or a timed rotation is due.
    fn next_event(&self, now: i64, rotate_every: Option<Duration>) -> Option<i64> {
        let keys = self.snapshot();
        let mut times: Vec<i64> = keys
            .iter()
            .map(|k| k.meta.activates_ms)
            .chain((0..keys.len()).filter_map(|i| self.removal(&keys, i)))
            .filter(|&t| t > now)
            .collect();
        if let Some(due) = self.rotation_due_at(now, rotate_every) {
            times.push(due);
        }
        times.into_iter().min()
    }

    /// When the timer should start the next rotation: early enough that the
    /// new key signs `rotate_every` after the current one began.
    fn rotation_due_at(&self, now: i64, rotate_every: Option<Duration>) -> Option<i64> {
        let every = rotate_every?;
        if self.pending(now).is_some() {
            return None;
        }
        let current = self.signer(now)?;
        Some(
            current
                .meta
                .activates_ms
                .saturating_add(ms(every))
                .saturating_sub(ms(self.lead)),
        )
    }

    /// Runs housekeeping and timed rotation until the task is aborted.
    /// Rotations and key activations are audit records of issuer `iss`.
    pub async fn run(self: Arc<Self>, rotate_every: Option<Duration>, iss: String) {
        // With the database, every replica rereads the keys this often (a
        // key published by another replica is seen within it, long before
        // it signs), and retries as soon after a failure.
        let reload = self.db.as_ref().map(|db| db.reload_every);
        let retry = reload.unwrap_or(Duration::from_secs(30));
        loop {
            let mut pause = Duration::ZERO;
            if let Err(e) = self.housekeeping_audited(Some(&iss)).await {
                tracing::error!(error = %e, retry_ms = retry.as_millis(), "key housekeeping failed; retrying");
                pause = retry;
            }
            let now = now_ms();
            if pause.is_zero()
                && self
                    .rotation_due_at(now, rotate_every)
                    .is_some_and(|due| due <= now)
            {
                match self.rotate(self.lead).await {
                    Ok(rotation) => Audit::event("key_rotation", "timer", &iss).record(
                        "allow",
                        if rotation.already_pending {
                            "already_pending"
                        } else {
                            "published"
                        },
                        None,
                    ),
                    Err(e) => {
                        tracing::error!(error = %e, retry_ms = retry.as_millis(), "timed key rotation failed; retrying");
                        pause = retry;
                    }
                }
            }
            if pause.is_zero() {
                let now = now_ms();
                // Wake a little after the event so it has surely happened;
                // cap the wait so a clock jump is noticed within a minute.
                let wait = self.next_event(now, rotate_every).map_or(60_000, |t| {
                    t.saturating_sub(now).saturating_add(5).clamp(5, 60_000)
                });
                pause = Duration::from_millis(u64::try_from(wait).unwrap_or(60_000));
                if let Some(reload) = reload {
                    pause = pause.min(reload);
                }
            }
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = self.wake.notified() => {}
            }
        }
    }
}

/// The PKCS#8 document of `key`'s private part (to encrypt a key found
/// stored in the clear).
fn pkcs8_of(key: &Key) -> Result<Vec<u8>, KeyError> {
    match &key.signer {
        Signer::Rsa(kp) => kp
            .as_der()
            .map(|d| d.as_ref().to_vec())
            .map_err(key_err("RSA key encoding")),
        Signer::Ec(kp) => kp
            .to_pkcs8v1()
            .map(|d| d.as_ref().to_vec())
            .map_err(key_err("P-256 key encoding")),
        Signer::Ed(kp) => kp
            .to_pkcs8()
            .map(|d| d.as_ref().to_vec())
            .map_err(key_err("Ed25519 key encoding")),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, KeyError> + Send + 'static,
) -> Result<T, KeyError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| KeyError(format!("key task failed: {e}")))?
}

fn valid_kid(kid: &str) -> bool {
    // SECURITY (path traversal): kids name files in KEY_DIR.
    !kid.is_empty()
        && kid.len() <= 64
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn io_err(what: &str, path: &Path) -> impl Fn(std::io::Error) -> KeyError {
    let message = format!("{what} {}", path.display());
    move |e| KeyError(format!("{message}: {e}"))
}

fn load_dir(dir: &Path, ttl_ms: i64) -> Result<Vec<Key>, KeyError> {
    create_dir(dir)?;
    let path = dir.join(META_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("cannot read", &path)(e)),
    };
    let meta: MetaFile = serde_json::from_str(&text)
        .map_err(|e| KeyError(format!("{} is corrupt: {e}", path.display())))?;
    let mut keys = Vec::new();
    for mut meta in meta.keys {
        if !valid_kid(&meta.kid) {
            return Err(KeyError(format!(
                "{}: invalid key id {:?}",
                path.display(),
                meta.kid
            )));
        }
        let file = dir.join(format!("{}.pk8", meta.kid));
        let der = std::fs::read(&file).map_err(io_err("cannot read key file", &file))?;
        meta.ttl_ms = meta.ttl_ms.max(ttl_ms);
        keys.push(Key::from_pkcs8(meta, &der)?);
    }
    Ok(keys)
}

fn create_dir(dir: &Path) -> Result<(), KeyError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        // SECURITY: private keys live here; only the owner may list them.
        builder.mode(0o700);
    }
    builder.create(dir).map_err(io_err("cannot create", dir))?;
    check_dir(dir)
}

// SECURITY: whoever can write to KEY_DIR can plant a key we would sign with,
// swap keys.json, or put symlinks where we write; whoever owns it can grant
// themselves that. Refuse such a directory rather than trust it.
#[cfg(unix)]
fn check_dir(dir: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(dir).map_err(io_err("cannot inspect", dir))?;
    if !meta.is_dir() {
        return Err(KeyError(format!(
            "KEY_DIR {} is not a directory",
            dir.display()
        )));
    }
    let me = effective_uid()?;
    if meta.uid() != me {
        return Err(KeyError(format!(
            "KEY_DIR {} is owned by uid {}, not by this process (uid {me}); \
             use a directory of your own (chown it, or point KEY_DIR elsewhere)",
            dir.display(),
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(KeyError(format!(
            "KEY_DIR {} is writable by group or others (mode {:o}); make it owner-only: chmod 700",
            dir.display(),
            meta.mode() & 0o7777
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_dir(_dir: &Path) -> Result<(), KeyError> {
    Ok(())
}

/// The effective uid of this process: the owner of a file it creates
/// (std has no `geteuid`, and this crate adds no `libc`).
#[cfg(unix)]
fn effective_uid() -> Result<u32, KeyError> {
    use std::os::unix::fs::MetadataExt as _;
    let probe = std::env::temp_dir().join(format!(".authlayer-uid-{}", random_suffix()?));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(io_err("cannot create", &probe))?;
    let uid = file.metadata().map(|m| m.uid());
    drop(file);
    let _ = std::fs::remove_file(&probe);
    uid.map_err(io_err("cannot inspect", &probe))
}

fn random_suffix() -> Result<String, KeyError> {
    let mut bytes = [0u8; 8];
    aws_lc_rs::rand::fill(&mut bytes).map_err(key_err("random file name"))?;
    Ok(hex(&bytes))
}

/// Creates `path` (owner-only) and writes `bytes` to it. `create_new`
/// (`O_CREAT | O_EXCL`) fails on anything already there, a symlink
/// included, so nothing is ever written through a planted link.
fn write_new_file(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        // SECURITY: private keys (and the key list) are the owner's only.
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io_err("cannot create", path))?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if let Err(e) = written {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(io_err("cannot write", path)(e));
    }
    Ok(())
}

fn write_private_key(dir: &Path, kid: &str, pkcs8: &[u8]) -> Result<(), KeyError> {
    create_dir(dir)?;
    write_new_file(&dir.join(format!("{kid}.pk8")), pkcs8)
}

fn write_meta(dir: &Path, meta: &MetaFile) -> Result<(), KeyError> {
    let path = dir.join(META_FILE);
    let text = serde_json::to_string_pretty(meta)
        .map_err(|e| KeyError(format!("cannot encode key list: {e}")))?;
    // SECURITY: a fresh, randomly named temporary file (never a fixed name
    // that could be a planted symlink), then rename, which replaces whatever
    // keys.json is, a symlink included, without following it. A crash leaves
    // the old list or the new one, never half.
    let tmp = dir.join(format!("{META_FILE}.{}.tmp", random_suffix()?));
    write_new_file(&tmp, text.as_bytes())?;
    std::fs::rename(&tmp, &path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_err("cannot replace", &path)(e)
    })
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};

    use super::*;

    /// A fresh directory with `mode`, unique to this test run.
    fn temp_dir(name: &str, mode: u32) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "authlayer-keys-{name}-{}-{}",
            std::process::id(),
            now_ms()
        ));
        std::fs::create_dir(&dir).expect("create the test directory");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).expect("chmod");
        dir
    }

    async fn open(dir: &Path) -> Result<Arc<KeyManager>, KeyError> {
        KeyManager::open(
            Some(dir.to_path_buf()),
            SigningAlg::EdDSA,
            Duration::from_secs(60),
            Duration::from_secs(60),
            Duration::from_secs(60),
        )
        .await
    }

    fn refusal(result: Result<Arc<KeyManager>, KeyError>) -> String {
        match result {
            Ok(_) => panic!("an untrusted key directory was accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[tokio::test]
    async fn key_dir_writable_by_group_or_others_is_refused() {
        for mode in [0o770, 0o707, 0o777] {
            let dir = temp_dir("writable", mode);
            let message = refusal(open(&dir).await);
            assert!(message.contains(&dir.display().to_string()), "{message}");
            assert!(
                std::fs::read_dir(&dir).unwrap().next().is_none(),
                "nothing was written into it"
            );
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[tokio::test]
    async fn key_dir_owned_by_another_user_is_refused() {
        let dir = temp_dir("foreign", 0o700);
        let me = std::fs::metadata(&dir).unwrap().uid();
        let foreign = if me == 0 {
            // As root (CI): hand the directory to `nobody`.
            std::os::unix::fs::chown(&dir, Some(65_534), Some(65_534)).expect("chown");
            dir.clone()
        } else {
            // Otherwise root's `/` is owned by someone else.
            PathBuf::from("/")
        };
        let message = refusal(open(&foreign).await);
        assert!(message.contains("owned"), "{message}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn key_files_are_not_written_through_symlinks() {
        let dir = temp_dir("symlink", 0o700);
        let outside = temp_dir("symlink-target", 0o700);
        let victim = outside.join("victim");
        std::fs::write(&victim, "").unwrap();
        // Whoever could plant these must not make the issuer write elsewhere.
        std::os::unix::fs::symlink(&victim, dir.join(format!("{META_FILE}.tmp"))).unwrap();
        let manager = open(&dir).await.expect("open");
        assert!(manager.signer(now_ms()).is_some());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "");
        let meta = std::fs::symlink_metadata(dir.join(META_FILE)).unwrap();
        assert!(meta.file_type().is_file(), "keys.json is a regular file");
        assert_eq!(meta.permissions().mode() & 0o077, 0, "owner-only");
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_dir_all(&outside).unwrap();
    }

    #[test]
    fn key_encryption_key_must_be_base64_of_32_bytes() {
        use base64::engine::general_purpose::STANDARD;
        assert!(KeyCipher::from_base64(&STANDARD.encode([1u8; 32])).is_ok());
        assert!(KeyCipher::from_base64(&URL_SAFE_NO_PAD.encode([1u8; 32])).is_ok());
        let short = KeyCipher::from_base64(&STANDARD.encode([1u8; 16])).unwrap_err();
        assert!(short.contains("32 bytes"), "{short}");
        let garbage = KeyCipher::from_base64("not base64 at all!").unwrap_err();
        assert!(garbage.contains("base64"), "{garbage}");
        assert_eq!(format!("{:?}", KeyCipher([9; 32])), "KeyCipher(..)");
    }

    #[test]
    fn sealed_keys_open_only_with_their_key_and_their_kid() {
        let cipher = KeyCipher([1; 32]);
        let sealed = cipher.seal("kid-a", b"private key").unwrap();
        assert!(!sealed.windows(11).any(|w| w == b"private key"));
        assert_eq!(cipher.open("kid-a", &sealed).unwrap(), b"private key");
        let wrong_key = KeyCipher([2; 32]).open("kid-a", &sealed).unwrap_err();
        assert!(
            wrong_key.0.contains("ISSUER_KEY_ENCRYPTION_KEY"),
            "{wrong_key}"
        );
        // Moved to another row, it no longer opens.
        assert!(cipher.open("kid-b", &sealed).is_err());
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(cipher.open("kid-a", &altered).is_err());
        assert!(cipher.open("kid-a", &sealed[..5]).is_err());
    }
}
