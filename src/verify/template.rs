//! The signed-payload template of the generic scheme: `"{timestamp}.{body}"` and friends.

/// One piece of the signed payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Bytes copied as written in the template.
    Literal(Vec<u8>),
    /// The raw request body.
    Body,
    /// The timestamp header's value, as sent.
    Timestamp,
    /// The id header's value, as sent.
    Id,
    /// The route's `public_url` plus the request's query string.
    Url,
    /// The request method, upper case (HubSpot v3).
    Method,
}

/// A payload template that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A `{` without its `}`.
    #[error("unclosed '{{' in payload template {0:?}")]
    Unclosed(String),
    /// A `{name}` that is not one of the placeholders.
    #[error("unknown placeholder {{{0}}} in payload template (expected {{body}}, {{timestamp}}, {{id}}, {{url}} or {{method}})")]
    UnknownPlaceholder(String),
}

/// A parsed payload template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses a template over `{body}`, `{timestamp}`, `{id}`, `{url}` and `{method}`.
    ///
    /// Any other `{...}` is an error rather than a literal, so a typo such as `{timstamp}`
    /// is caught by `hookwall check` instead of producing signatures that never match.
    pub fn parse(s: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut literal = Vec::new();
        let mut rest = s;
        while let Some(open) = rest.find('{') {
            literal.extend_from_slice(&rest.as_bytes()[..open]);
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                return Err(TemplateError::Unclosed(s.to_owned()));
            };
            let part = match &after[..close] {
                "body" => Part::Body,
                "timestamp" => Part::Timestamp,
                "id" => Part::Id,
                "url" => Part::Url,
                "method" => Part::Method,
                other => return Err(TemplateError::UnknownPlaceholder(other.to_owned())),
            };
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut literal)));
            }
            parts.push(part);
            rest = &after[close + 1..];
        }
        literal.extend_from_slice(rest.as_bytes());
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template { parts })
    }

    /// The parts in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// Whether the template uses a placeholder.
    pub fn uses(&self, part: &Part) -> bool {
        self.parts.contains(part)
    }
}

impl std::fmt::Display for Template {
    /// As the config writes it: `{timestamp}.{body}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for part in &self.parts {
            match part {
                Part::Literal(bytes) => f.write_str(&String::from_utf8_lossy(bytes))?,
                Part::Body => f.write_str("{body}")?,
                Part::Timestamp => f.write_str("{timestamp}")?,
                Part::Id => f.write_str("{id}")?,
                Part::Url => f.write_str("{url}")?,
                Part::Method => f.write_str("{method}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_placeholders_and_literals() {
        let t = Template::parse("v0:{timestamp}:{body}").unwrap();
        assert_eq!(
            t.parts(),
            &[
                Part::Literal(b"v0:".to_vec()),
                Part::Timestamp,
                Part::Literal(b":".to_vec()),
                Part::Body
            ]
        );
    }

    #[test]
    fn displays_as_written() {
        for t in [
            "v0:{timestamp}:{body}",
            "{method}{url}{body}{timestamp}",
            "{body}",
        ] {
            assert_eq!(Template::parse(t).unwrap().to_string(), t);
        }
    }

    #[test]
    fn body_only() {
        assert_eq!(Template::parse("{body}").unwrap().parts(), &[Part::Body]);
    }

    #[test]
    fn typo_is_an_error() {
        let err = Template::parse("{timstamp}.{body}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("{timstamp}"), "{err}");
        assert!(Template::parse("{body").is_err());
    }
}
