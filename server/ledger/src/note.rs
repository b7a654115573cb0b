//! C2SP signed notes (c2sp.org/signed-note v1.0.0) with Ed25519 signatures (type 0x01) and
//! timestamped Ed25519 cosignatures (c2sp.org/tlog-cosignature `cosignature/v1`, type 0x04).
//!
//! A note is UTF-8 text that ends in a newline, then a blank line, then one or more lines
//! `— <key name> base64(key ID[4] ‖ signature)` (the dash is U+2014). The text is everything up
//! to the *last* blank line and includes its final newline. No ASCII control character other
//! than newline may appear anywhere. Key names are non-empty and contain no whitespace and no `+`.
//!
//! - Key ID = `SHA-256(name ‖ 0x0A ‖ type ‖ public key)[:4]`; a verifier key (vkey) is
//!   `name+hex(keyID)+base64(type ‖ public key)`, and parsing one checks that the key ID matches.
//! - A 0x01 signature is Ed25519 over the note text.
//! - A 0x04 cosignature is Ed25519 over `cosignature/v1\ntime <secs>\n` followed by the note text,
//!   and its bytes are key ID ‖ u64 big-endian time ‖ signature. The time must be below 2^63.
//!
//! Opening a note: signatures whose (name, key ID) match no configured key are ignored; a
//! signature that matches a known key must verify (`verify_strict`) or the whole note is
//! rejected; at least one configured 0x01 key must have signed; at most [`MAX_SIGNATURES`]
//! signature lines are accepted.
//!
//! Secret keys are 32-byte Ed25519 seeds. [`ed25519_public_key_pem`] writes the public key as an
//! SPKI PEM so `openssl pkeyutl -verify -pubin -rawin` can check a signature with the 4-byte key
//! ID stripped.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// Signature type byte of plain Ed25519 note signatures.
pub const SIG_TYPE_ED25519: u8 = 0x01;
/// Signature type byte of timestamped Ed25519 cosignatures (`cosignature/v1`).
pub const SIG_TYPE_COSIGNATURE_V1: u8 = 0x04;
/// Most signature lines a note may carry (the spec requires accepting at least 16).
pub const MAX_SIGNATURES: usize = 100;

const SIG_PREFIX: &str = "\u{2014} ";
/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); the 32-byte key follows.
const SPKI_ED25519_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
const COSIGNATURE_HEADER: &str = "cosignature/v1\n";

/// Why a key or note is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The key name is empty, or contains whitespace, control characters or `+`.
    #[error("invalid key name {0:?}")]
    InvalidKeyName(String),
    /// A verifier key string is not `name+hex8+base64`.
    #[error("malformed verifier key: {0}")]
    MalformedVkey(&'static str),
    /// A verifier key has a signature type other than the one asked for.
    #[error("verifier key has signature type {found:#04x}, expected {expected:#04x}")]
    WrongKeyType {
        /// Type required by the caller.
        expected: u8,
        /// Type in the vkey.
        found: u8,
    },
    /// The key ID in a verifier key does not match its name and key.
    #[error("key ID in verifier key does not match the key")]
    KeyIdMismatch,
    /// The 32 bytes are not a valid Ed25519 public key.
    #[error("invalid Ed25519 public key")]
    InvalidPublicKey,
    /// Note text is empty, does not end in a newline, or holds a control character.
    #[error(
        "note text must be non-empty, end in a newline and have no control characters but newline"
    )]
    InvalidText,
    /// The note does not have the signed-note structure.
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    /// More than [`MAX_SIGNATURES`] signature lines.
    #[error("note has more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    /// A signature from a known key did not verify; the whole note is rejected.
    #[error("signature by known key {name} does not verify")]
    BadSignature {
        /// Key name of the failing signature.
        name: String,
    },
    /// No signature from a configured key.
    #[error("note has no signature from a known key")]
    NoKnownSignature,
    /// Cosignature time at or above 2^63.
    #[error("cosignature time {0} is not below 2^63")]
    TimeOutOfRange(u64),
    /// The operating system's random source failed.
    #[error("random number generator failed: {0}")]
    Random(String),
}

/// `SHA-256(name ‖ 0x0A ‖ sig_type ‖ public_key)[:4]` as a big-endian u32.
pub fn key_id(name: &str, sig_type: u8, public_key: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([0x0a, sig_type]);
    h.update(public_key);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// Whether `name` may be a key name: non-empty, no whitespace, no control characters, no `+`.
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '+')
}

