//! The public URL of a route: what URL-bound schemes (Twilio, Square, HubSpot and templates
//! with `{url}`) sign. It comes from the route's `public_url:`, never from the request's
//! `Host` or `X-Forwarded-*` headers, which a client chooses.

use super::Scheme;

/// A route's `public_url:`, in one of two forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicUrl {
    /// Scheme and authority only, such as `https://hooks.example.com`. The signed URL is this
    /// origin followed by the path and query as received.
    Origin(String),
    /// The full URL the sender was given, such as `https://example.com/hooks/twilio`, for a
    /// gateway behind a proxy that rewrites the path. The signed URL is `base` followed by
    /// the query as received, except for Square, which signs the configured URL unchanged.
    Full {
        /// Scheme, authority and path, exactly as configured.
        base: String,
        /// Query as configured, without `?`.
        query: Option<String>,
    },
}

impl PublicUrl {
    /// Parses an `http://` or `https://` URL without user information or fragment. A URL
    /// whose path is empty or `/` and that has no query is an origin.
    pub fn parse(text: &str) -> Result<PublicUrl, String> {
        let uri: http::Uri = text
            .parse()
            .map_err(|_| "not a URL such as https://hooks.example.com".to_string())?;
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err("it needs a scheme and host, such as https://hooks.example.com".into());
        };
        if !matches!(scheme, "http" | "https") {
            return Err("the scheme must be http or https".into());
        }
        if authority.as_str().contains('@') {
            return Err("user information (user@) is not supported; remove it".into());
        }
        let origin = format!("{scheme}://{authority}");
        let path = uri.path();
        if matches!(path, "" | "/") && uri.query().is_none() {
            return Ok(PublicUrl::Origin(origin));
        }
        Ok(PublicUrl::Full {
            base: format!("{origin}{path}"),
            query: uri.query().map(str::to_string),
        })
    }

    /// Returns the URL that `scheme` signs for a request received with `path_and_query`.
    pub fn signed_url(&self, scheme: &Scheme, path_and_query: &str) -> String {
        match self {
            PublicUrl::Origin(origin) => format!("{origin}{path_and_query}"),
            PublicUrl::Full { base, query } => {
                // Square signs the notification URL of the subscription, byte for byte.
                let query = if matches!(scheme, Scheme::Square) {
                    query.as_deref()
                } else {
                    path_and_query.split_once('?').map(|(_, query)| query)
                };
                match query {
                    Some(query) => format!("{base}?{query}"),
                    None => base.clone(),
                }
            }
        }
    }

    /// Returns the scheme and authority, such as `https://hooks.example.com`.
    pub fn origin(&self) -> &str {
        match self {
            PublicUrl::Origin(origin) => origin,
            PublicUrl::Full { base, .. } => {
                let after_scheme = base.find("://").map_or(0, |i| i + 3);
                let end = base[after_scheme..]
                    .find('/')
                    .map_or(base.len(), |i| after_scheme + i);
                &base[..end]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> PublicUrl {
        match PublicUrl::parse(text) {
            Ok(url) => url,
            Err(error) => panic!("{text}: {error}"),
        }
    }

    #[test]
    fn origin_appends_received_path_and_query() {
        let url = parse("https://hooks.example.com/");

        assert_eq!(url, PublicUrl::Origin("https://hooks.example.com".into()));
        assert_eq!(
            url.signed_url(&Scheme::Twilio, "/in/sms?a=1"),
            "https://hooks.example.com/in/sms?a=1"
        );
    }

    #[test]
    fn full_url_keeps_path_and_takes_received_query() {
        let url = parse("https://example.com:8443/hooks/twilio?a=1");

        assert_eq!(
            url.signed_url(&Scheme::Twilio, "/twilio?a=1&bodySHA256=ab"),
            "https://example.com:8443/hooks/twilio?a=1&bodySHA256=ab"
        );
        assert_eq!(
            url.signed_url(&Scheme::Hubspot, "/twilio"),
            "https://example.com:8443/hooks/twilio"
        );
        assert_eq!(url.origin(), "https://example.com:8443");
    }

    #[test]
    fn square_signs_configured_url() {
        let url = parse("https://example.com/hooks/square?tenant=7");

        assert_eq!(
            url.signed_url(&Scheme::Square, "/square?other=1"),
            "https://example.com/hooks/square?tenant=7"
        );
    }

    #[test]
    fn rejects_other_schemes_and_user_information() {
        for text in [
            "ftp://example.com",
            "/hooks/x",
            "https://user:pw@example.com/x",
            "not a url",
        ] {
            assert!(PublicUrl::parse(text).is_err(), "{text}");
        }
    }
}
