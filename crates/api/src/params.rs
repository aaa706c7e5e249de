//! Request parameters, parsed once at the boundary. InviteLogger documents its parameters as a
//! GET body; clients also send them as a query string. Both are accepted, the query string first.

use std::collections::HashMap;

use actix_web::HttpRequest;
use serde_json::Value;

use crate::error::ApiError;

/// The parameters of one request, from its query string and JSON body.
pub struct Params {
    query: HashMap<String, String>,
    body: Option<serde_json::Map<String, Value>>,
}

impl Params {
    /// # Errors
    /// When the query string is malformed or a non-empty body is not a JSON object.
    pub fn from_request(req: &HttpRequest, body: &[u8]) -> Result<Self, ApiError> {
        let query =
            actix_web::web::Query::<HashMap<String, String>>::from_query(req.query_string())
                .map_err(|e| ApiError::InvalidQuery(e.to_string()))?
                .into_inner();
        let body = if body.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(map)) => Some(map),
                Ok(_) => return Err(ApiError::InvalidBody("expected a JSON object".into())),
                Err(e) => return Err(ApiError::InvalidBody(e.to_string())),
            }
        };
        Ok(Self { query, body })
    }

    fn raw(&self, name: &'static str) -> Result<Option<String>, ApiError> {
        if let Some(v) = self.query.get(name) {
            return Ok(Some(v.clone()));
        }
        match self.body.as_ref().and_then(|b| b.get(name)) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            // Snowflakes sent as JSON numbers lose precision above 2^53 in most clients, but an
            // exact integer is still accepted.
            Some(Value::Number(n)) if n.is_u64() => Ok(Some(n.to_string())),
            Some(_) => Err(ApiError::InvalidParameter {
                name,
                problem: "must be a string".into(),
            }),
        }
    }

    /// A required Discord id (a snowflake as a decimal string).
    ///
    /// # Errors
    /// When it is missing or not a snowflake.
    pub fn snowflake(&self, name: &'static str) -> Result<u64, ApiError> {
        let raw = self.raw(name)?.ok_or(ApiError::MissingParameter(name))?;
        parse_snowflake(name, &raw)
    }

    /// A required invite code, without `discord.gg/`.
    ///
    /// # Errors
    /// When it is missing or cannot be an invite code.
    pub fn invite_code(&self, name: &'static str) -> Result<String, ApiError> {
        let raw = self.raw(name)?.ok_or(ApiError::MissingParameter(name))?;
        let valid = (1..=64).contains(&raw.len())
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if valid {
            Ok(raw)
        } else {
            Err(ApiError::InvalidParameter {
                name,
                problem:
                    "an invite code is 1 to 64 letters, digits, '-' or '_' (without discord.gg/)"
                        .into(),
            })
        }
    }
}

/// Parses a snowflake: a non-zero decimal u64.
///
/// # Errors
/// When `raw` is not one.
pub fn parse_snowflake(name: &'static str, raw: &str) -> Result<u64, ApiError> {
    match raw.parse::<u64>() {
        Ok(id) if id > 0 && raw.bytes().all(|b| b.is_ascii_digit()) => Ok(id),
        _ => Err(ApiError::InvalidParameter {
            name,
            problem: format!("{raw:?} is not a Discord id (a positive integer as a string)"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snowflakes_and_percent_decoding() {
        assert_eq!(
            parse_snowflake("x", "417977361011572747").ok(),
            Some(417_977_361_011_572_747)
        );
        assert!(parse_snowflake("x", "0").is_err());
        assert!(parse_snowflake("x", "+12").is_err());
        assert!(parse_snowflake("x", "abc").is_err());
        assert!(parse_snowflake("x", "99999999999999999999999").is_err());
    }
}