fn check_name(name: &str) -> Result<(), NoteError> {
    if is_valid_key_name(name) {
        Ok(())
    } else {
        Err(NoteError::InvalidKeyName(name.to_owned()))
    }
}

fn has_bad_control(s: &str) -> bool {
    s.bytes().any(|b| b < 0x20 && b != b'\n')
}

fn check_text(text: &str) -> Result<(), NoteError> {
    if text.is_empty() || !text.ends_with('\n') || has_bad_control(text) {
        Err(NoteError::InvalidText)
    } else {
        Ok(())
    }
}

/// The SPKI PEM (`-----BEGIN PUBLIC KEY-----`) of a 32-byte Ed25519 public key.
pub fn ed25519_public_key_pem(public_key: &[u8; 32]) -> String {
    let mut der = Vec::with_capacity(44);
    der.extend_from_slice(&SPKI_ED25519_PREFIX);
    der.extend_from_slice(public_key);
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        STANDARD.encode(der)
    )
}

/// A parsed verifier key of any signature type: `name+hex(keyID)+base64(type ‖ key)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VKey {
    /// Key name.
    pub name: String,
    /// Key ID (checked against the key for types 0x01 and 0x04).
    pub key_id: u32,
    /// Signature type byte.
    pub sig_type: u8,
    /// Public key material after the type byte.
    pub public_key: Vec<u8>,
}

impl VKey {
    /// Parses a vkey. For types 0x01 and 0x04 the key ID must equal the recommended hash.
    pub fn parse(s: &str) -> Result<Self, NoteError> {
        let mut parts = s.splitn(3, '+');
        let (Some(name), Some(id), Some(material)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(NoteError::MalformedVkey("expected name+keyid+key"));
        };
        check_name(name)?;
        if id.len() != 8 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(NoteError::MalformedVkey("key ID must be 8 hex digits"));
        }
        let key_id = u32::from_str_radix(id, 16)
            .map_err(|_| NoteError::MalformedVkey("key ID must be 8 hex digits"))?;
        let raw = STANDARD
            .decode(material)
            .map_err(|_| NoteError::MalformedVkey("key is not base64"))?;
        let Some((&sig_type, public_key)) = raw.split_first() else {
            return Err(NoteError::MalformedVkey("empty key"));
        };
        if matches!(sig_type, SIG_TYPE_ED25519 | SIG_TYPE_COSIGNATURE_V1)
            && key_id != self::key_id(name, sig_type, public_key)
        {
            return Err(NoteError::KeyIdMismatch);
        }
        Ok(Self {
            name: name.to_owned(),
            key_id,
            sig_type,
            public_key: public_key.to_vec(),
        })
    }
}

impl fmt::Display for VKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = Vec::with_capacity(1 + self.public_key.len());
        raw.push(self.sig_type);
        raw.extend_from_slice(&self.public_key);
        write!(
            f,
            "{}+{:08x}+{}",
            self.name,
            self.key_id,
            STANDARD.encode(raw)
        )
    }
}

/// Public half shared by [`Verifier`] and [`CosignatureVerifier`].
#[derive(Clone, Debug, PartialEq, Eq)]
struct PublicKey {
    name: String,
    key_id: u32,
    sig_type: u8,
    key: VerifyingKey,
}

impl PublicKey {
    fn new(name: &str, sig_type: u8, public_key: &[u8; 32]) -> Result<Self, NoteError> {
        check_name(name)?;
        let key = VerifyingKey::from_bytes(public_key).map_err(|_| NoteError::InvalidPublicKey)?;
        Ok(Self {
            name: name.to_owned(),
            key_id: key_id(name, sig_type, public_key),
            sig_type,
            key,
        })
    }

    fn from_vkey(s: &str, sig_type: u8) -> Result<Self, NoteError> {
        let v = VKey::parse(s)?;
        if v.sig_type != sig_type {
            return Err(NoteError::WrongKeyType {
                expected: sig_type,
                found: v.sig_type,
            });
        }
        let bytes: [u8; 32] = v
            .public_key
            .as_slice()
            .try_into()
            .map_err(|_| NoteError::InvalidPublicKey)?;
        Self::new(&v.name, sig_type, &bytes)
    }

    fn vkey(&self) -> String {
        VKey {
            name: self.name.clone(),
            key_id: self.key_id,
            sig_type: self.sig_type,
            public_key: self.key.to_bytes().to_vec(),
        }
        .to_string()
    }

