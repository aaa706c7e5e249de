//! The `Invitrack-Signature` header (`docs/webhooks.md#signatures`):
//! `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. The time is signed with the
//! body, so a receiver that refuses old times cannot be sent an old delivery again.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The header's value for `body` sent at `unix_seconds`.
#[must_use]
pub fn sign(secret: &str, unix_seconds: i64, body: &[u8]) -> String {
    format!(
        "t={unix_seconds},v1={}",
        hex::encode(mac(secret, unix_seconds, body))
    )
}

fn mac(secret: &str, unix_seconds: i64, body: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length.
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(unix_seconds.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// Why a signature does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the header is not t=<seconds>,v1=<hex>")]
    Malformed,
    #[error("no v1 signature matches the body")]
    Mismatch,
    #[error("the time is more than the tolerance away from now")]
    Stale,
}

/// What a receiver does: checks `header` against `body` and `secret`, and that its time is
/// within `tolerance_secs` of `now_unix_seconds`. Every `v1=` of the header is tried (there may
/// be several while a secret is rolled over); the comparison takes the same time whatever the
/// bytes.
///
/// # Errors
/// When the signature does not hold.
pub fn verify(
    secret: &str,
    header: &str,
    body: &[u8],
    now_unix_seconds: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let mut time = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => time = t.parse::<i64>().ok(),
            Some(("v1", hex_mac)) => {
                signatures.push(hex::decode(hex_mac).map_err(|_| SignatureError::Malformed)?);
            }
            _ => {}
        }
    }
    let time = time.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let mut expected = HmacSha256::new_from_slice(secret.as_bytes()).expect("any key length");
    expected.update(time.to_string().as_bytes());
    expected.update(b".");
    expected.update(body);
    let matched = signatures
        .iter()
        .any(|signature| expected.clone().verify_slice(signature).is_ok());
    if !matched {
        return Err(SignatureError::Mismatch);
    }
    if (now_unix_seconds - time).abs() > tolerance_secs {
        return Err(SignatureError::Stale);
    }
    Ok(())
}

/// A new webhook's secret: 32 random bytes, hex, after `whsec_`.
#[must_use]
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("whsec_{}", hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_known_vector() {
        // Python: hmac.new(b"whsec_test", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
        assert_eq!(
            sign("whsec_test", 1_700_000_000, br#"{"a":1}"#),
            "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
    }

    #[test]
    fn old_or_malformed_headers_are_refused() {
        let header = sign("s", 100, b"body");
        assert_eq!(verify("s", &header, b"body", 100 + 300, 300), Ok(()));
        assert_eq!(
            verify("s", &header, b"body", 100 + 301, 300),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify("s", "v1=00", b"body", 100, 300),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify("s", "t=100", b"body", 100, 300),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify("s", "t=100,v1=zz", b"body", 100, 300),
            Err(SignatureError::Malformed)
        );
        // A second signature (a rolled secret) is accepted beside a wrong one.
        let rolled = format!("{header},v1={}", "0".repeat(64));
        assert_eq!(verify("s", &rolled, b"body", 100, 300), Ok(()));
        assert_ne!(new_secret(), new_secret());
        assert!(new_secret().starts_with("whsec_"));
    }

    proptest! {
        #[test]
        fn a_signature_holds_for_its_body_only(
            secret in "[ -~]{1,40}",
            body in proptest::collection::vec(any::<u8>(), 0..200),
            other in proptest::collection::vec(any::<u8>(), 0..200),
            t in 0_i64..4_000_000_000,
        ) {
            let header = sign(&secret, t, &body);
            prop_assert_eq!(verify(&secret, &header, &body, t, 0), Ok(()));
            if other != body {
                prop_assert_eq!(verify(&secret, &header, &other, t, 0), Err(SignatureError::Mismatch));
            }
            let wrong = format!("{secret}x");
            prop_assert_eq!(verify(&wrong, &header, &body, t, 0), Err(SignatureError::Mismatch));
        }
    }
}
