//! The pure parts of Discord's OAuth2 endpoints: form bodies and query strings, HTTP Basic
//! client credentials, and scope lists, checked as RFC 6749 (which Discord's OAuth2
//! documentation points to) and Discord's scope table say.

use actix_web::web;
use std::collections::HashMap;

/// Every scope of Discord's OAuth2 scope table (`developers/topics/oauth2.mdx`).
pub const DOCUMENTED_SCOPES: [&str; 29] = [
    "activities.read",
    "activities.write",
    "applications.builds.read",
    "applications.builds.upload",
    "applications.commands",
    "applications.commands.update",
    "applications.commands.permissions.update",
    "applications.entitlements",
    "applications.store.update",
    "bot",
    "connections",
    "dm_channels.read",
    "email",
    "gdm.join",
    "guilds",
    "guilds.join",
    "guilds.members.read",
    "identify",
    "identify.premium",
    "messages.read",
    "relationships.read",
    "role_connections.write",
    "rpc",
    "rpc.activities.write",
    "rpc.notifications.read",
    "rpc.voice.read",
    "rpc.voice.write",
    "voice",
    "webhook.incoming",
];

/// Scopes that turn the authorization into another flow the simulator does not have: adding
/// the bot to a guild (`bot`, `applications.commands`) or creating a webhook
/// (`webhook.incoming`).
pub const NOT_SIMULATED_SCOPES: [&str; 3] = ["bot", "applications.commands", "webhook.incoming"];

/// What is wrong with a `scope` parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// No scope at all.
    #[error("no scope requested")]
    Empty,
    /// A scope Discord does not have.
    #[error("invalid scope: {0}")]
    Unknown(String),
    /// A scope Discord has, whose flow the simulator does not have.
    #[error("scope {0} is not simulated (only the authorization code grant for a user)")]
    NotSimulated(String),
}

/// The scopes of a space-separated `scope` parameter, in order, each once.
pub fn parse_scopes(raw: &str) -> Result<Vec<String>, ScopeError> {
    let mut scopes: Vec<String> = Vec::new();
    for scope in raw.split(' ').filter(|s| !s.is_empty()) {
        if !DOCUMENTED_SCOPES.contains(&scope) {
            return Err(ScopeError::Unknown(scope.to_owned()));
        }
        if NOT_SIMULATED_SCOPES.contains(&scope) {
            return Err(ScopeError::NotSimulated(scope.to_owned()));
        }
        if !scopes.iter().any(|s| s == scope) {
            scopes.push(scope.to_owned());
        }
    }
    if scopes.is_empty() {
        return Err(ScopeError::Empty);
    }
    Ok(scopes)
}

/// The parameters of a query string or an `application/x-www-form-urlencoded` body. A
/// parameter given twice is refused (RFC 6749 §3.1: "Request and response parameters MUST NOT
/// be included more than once"), as is a body that is not form-encoded text.
pub fn parse_params(raw: &[u8]) -> Result<HashMap<String, String>, String> {
    let text = std::str::from_utf8(raw).map_err(|_| "the body is not UTF-8".to_owned())?;
    let pairs = web::Query::<Vec<(String, String)>>::from_query(text)
        .map_err(|e| format!("malformed parameters: {e}"))?
        .into_inner();
    let mut params = HashMap::with_capacity(pairs.len());
    for (name, value) in pairs {
        if params.insert(name.clone(), value).is_some() {
            return Err(format!("parameter {name:?} is given more than once"));
        }
    }
    Ok(params)
}

/// The client id and secret of an `Authorization: Basic …` header (RFC 6749 §2.3.1: each
/// form-urlencoded, then joined by `:` and base64-encoded). `None` when the header is not
/// Basic credentials.
pub fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(base64_decode(encoded.trim())?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((form_decode(id)?, form_decode(secret)?))
}

/// A client id and secret.
pub type ClientCredentials = (String, String);

/// The client credentials of a token or revocation request: HTTP Basic, or `client_id` and
/// `client_secret` in the body (Discord takes either). `Ok(None)` when there are none (or
/// the Basic header cannot be read): the request is then `invalid_client`. Both ways at once
/// is `invalid_request` (RFC 6749 §2.3: "MUST NOT use more than one authentication method"),
/// except a body `client_id` naming the same client as the header.
pub fn client_credentials(
    authorization: Option<&str>,
    params: &HashMap<String, String>,
) -> Result<Option<ClientCredentials>, String> {
    let body_id = params.get("client_id");
    let body_secret = params.get("client_secret");
    let basic = authorization.filter(|h| {
        h.trim()
            .get(..6)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("basic "))
    });
    match basic {
        Some(header) => {
            if body_secret.is_some() {
                return Err("client credentials given both in the header and in the body".into());
            }
            let Some((id, secret)) = basic_credentials(header) else {
                return Ok(None);
            };
            if body_id.is_some_and(|b| *b != id) {
                return Ok(None);
            }
            Ok(Some((id, secret)))
        }
        None => Ok(body_id.map(|id| (id.clone(), body_secret.cloned().unwrap_or_default()))),
    }
}