    fn matches(&self, sig: &NoteSignature) -> bool {
        sig.name == self.name && sig.key_id == self.key_id
    }
}

/// Secret half shared by [`Signer`] and [`CosignatureSigner`].
struct SecretKey {
    public: PublicKey,
    key: SigningKey,
}

impl SecretKey {
    fn new(name: &str, sig_type: u8, secret: [u8; 32]) -> Result<Self, NoteError> {
        let key = SigningKey::from_bytes(&secret);
        let public = PublicKey::new(name, sig_type, &key.verifying_key().to_bytes())?;
        Ok(Self { public, key })
    }

    fn generate(name: &str, sig_type: u8) -> Result<Self, NoteError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| NoteError::Random(e.to_string()))?;
        Self::new(name, sig_type, seed)
    }

    fn line(&self, sig: &[u8]) -> String {
        let mut raw = Vec::with_capacity(4 + sig.len());
        raw.extend_from_slice(&self.public.key_id.to_be_bytes());
        raw.extend_from_slice(sig);
        format!(
            "{SIG_PREFIX}{} {}\n",
            self.public.name,
            STANDARD.encode(raw)
        )
    }
}

macro_rules! key_accessors {
    () => {
        /// Key name.
        pub fn name(&self) -> &str {
            &self.inner.public.name
        }
        /// Key ID: `SHA-256(name ‖ 0x0A ‖ type ‖ public key)[:4]`.
        pub fn key_id(&self) -> u32 {
            self.inner.public.key_id
        }
        /// The 32-byte Ed25519 public key.
        pub fn public_key(&self) -> [u8; 32] {
            self.inner.public.key.to_bytes()
        }
        /// The verifier key string `name+hex(keyID)+base64(type ‖ public key)`.
        pub fn vkey(&self) -> String {
            self.inner.public.vkey()
        }
        /// The public key as SPKI PEM, for openssl.
        pub fn public_key_pem(&self) -> String {
            ed25519_public_key_pem(&self.public_key())
        }
        /// The 32-byte Ed25519 secret seed, for the key file.
        pub fn to_secret_bytes(&self) -> [u8; 32] {
            self.inner.key.to_bytes()
        }
    };
}

macro_rules! verifier_accessors {
    () => {
        /// Key name.
        pub fn name(&self) -> &str {
            &self.inner.name
        }
        /// Key ID.
        pub fn key_id(&self) -> u32 {
            self.inner.key_id
        }
        /// The 32-byte Ed25519 public key.
        pub fn public_key(&self) -> [u8; 32] {
            self.inner.key.to_bytes()
        }
        /// The verifier key string.
        pub fn vkey(&self) -> String {
            self.inner.vkey()
        }
        /// The public key as SPKI PEM, for openssl.
        pub fn public_key_pem(&self) -> String {
            ed25519_public_key_pem(&self.public_key())
        }
    };
}

/// An Ed25519 (type 0x01) note signing key with its name.
pub struct Signer {
    inner: SecretKey,
}

impl Signer {
    /// A signer from a 32-byte Ed25519 seed.
    pub fn from_secret_bytes(name: &str, secret: [u8; 32]) -> Result<Self, NoteError> {
        Ok(Self {
            inner: SecretKey::new(name, SIG_TYPE_ED25519, secret)?,
        })
    }

    /// A new random key from the operating system's random source.
    pub fn generate(name: &str) -> Result<Self, NoteError> {
        Ok(Self {
            inner: SecretKey::generate(name, SIG_TYPE_ED25519)?,
        })
    }

    key_accessors!();

    /// The matching verifier.
    pub fn verifier(&self) -> Verifier {
        Verifier {
            inner: self.inner.public.clone(),
        }
    }

    /// The raw 64-byte Ed25519 signature over `msg` (for `checkpoint.sig` in the bundle).
    pub fn sign_raw(&self, msg: &[u8]) -> [u8; 64] {
        self.inner.key.sign(msg).to_bytes()
    }

    /// The signature line (with its newline) over already validated note text.
    fn signature_line(&self, text: &str) -> String {
        self.inner.line(&self.sign_raw(text.as_bytes()))
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("name", &self.name())
            .field("key_id", &format_args!("{:08x}", self.key_id()))
            .finish_non_exhaustive()
    }
}

