//! The web dashboard's files (`crates/api/ui/`), compiled into the binary and served at
//! `/dashboard/` on the API's own origin (`docs/dashboard.md`): nothing comes from a CDN and
//! nothing needs building. Each answer carries an ETag, so a browser revalidates cheaply, and
//! a Content-Security-Policy that lets the page load only its own files and call only this API.

use std::sync::LazyLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use sha2::{Digest as _, Sha256};

/// One file of the dashboard.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    etag: String,
}

impl Asset {
    fn new(name: &'static str, content_type: &'static str, body: &'static [u8]) -> Self {
        let digest = Sha256::digest(body);
        Self {
            name,
            content_type,
            body,
            etag: format!("\"{}\"", hex::encode(&digest[..12])),
        }
    }
}

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    vec![
        Asset::new(
            "index.html",
            "text/html; charset=utf-8",
            include_bytes!("../ui/index.html"),
        ),
        Asset::new(
            "app.js",
            "text/javascript; charset=utf-8",
            include_bytes!("../ui/app.js"),
        ),
        Asset::new(
            "app.css",
            "text/css; charset=utf-8",
            include_bytes!("../ui/app.css"),
        ),
    ]
});

/// Only this origin: the page's own files, calls to this API, Discord avatars.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' https://cdn.discordapp.com data:; \
     style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'self'";

fn serve(req: &HttpRequest, asset: &Asset) -> HttpResponse {
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == asset.etag));
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, asset.etag.as_str()))
        // Revalidated on every load: a new release is seen at once, an unchanged one costs 304s.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ));
    if fresh {
        response.finish()
    } else {
        response.content_type(asset.content_type).body(asset.body)
    }
}

/// `GET /dashboard/` and `GET /dashboard/{file}`.
pub async fn file(req: HttpRequest, path: Option<web::Path<String>>) -> HttpResponse {
    let name = path.map_or_else(|| "index.html".to_owned(), web::Path::into_inner);
    match ASSETS.iter().find(|a| a.name == name) {
        Some(asset) => serve(&req, asset),
        None => crate::error::not_found().await,
    }
}

/// `GET /dashboard`: to the page, whose relative links need the slash.
pub async fn redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/dashboard/"))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_page_loads_is_served() {
        let index = std::str::from_utf8(ASSETS[0].body).expect("utf-8");
        for linked in ["app.js", "app.css"] {
            assert!(index.contains(&format!("\"{linked}\"")), "{linked}");
            assert!(ASSETS.iter().any(|a| a.name == linked), "{linked}");
        }
        let tags: std::collections::HashSet<&str> =
            ASSETS.iter().map(|a| a.etag.as_str()).collect();
        assert_eq!(tags.len(), ASSETS.len(), "each file has its own ETag");
    }
}