/// Undoes application/x-www-form-urlencoded on one value.
fn form_decode(raw: &str) -> Option<String> {
    let query = format!("v={raw}");
    web::Query::<HashMap<String, String>>::from_query(&query)
        .ok()?
        .into_inner()
        .remove("v")
        .or(Some(String::new()))
}

/// Standard base64 (RFC 4648 §4), padding optional.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let body = text.trim_end_matches('=');
    if text.len() - body.len() > 2 || body.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    for chunk in body.as_bytes().chunks(4) {
        let mut bits = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            bits |= value(c)? << (18 - 6 * i);
        }
        let bytes = bits.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_split_on_spaces_deduplicated_and_checked() {
        assert_eq!(
            parse_scopes("identify guilds identify"),
            Ok(vec!["identify".to_owned(), "guilds".to_owned()])
        );
        assert_eq!(parse_scopes(" "), Err(ScopeError::Empty));
        assert_eq!(
            parse_scopes("identify guild"),
            Err(ScopeError::Unknown("guild".into()))
        );
        assert_eq!(
            parse_scopes("identify bot"),
            Err(ScopeError::NotSimulated("bot".into()))
        );
    }

    #[test]
    fn params_decode_and_refuse_duplicates() {
        let params = parse_params(
            b"grant_type=authorization_code&redirect_uri=http%3A%2F%2Fa%2Fb&scope=identify+guilds",
        )
        .unwrap_or_default();
        assert_eq!(params["grant_type"], "authorization_code");
        assert_eq!(params["redirect_uri"], "http://a/b");
        assert_eq!(params["scope"], "identify guilds");
        assert!(parse_params(b"code=a&code=b").is_err());
        assert!(parse_params(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn basic_credentials_decode() {
        // "859000000000000001:s3cr%3At" (the secret form-encoded, as RFC 6749 asks)
        let header = "Basic ODU5MDAwMDAwMDAwMDAwMDAxOnMzY3IlM0F0";
        assert_eq!(
            basic_credentials(header),
            Some(("859000000000000001".into(), "s3cr:t".into()))
        );
        assert_eq!(basic_credentials("Bearer abc"), None);
        assert_eq!(basic_credentials("Basic !!!!"), None);
        // no colon
        assert_eq!(basic_credentials("Basic YWJj"), None);
    }

    #[test]
    fn client_credentials_from_the_header_or_the_body() {
        let body = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let basic = "Basic ODU5MDAwMDAwMDAwMDAwMDAxOnMzY3IlM0F0";
        let expected = Some(("859000000000000001".to_owned(), "s3cr:t".to_owned()));
        assert_eq!(
            client_credentials(Some(basic), &body(&[])),
            Ok(expected.clone())
        );
        assert_eq!(
            client_credentials(Some(basic), &body(&[("client_id", "859000000000000001")])),
            Ok(expected.clone())
        );
        assert_eq!(
            client_credentials(Some(basic), &body(&[("client_id", "1")])),
            Ok(None)
        );
        assert!(client_credentials(Some(basic), &body(&[("client_secret", "x")])).is_err());
        assert_eq!(
            client_credentials(
                None,
                &body(&[
                    ("client_id", "859000000000000001"),
                    ("client_secret", "s3cr:t")
                ])
            ),
            Ok(expected)
        );
        assert_eq!(
            client_credentials(Some("Bearer x"), &body(&[("client_id", "1")])),
            Ok(Some(("1".to_owned(), String::new())))
        );
        assert_eq!(client_credentials(None, &body(&[])), Ok(None));
        assert_eq!(client_credentials(Some("Basic %%%"), &body(&[])), Ok(None));
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_decode(encoded), Some(plain.as_bytes().to_vec()));
        }
        assert_eq!(base64_decode("Zm9vYg"), Some(b"foob".to_vec()));
        assert_eq!(base64_decode("Z"), None);
        assert_eq!(base64_decode("Zg==="), None);
    }
}