/// A timestamped cosignature (type 0x04, `cosignature/v1`) signing key with its name.
pub struct CosignatureSigner {
    inner: SecretKey,
}

/// The message a `cosignature/v1` signs: header, time line, then the checkpoint text.
pub fn cosignature_message(text: &str, time: u64) -> String {
    format!("{COSIGNATURE_HEADER}time {time}\n{text}")
}

impl CosignatureSigner {
    /// A cosigner from a 32-byte Ed25519 seed.
    pub fn from_secret_bytes(name: &str, secret: [u8; 32]) -> Result<Self, NoteError> {
        Ok(Self {
            inner: SecretKey::new(name, SIG_TYPE_COSIGNATURE_V1, secret)?,
        })
    }

    /// A new random key from the operating system's random source.
    pub fn generate(name: &str) -> Result<Self, NoteError> {
        Ok(Self {
            inner: SecretKey::generate(name, SIG_TYPE_COSIGNATURE_V1)?,
        })
    }

    key_accessors!();

    /// The matching verifier.
    pub fn verifier(&self) -> CosignatureVerifier {
        CosignatureVerifier {
            inner: self.inner.public.clone(),
        }
    }

    /// The raw 64-byte Ed25519 signature over [`cosignature_message`]`(text, time)` (for
    /// `checkpoint.cosig.sig` in the bundle).
    pub fn sign_raw(&self, text: &str, time: u64) -> Result<[u8; 64], NoteError> {
        check_text(text)?;
        if time > i64::MAX as u64 {
            return Err(NoteError::TimeOutOfRange(time));
        }
        Ok(self
            .inner
            .key
            .sign(cosignature_message(text, time).as_bytes())
            .to_bytes())
    }

    /// The signature line (with its newline) cosigning `text` at `time` (POSIX seconds).
    pub fn signature_line(&self, text: &str, time: u64) -> Result<String, NoteError> {
        let sig = self.sign_raw(text, time)?;
        let mut body = Vec::with_capacity(72);
        body.extend_from_slice(&time.to_be_bytes());
        body.extend_from_slice(&sig);
        Ok(self.inner.line(&body))
    }
}

impl fmt::Debug for CosignatureSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CosignatureSigner")
            .field("name", &self.name())
            .field("key_id", &format_args!("{:08x}", self.key_id()))
            .finish_non_exhaustive()
    }
}

/// An Ed25519 (type 0x01) verifier key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verifier {
    inner: PublicKey,
}

impl Verifier {
    /// Parses a type 0x01 vkey, checking its key ID.
    pub fn from_vkey(vkey: &str) -> Result<Self, NoteError> {
        Ok(Self {
            inner: PublicKey::from_vkey(vkey, SIG_TYPE_ED25519)?,
        })
    }

    /// A verifier from a name and a 32-byte public key.
    pub fn new(name: &str, public_key: &[u8; 32]) -> Result<Self, NoteError> {
        Ok(Self {
            inner: PublicKey::new(name, SIG_TYPE_ED25519, public_key)?,
        })
    }

    verifier_accessors!();

    fn verify(&self, text: &str, sig: &[u8]) -> bool {
        let Ok(bytes) = <[u8; 64]>::try_from(sig) else {
            return false;
        };
        self.inner
            .key
            .verify_strict(text.as_bytes(), &Signature::from_bytes(&bytes))
            .is_ok()
    }
}

/// A timestamped cosignature (type 0x04) verifier key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CosignatureVerifier {
    inner: PublicKey,
}

impl CosignatureVerifier {
    /// Parses a type 0x04 vkey, checking its key ID.
    pub fn from_vkey(vkey: &str) -> Result<Self, NoteError> {
        Ok(Self {
            inner: PublicKey::from_vkey(vkey, SIG_TYPE_COSIGNATURE_V1)?,
        })
    }

    /// A verifier from a name and a 32-byte public key.
    pub fn new(name: &str, public_key: &[u8; 32]) -> Result<Self, NoteError> {
        Ok(Self {
            inner: PublicKey::new(name, SIG_TYPE_COSIGNATURE_V1, public_key)?,
        })
    }

    verifier_accessors!();

    /// Verifies a cosignature body (time ‖ signature, key ID already stripped); returns the time.
    fn verify(&self, text: &str, body: &[u8]) -> Option<u64> {
        let (time, sig) = body.split_first_chunk::<8>()?;
        let sig = <[u8; 64]>::try_from(sig).ok()?;
        let time = u64::from_be_bytes(*time);
        if time > i64::MAX as u64 {
            return None;
        }
        self.inner
            .key
            .verify_strict(
                cosignature_message(text, time).as_bytes(),
                &Signature::from_bytes(&sig),
            )
            .ok()
            .map(|()| time)
    }
}

/// One signature line of a note, not yet verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    /// Key name.
    pub name: String,
    /// Key ID (first four bytes of the decoded signature).
    pub key_id: u32,
    /// The signature bytes after the key ID.
    pub signature: Vec<u8>,
}

/// Splits a note into its text (with final newline) and its signature lines, checking the format
/// but no signatures.
pub fn split_note(note: &str) -> Result<(&str, Vec<NoteSignature>), NoteError> {
    if has_bad_control(note) {
        return Err(NoteError::Malformed("control character"));
    }
    let split = note
        .rfind("\n\n")
        .ok_or(NoteError::Malformed("no blank line before signatures"))?;
    let text = &note[..split + 1];
    let block = &note[split + 2..];
    if block.is_empty() || !block.ends_with('\n') {
        return Err(NoteError::Malformed(
            "signature block must end in a newline",
        ));
    }
    let mut sigs = Vec::new();
    for line in block[..block.len() - 1].split('\n') {
        if sigs.len() == MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures);
        }
        let rest = line.strip_prefix(SIG_PREFIX).ok_or(NoteError::Malformed(
            "signature line must start with an em dash",
        ))?;
        let (name, b64) = rest.split_once(' ').ok_or(NoteError::Malformed(
            "signature line needs a name and a signature",
        ))?;
        if !is_valid_key_name(name) {
            return Err(NoteError::Malformed("invalid key name in signature line"));
        }
        let raw = STANDARD
            .decode(b64)
            .map_err(|_| NoteError::Malformed("signature is not base64"))?;
        let Some((id, signature)) = raw.split_first_chunk::<4>() else {
            return Err(NoteError::Malformed("signature shorter than a key ID"));
        };
        if signature.is_empty() {
            return Err(NoteError::Malformed("empty signature"));
        }
        sigs.push(NoteSignature {
            name: name.to_owned(),
            key_id: u32::from_be_bytes(*id),
            signature: signature.to_vec(),
        });
    }
    Ok((text, sigs))
}

/// Signs `text` (non-empty, ending in a newline) with each signer, in order.
pub fn sign_note(text: &str, signers: &[&Signer]) -> Result<String, NoteError> {
    check_text(text)?;
    if signers.is_empty() {
        return Err(NoteError::Malformed("a note needs at least one signature"));
    }
    if signers.len() > MAX_SIGNATURES {
        return Err(NoteError::TooManySignatures);
    }
    let mut out = String::with_capacity(text.len() + 1 + signers.len() * 120);
    out.push_str(text);
    out.push('\n');
    for s in signers {
        out.push_str(&s.signature_line(text));
    }
    Ok(out)
}

/// Appends a `cosignature/v1` line by `cosigner` at `time` to an existing note. The note's
/// format is checked; its other signatures are not (the caller verifies before cosigning).
pub fn cosign_note(
    note: &str,
    cosigner: &CosignatureSigner,
    time: u64,
) -> Result<String, NoteError> {
    let (text, sigs) = split_note(note)?;
    if sigs.len() >= MAX_SIGNATURES {
        return Err(NoteError::TooManySignatures);
    }
    let line = cosigner.signature_line(text, time)?;
    Ok(format!("{note}{line}"))
}

/// A valid cosignature found while opening a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedCosignature {
    /// The cosigner's key name.
    pub name: String,
    /// The signed time, POSIX seconds.
    pub time: u64,
}

/// A note whose signatures checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedNote {
    /// The note text, including its final newline.
    pub text: String,
    /// Names of the known 0x01 keys whose signatures verified (at least one), in note order.
    pub verified_by: Vec<String>,
    /// Valid cosignatures from known cosigners, in note order.
    pub cosignatures: Vec<VerifiedCosignature>,
}

/// Opens a note signed by at least one of `verifiers`. See [`open_note_cosigned`].
pub fn open_note(note: &str, verifiers: &[Verifier]) -> Result<VerifiedNote, NoteError> {
    open_note_cosigned(note, verifiers, &[])
}

/// Opens a note: every signature from a known key (0x01 in `verifiers`, 0x04 in `cosigners`)
/// must verify, unknown ones are ignored, and at least one of `verifiers` must have signed.
/// Cosignatures alone never open a note.
pub fn open_note_cosigned(
    note: &str,
    verifiers: &[Verifier],
    cosigners: &[CosignatureVerifier],
) -> Result<VerifiedNote, NoteError> {
    let (text, sigs) = split_note(note)?;
    let mut verified_by: Vec<String> = Vec::new();
    let mut cosignatures: Vec<VerifiedCosignature> = Vec::new();
    for sig in &sigs {
        if let Some(v) = verifiers.iter().find(|v| v.inner.matches(sig)) {
            if !v.verify(text, &sig.signature) {
                return Err(NoteError::BadSignature {
                    name: sig.name.clone(),
                });
            }
            if !verified_by.contains(&sig.name) {
                verified_by.push(sig.name.clone());
            }
        } else if let Some(c) = cosigners.iter().find(|c| c.inner.matches(sig)) {
            let time = c
                .verify(text, &sig.signature)
                .ok_or(NoteError::BadSignature {
                    name: sig.name.clone(),
                })?;
            if !cosignatures.iter().any(|x| x.name == sig.name) {
                cosignatures.push(VerifiedCosignature {
                    name: sig.name.clone(),
                    time,
                });
            }
        }
    }
    if verified_by.is_empty() {
        return Err(NoteError::NoKnownSignature);
    }
    Ok(VerifiedNote {
        text: text.to_owned(),
        verified_by,
        cosignatures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // c2sp.org/signed-note worked example.
    const SPEC_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
    const SPEC_NOTE: &str = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
    // golang.org/x/mod sumdb/note package documentation.
    const PETER_SKEY_B64: &str = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
    const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    const ENOCH_SIG: &str = "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

    fn peter() -> Signer {
        let raw = STANDARD.decode(PETER_SKEY_B64).unwrap();
        assert_eq!(raw[0], SIG_TYPE_ED25519);
        Signer::from_secret_bytes("PeterNeumann", raw[1..].try_into().unwrap()).unwrap()
    }

    #[test]
    fn spec_example_verifies() {
        let v = Verifier::from_vkey(SPEC_VKEY).unwrap();
        assert_eq!(v.key_id(), 0x530d_903a);
        assert_eq!(v.name(), "example.com/foo");
        assert_eq!(v.vkey(), SPEC_VKEY);
        assert_eq!(
            key_id("example.com/foo", SIG_TYPE_ED25519, &v.public_key()),
            0x530d_903a
        );
        let opened = open_note(SPEC_NOTE, &[v]).unwrap();
        assert_eq!(opened.text, "This is an example message.\n");
        assert_eq!(opened.verified_by, vec!["example.com/foo".to_owned()]);
    }

    #[test]
    fn go_note_known_answers() {
        let signer = peter();
        assert_eq!(signer.vkey(), PETER_VKEY);
        assert_eq!(signer.key_id(), 0xc74f_20a3);
        // Ed25519 is deterministic: signing reproduces the published note byte for byte.
        let note = sign_note(GO_TEXT, &[&signer]).unwrap();
        assert_eq!(note, format!("{GO_TEXT}\n{PETER_SIG}"));
        let peter_v = Verifier::from_vkey(PETER_VKEY).unwrap();
        let enoch_v = Verifier::from_vkey(ENOCH_VKEY).unwrap();
        let both = format!("{GO_TEXT}\n{PETER_SIG}{ENOCH_SIG}");
        let opened = open_note(&both, &[peter_v.clone(), enoch_v.clone()]).unwrap();
        assert_eq!(opened.verified_by, vec!["PeterNeumann", "EnochRoot"]);
        // Enoch unknown: ignored.
        let opened = open_note(&both, &[peter_v]).unwrap();
        assert_eq!(opened.verified_by, vec!["PeterNeumann"]);
        assert_eq!(opened.text, GO_TEXT);
        // Round trip of the secret.
        let again = Signer::from_secret_bytes("PeterNeumann", signer.to_secret_bytes()).unwrap();
        assert_eq!(again.vkey(), PETER_VKEY);
    }

    #[test]
    fn unknown_only_or_bad_signatures_are_rejected() {
        let enoch_v = Verifier::from_vkey(ENOCH_VKEY).unwrap();
        let note = format!("{GO_TEXT}\n{PETER_SIG}");
        assert_eq!(
            open_note(&note, &[enoch_v]),
            Err(NoteError::NoKnownSignature)
        );
        // Tampered text with a known key: bad signature.
        let peter_v = Verifier::from_vkey(PETER_VKEY).unwrap();
        let tampered = note.replacen("cryptography", "cryptographY", 1);
        assert!(matches!(
            open_note(&tampered, std::slice::from_ref(&peter_v)),
            Err(NoteError::BadSignature { .. })
        ));
        // A known-key signature that fails poisons the note even if another one is valid.
        let other = Signer::generate("PeterNeumann").unwrap();
        let forged = format!("{GO_TEXT}\n{PETER_SIG}").replace(
            PETER_SIG,
            &format!(
                "{PETER_SIG}{}",
                sign_note("other text\n", &[&other])
                    .unwrap()
                    .split("\n\n")
                    .nth(1)
                    .unwrap()
            ),
        );
        // `other` has the same name but a different key ID: it is unknown, so ignored.
        assert!(open_note(&forged, std::slice::from_ref(&peter_v)).is_ok());
        // Same name and same key ID but a wrong signature: rejected.
        let mut raw = STANDARD
            .decode(PETER_SIG.trim_end().rsplit(' ').next().unwrap())
            .unwrap();
        raw[10] ^= 1;
        let bad_line = format!("\u{2014} PeterNeumann {}\n", STANDARD.encode(&raw));
        let bad = format!("{GO_TEXT}\n{PETER_SIG}{bad_line}");
        assert!(matches!(
            open_note(&bad, &[peter_v]),
            Err(NoteError::BadSignature { .. })
        ));
    }

    #[test]
    fn malformed_notes_are_rejected() {
        let v = Verifier::from_vkey(PETER_VKEY).unwrap();
        let vs = std::slice::from_ref(&v);
        let good = format!("{GO_TEXT}\n{PETER_SIG}");
        assert!(open_note(&good, vs).is_ok());
        let cases = [
            // no blank line
            format!("{GO_TEXT}{PETER_SIG}"),
            // no final newline
            good.trim_end().to_owned(),
            // hyphen instead of em dash
            good.replace('\u{2014}', "-"),
            // control character
            good.replacen("If", "I\tf", 1),
            // trailing empty line after the signatures
            format!("{good}\n"),
            // bad base64
            good.replace("x08go", "x08g!"),
            // missing signature
            format!("{GO_TEXT}\n\u{2014} PeterNeumann\n"),
            // signature too short
            format!("{GO_TEXT}\n\u{2014} PeterNeumann AAAA\n"),
            // name with plus
            good.replace("PeterNeumann x", "Peter+Neumann x"),
        ];
        for c in &cases {
            assert!(
                matches!(
                    open_note(c, vs),
                    Err(NoteError::Malformed(_) | NoteError::NoKnownSignature)
                ),
                "{c:?}"
            );
        }
        let many = format!("{GO_TEXT}\n{}", PETER_SIG.repeat(MAX_SIGNATURES + 1));
        assert_eq!(open_note(&many, vs), Err(NoteError::TooManySignatures));
        let exactly = format!("{GO_TEXT}\n{}", PETER_SIG.repeat(MAX_SIGNATURES));
        assert_eq!(open_note(&exactly, vs).unwrap().verified_by.len(), 1);
    }

    #[test]
    fn text_with_blank_lines_round_trips() {
        let s = Signer::generate("example.com/log").unwrap();
        let text = "a\n\nb\n\n";
        let note = sign_note(text, &[&s]).unwrap();
        let opened = open_note(&note, &[s.verifier()]).unwrap();
        assert_eq!(opened.text, text);
        for bad in ["", "no newline", "tab\there\n"] {
            assert_eq!(sign_note(bad, &[&s]), Err(NoteError::InvalidText));
        }
        assert!(sign_note("x\n", &[]).is_err());
    }

    #[test]
    fn vkey_parsing() {
        assert!(
            VKey::parse("example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k")
                .is_err()
        );
        assert!(Verifier::from_vkey("example.com/foo+530d903a").is_err());
        assert!(
            Verifier::from_vkey("+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k").is_err()
        );
        assert!(Verifier::from_vkey("example.com/foo+530d903a+!!!").is_err());
        let c = CosignatureSigner::generate("clock.example").unwrap();
        assert!(matches!(
            Verifier::from_vkey(&c.vkey()),
            Err(NoteError::WrongKeyType {
                expected: 1,
                found: 4
            })
        ));
        assert!(matches!(
            CosignatureVerifier::from_vkey(SPEC_VKEY),
            Err(NoteError::WrongKeyType {
                expected: 4,
                found: 1
            })
        ));
        // Unknown types parse generically (key ID unchecked) but are refused as verifiers.
        let ml = VKey {
            name: "w.example".into(),
            key_id: 7,
            sig_type: 0x06,
            public_key: vec![1, 2, 3],
        };
        let parsed = VKey::parse(&ml.to_string()).unwrap();
        assert_eq!(parsed, ml);
        assert!(Signer::generate("has space").is_err());
        assert!(Signer::generate("has+plus").is_err());
    }

    #[test]
    fn cosignatures() {
        let log = Signer::generate("example.com/log").unwrap();
        let clock = CosignatureSigner::generate("example.com/clock").unwrap();
        let cv = CosignatureVerifier::from_vkey(&clock.vkey()).unwrap();
        assert_eq!(cv, clock.verifier());
        assert_eq!(
            cv.key_id(),
            key_id(
                "example.com/clock",
                SIG_TYPE_COSIGNATURE_V1,
                &clock.public_key()
            )
        );
        assert_eq!(
            VKey::parse(&clock.vkey()).unwrap().sig_type,
            SIG_TYPE_COSIGNATURE_V1
        );
        let text = "example.com/log\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
        let note = sign_note(text, &[&log]).unwrap();
        let note = cosign_note(&note, &clock, 1_679_315_147).unwrap();
        let opened =
            open_note_cosigned(&note, &[log.verifier()], std::slice::from_ref(&cv)).unwrap();
        assert_eq!(
            opened.cosignatures,
            vec![VerifiedCosignature {
                name: "example.com/clock".into(),
                time: 1_679_315_147
            }]
        );
        // Signature bytes are key ID ‖ time ‖ 64-byte signature.
        let (_, sigs) = split_note(&note).unwrap();
        assert_eq!(sigs[1].signature.len(), 72);
        assert_eq!(sigs[1].signature[..8], 1_679_315_147u64.to_be_bytes());
        // Without the cosigner's key the cosignature is ignored.
        assert!(
            open_note(&note, &[log.verifier()])
                .unwrap()
                .cosignatures
                .is_empty()
        );
        // Cosignatures alone do not open a note.
        assert_eq!(
            open_note_cosigned(&note, &[], std::slice::from_ref(&cv)),
            Err(NoteError::NoKnownSignature)
        );
        // Changing the time breaks the cosignature.
        let mut raw = sigs[1].clone();
        raw.signature[7] ^= 1;
        let mut body = raw.key_id.to_be_bytes().to_vec();
        body.extend_from_slice(&raw.signature);
        let forged = format!(
            "{text}\n{}\u{2014} example.com/clock {}\n",
            note.split("\n\n")
                .nth(1)
                .unwrap()
                .lines()
                .next()
                .unwrap()
                .to_owned()
                + "\n",
            STANDARD.encode(body)
        );
        assert!(matches!(
            open_note_cosigned(&forged, &[log.verifier()], &[cv]),
            Err(NoteError::BadSignature { .. })
        ));
        assert_eq!(
            clock.signature_line(text, 1 << 63),
            Err(NoteError::TimeOutOfRange(1 << 63))
        );
        // The message layout.
        assert_eq!(
            cosignature_message("o\n1\nr\n", 7),
            "cosignature/v1\ntime 7\no\n1\nr\n"
        );
    }

    #[test]
    fn pem_layout() {
        let v = Verifier::from_vkey(SPEC_VKEY).unwrap();
        let pem = v.public_key_pem();
        let b64 = pem
            .strip_prefix("-----BEGIN PUBLIC KEY-----\n")
            .unwrap()
            .strip_suffix("\n-----END PUBLIC KEY-----\n")
            .unwrap();
        let der = STANDARD.decode(b64).unwrap();
        assert_eq!(hex::encode(&der[..12]), "302a300506032b6570032100");
        assert_eq!(der[12..], v.public_key());
    }

    #[test]
    fn debug_does_not_leak_secrets() {
        let s = Signer::from_secret_bytes("n", [7u8; 32]).unwrap();
        let d = format!("{s:?}");
        assert!(!d.contains("7, 7"));
        assert!(d.contains("key_id"));
    }
}
